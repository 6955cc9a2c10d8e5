"""The pack supervisor sensor: every tick it reconciles the spine packs with the active run (restarts
dead workers with backoff) and reports their heartbeats and RTDL lag as an observation of
`daemons_ready`, so the UI shows whether the daemons of the run are alive and keeping up."""

from dagster import AssetObservation, DefaultSensorStatus, SensorEvaluationContext, SensorResult, sensor

from fp_platform.operate import supervisor
from fp_platform.operate.active_run import active_run_file
from fp_platform.operate.settings import SupervisorSettings
from fp_platform.resources import PlatformResource
from fp_platform.rtdl import caught_up


@sensor(
    name="pack_supervisor",
    minimum_interval_seconds=SupervisorSettings.load().sensor_interval_seconds,
    default_status=DefaultSensorStatus.RUNNING,
    description="Keeps every worker of the spine packs running for the active run; reports heartbeats and lag.",
)
def pack_supervisor(context: SensorEvaluationContext, platform: PlatformResource) -> SensorResult:
    h = platform.handles
    run_file = active_run_file(h)
    if not run_file.exists():
        return SensorResult(skip_reason="no active run (fp-platform run records one)")
    run_id = run_file.read_text().strip()
    with platform.connect() as conn:
        conn.autocommit = True
        statuses = supervisor.reconcile(h, conn, run_id, log=context.log.info)
        lag = caught_up.lag_report(h, conn, run_id)
    acted = [f"{s.component} {s.state}" for s in statuses if s.state != supervisor.RUNNING]
    observation = AssetObservation(
        asset_key="daemons_ready",
        partition=run_id,
        metadata={
            "workers_up": sum(s.up for s in statuses),
            "workers": len(statuses),
            "rtdl_max_lag": lag["max_lag"],
            "actions": ", ".join(acted) or "none",
            **{
                f"{s.component}": f"{s.state} pid {s.pid} beat {s.heartbeat_age_s}s {s.health_state or ''}"
                for s in statuses
            },
        },
    )
    summary = f"{run_id}: {sum(s.up for s in statuses)}/{len(statuses)} up; " + (", ".join(acted) or "no action")
    return SensorResult(skip_reason=summary, asset_events=[observation])

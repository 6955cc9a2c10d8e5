"""The operate sensors.

`pack_supervisor`: every tick it reconciles the spine packs with the active run (restarts dead workers with
backoff; on dev_full through the Kubernetes API) and reports their heartbeats and RTDL lag as an observation
of `daemons_ready`, so the UI shows whether the daemons of the run are alive and keeping up.

`teardown_after_failure`: a run that was to end with P17 but failed before it (a gate of P11 failed, say)
would leave the run's workers polling and billing; this run-failure sensor launches P17 alone
(`platform_teardown`) for that run's partition. `fp-platform run` executes in-process, where no daemon
evaluates sensors, so it applies the same rule itself (`runner.close_out_failed`).
"""

from dagster import (
    AssetObservation,
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    run_failure_sensor,
    sensor,
)

from fp_platform.operate import supervisor
from fp_platform.operate.active_run import active_run_location, read_active_run
from fp_platform.operate.settings import SupervisorSettings
from fp_platform.operate.teardown import torn_down
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
    run_id = read_active_run(h)
    if run_id is None:
        return SensorResult(skip_reason=f"no active run at {active_run_location(h)} (fp-platform run records one)")
    if torn_down(h, run_id):  # P17 began or ended: bring nothing back (it would undo the scale-down)
        return SensorResult(skip_reason=f"{run_id} is torn down or tearing down (P17): nothing to bring back")
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


TEARDOWN_ASSET = "teardown_proof"
TEARDOWN_JOB = "platform_teardown"
PARTITION_TAG = "dagster/partition"  # the tag Dagster puts on a partitioned run
TEARDOWN_AFTER_TAG = "fp/teardown_after"  # on a teardown run: the failed run it closes out

teardown_job = define_asset_job(
    TEARDOWN_JOB,
    selection=AssetSelection.assets(TEARDOWN_ASSET),
    description="P17 TEARDOWN_IDLE_SAFE alone, for a run whose earlier phases failed before it.",
)


def teardown_owed(instance: DagsterInstance, run: DagsterRun) -> str | None:
    """The platform_run_id whose P17 the failed `run` owes: the run has a partition, its execution plan holds
    the `teardown_proof` step (a whole-graph run, or a selection with P17), and that step never started (a
    teardown that ran and failed has recorded its own verdict; retrying it from here would loop). A teardown run
    owes nothing, even one that failed before its step started: requesting another would loop without end."""
    if run.job_name == TEARDOWN_JOB or TEARDOWN_AFTER_TAG in run.tags:
        return None
    partition = run.tags.get(PARTITION_TAG)
    plan = (
        instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id) if run.execution_plan_snapshot_id else None
    )
    if partition is None or plan is None or TEARDOWN_ASSET not in plan.step_keys_to_execute:
        return None
    started = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START)
    if any(e.dagster_event is not None and e.dagster_event.step_key == TEARDOWN_ASSET for e in started):
        return None
    return partition


@run_failure_sensor(
    name="teardown_after_failure",
    request_job=teardown_job,
    default_status=DefaultSensorStatus.RUNNING,
    description="Runs P17 for a run that failed before reaching it, so its workers do not keep running.",
)
def teardown_after_failure(context: RunFailureSensorContext) -> RunRequest | SkipReason:
    run = context.dagster_run
    owed = teardown_owed(context.instance, run)
    if owed is None:
        return SkipReason(f"run {run.run_id} owes no teardown (P17 not selected, already attempted, or no partition)")
    # Requested whichever run is active now: P17 stops only the run's own workers on every profile and destroys
    # dev_min's demo stack only when it serves this run, so a late teardown cannot take the next run down; and
    # nothing to read here means nothing that can fail (a run-failure sensor that raises still moves its cursor).
    return RunRequest(run_key=f"teardown-after-{run.run_id}", partition_key=owed, tags={TEARDOWN_AFTER_TAG: run.run_id})

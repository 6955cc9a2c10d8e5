"""Operate-plane assets: P1 RUN_PINNED (`run_header`), P2 DAEMONS_READY (`daemons_ready`)."""

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset

from fp_platform.checks import fail_phase, gate_check_results, gate_specs
from fp_platform.contracts.evidence import EvidenceError
from fp_platform.contracts.phases import P1, P2, phase
from fp_platform.operate import readiness
from fp_platform.operate.run_pinning import RunParams, p1_gates, pin_run
from fp_platform.resources import PlatformResource, platform_run_partitions

P1_GATES = {
    "evidence_root_exists": "the run's evidence root holds at least one object",
    "run_json_complete": "run.json has ids, env, config, config digest and image provenance",
    "config_digest_recomputes": "recomputing the digest over run.json's config gives the stored digest "
    "(and the run registry's)",
}


class RunHeaderConfig(Config):
    scale: str = "demo"
    seed: int = 42


@asset(
    group_name=phase(P1).group,
    partitions_def=platform_run_partitions,
    check_specs=gate_specs("run_header", P1_GATES),
    kinds={"s3", "postgres"},
    description="P1 RUN_PINNED: the run's pinned config and digest, written once to run.json.",
)
def run_header(context: AssetExecutionContext, config: RunHeaderConfig, platform: PlatformResource):
    h = platform.handles
    writer = platform.evidence(context.partition_key)
    with platform.connect() as conn:
        try:
            pinned = pin_run(h, writer, conn, RunParams(scale=config.scale, seed=config.seed))
        except EvidenceError as exc:
            raise fail_phase(writer, P1, "run_header", "run_pinned", str(exc)) from exc
        results = p1_gates(h, writer, conn)
    run_json = pinned.run_json
    return MaterializeResult(
        metadata={
            "run_json": MetadataValue.url(writer.uri(h.get("EVIDENCE_RUN_JSON_KEY"))),
            "config_digest": run_json["config_digest"],
            "image_tag": run_json["image_tag"],
            "newly_pinned": pinned.created,
        },
        check_results=gate_check_results(writer, P1, "run_header", results),
    )


@asset(
    group_name=phase(P2).group,
    partitions_def=platform_run_partitions,
    deps=[run_header],
    check_specs=gate_specs("daemons_ready", {
        "packs_running": "every built worker of the spine packs runs (one replica) and confirmed the run scope",
        "run_scope_confirmed": "every worker serves REQUIRED_PLATFORM_RUN_ID = this run",
        "no_duplicate_consumers": "no second process (supervised or manual) runs any worker",
        "dependencies_reachable": "every worker reached its substrate (GREEN heartbeat)"}),
    kinds={"python", "postgres"},
    description="P2 DAEMONS_READY: the spine packs run for this run, supervised (restart with backoff).",
)
def daemons_ready(context: AssetExecutionContext, platform: PlatformResource):
    h, run_id = platform.handles, context.partition_key
    with platform.connect() as conn:
        conn.autocommit = True
        statuses = readiness.start_and_wait(h, conn, run_id, log=context.log.info)
    doc = readiness.readiness_doc(h, statuses, run_id)
    writer = platform.evidence(run_id)
    writer.write_summary(h.get("DAEMONS_READY_PATH_PATTERN"), doc, phase_id=P2)
    return MaterializeResult(
        metadata={f"{w['component']}": f"{w['state']} pid {w['pid']}" for p in doc["packs"] for w in p["workers"]},
        check_results=gate_check_results(writer, P2, "daemons_ready", readiness.p2_gates(doc)),
    )

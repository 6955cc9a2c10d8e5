"""Operate-plane assets: P1 RUN_PINNED (`run_header`)."""

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset

from fp_platform.checks import fail_phase, gate_check_results, gate_specs
from fp_platform.contracts.evidence import EvidenceError
from fp_platform.contracts.phases import phase
from fp_platform.operate.run_pinning import PHASE_ID, RunParams, p1_gates, pin_run
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
    group_name=phase(PHASE_ID).group,
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
            raise fail_phase(writer, PHASE_ID, "run_header", "run_pinned", str(exc)) from exc
        results = p1_gates(h, writer, conn)
    run_json = pinned.run_json
    return MaterializeResult(
        metadata={
            "run_json": MetadataValue.url(writer.uri(h.get("EVIDENCE_RUN_JSON_KEY"))),
            "config_digest": run_json["config_digest"],
            "image_tag": run_json["image_tag"],
            "newly_pinned": pinned.created,
        },
        check_results=gate_check_results(writer, PHASE_ID, "run_header", results),
    )

"""Operate-plane assets: P1 RUN_PINNED (`run_header`), P2 DAEMONS_READY (`daemons_ready`)."""

from dagster import AssetExecutionContext, Config, MetadataValue

from fp_platform.checks import Verdict, fail_phase, phase_asset
from fp_platform.contracts.evidence import EvidenceError
from fp_platform.contracts.phases import P1, P2
from fp_platform.operate import gates, readiness
from fp_platform.operate.run_pinning import RunParams, p1_facts, pin_run
from fp_platform.resources import PlatformResource


class RunHeaderConfig(Config):
    scale: str = "demo"
    seed: int = 42


@phase_asset(P1, gates.RUN_HEADER, kinds={"s3", "postgres"})
def run_header(context: AssetExecutionContext, config: RunHeaderConfig, platform: PlatformResource):
    """P1 RUN_PINNED: the run's pinned config and digest, written once to run.json."""
    h = platform.handles
    writer = platform.evidence(context.partition_key)
    with platform.connect() as conn:
        try:
            pinned = pin_run(h, writer, conn, RunParams(scale=config.scale, seed=config.seed))
        except EvidenceError as exc:
            raise fail_phase(writer, P1, "run_header", "run_pinned", str(exc)) from exc
        facts = p1_facts(h, writer, conn)
    run_json = pinned.run_json
    return Verdict(
        writer,
        facts,
        {
            "run_json": MetadataValue.url(writer.uri(h.get("EVIDENCE_RUN_JSON_KEY"))),
            "config_digest": run_json["config_digest"],
            "image_tag": run_json["image_tag"],
            "newly_pinned": pinned.created,
        },
    )


@phase_asset(P2, gates.DAEMONS_READY, deps=[run_header], kinds={"python", "postgres"})
def daemons_ready(context: AssetExecutionContext, platform: PlatformResource):
    """P2 DAEMONS_READY: the spine packs run for this run, supervised (restart with backoff)."""
    h, run_id = platform.handles, context.partition_key
    with platform.connect() as conn:
        conn.autocommit = True
        statuses = readiness.start_and_wait(h, conn, run_id, log=context.log.info)
    doc = readiness.readiness_doc(h, statuses, run_id)
    writer = platform.evidence(run_id)
    writer.write_summary(h.get("DAEMONS_READY_PATH_PATTERN"), doc, phase_id=P2)
    return Verdict(
        writer, doc, {f"{w['component']}": f"{w['state']} pid {w['pid']}" for p in doc["packs"] for w in p["workers"]}
    )

"""Operate-plane assets: P(-1) PACKAGING_READY (`platform_image`), P1 RUN_PINNED (`run_header`), P2 DAEMONS_READY
(`daemons_ready`)."""

from typing import Any

import boto3
from dagster import AssetExecutionContext, Config, MetadataValue

from fp_platform.checks import Verdict, fail_phase, phase_asset
from fp_platform.contracts.evidence import EvidenceError
from fp_platform.contracts.phases import P1, P2, P_M1
from fp_platform.operate import gates, packaging, readiness
from fp_platform.operate.run_pinning import RunParams, image_from_packaging, p1_facts, pin_run
from fp_platform.resources import GateCatalog, PlatformResource


@phase_asset(P_M1, gates.PLATFORM_IMAGE, kinds={"docker", "python"})
def platform_image(context: AssetExecutionContext, platform: PlatformResource, gate_catalog: GateCatalog):
    """P(-1) PACKAGING_READY: the code this run executes is packaged and named: immutable git-<sha> tag, lock
    consistent with pyproject, smoke without secrets, and (where the profile runs an image) the registry digest
    of that tag; written to packaging/image_provenance.json, which P1 pins into run.json."""
    h = platform.handles
    region = h.get("AWS_REGION")
    facts = packaging.packaging_facts(
        h,
        # the Definitions this step runs in, as definitions.py counted them: they imported and resolved
        in_process_definitions={"assets": gate_catalog.assets, "checks": gate_catalog.checks},
        ecr_factory=lambda: boto3.client("ecr", region_name=region),
        account_id=lambda: boto3.client("sts", region_name=region).get_caller_identity()["Account"],
    )
    image = packaging.image_provenance(facts)
    shown: dict[str, Any] = {k: v for k, v in image.items() if v is not None and not isinstance(v, bool)}
    return Verdict(
        platform.evidence(context.partition_key),
        facts,
        {**shown, "git_dirty": bool(facts["git_dirty"])},
        {h.get("IMAGE_PROVENANCE_PATH_PATTERN"): {**facts, "image": image}},
    )


class RunHeaderConfig(Config):
    scale: str = "demo"
    seed: int = 42


@phase_asset(P1, gates.RUN_HEADER, deps=[platform_image], kinds={"s3", "postgres"})
def run_header(context: AssetExecutionContext, config: RunHeaderConfig, platform: PlatformResource):
    """P1 RUN_PINNED: the run's pinned config and digest, written once to run.json, with the image identity P(-1)
    recorded (a run without it is refused: run.json would name code nobody checked)."""
    h = platform.handles
    writer = platform.evidence(context.partition_key)
    with platform.connect() as conn:
        try:
            image = image_from_packaging(writer.read(h.get("IMAGE_PROVENANCE_PATH_PATTERN")))
            pinned = pin_run(h, writer, conn, RunParams(scale=config.scale, seed=config.seed), image)
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

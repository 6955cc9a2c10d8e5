"""Operate-plane assets: P(-1) PACKAGING_READY (`platform_image`), P0 SUBSTRATE_READY (`substrate_snapshot`), P1
RUN_PINNED (`run_header`), P2 DAEMONS_READY (`daemons_ready`), P17 TEARDOWN_IDLE_SAFE (`teardown_proof`)."""

from typing import Any

import boto3
from dagster import AssetExecutionContext, Config, Failure, MetadataValue

from fp_platform.checks import Verdict, fail_phase, phase_asset
from fp_platform.contracts.evidence import EvidenceError
from fp_platform.contracts.gates import judge
from fp_platform.contracts.phases import P0, P1, P2, P17, P_M1
from fp_platform.operate import gates, packaging, readiness, substrate_ready, teardown
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


@phase_asset(P0, gates.SUBSTRATE_READY, kinds={"s3", "kafka", "postgres"})
def substrate_snapshot(context: AssetExecutionContext, platform: PlatformResource):
    """P0 SUBSTRATE_READY: every handle of the profile resolves (buckets, topics, database over TLS as the
    application role, secrets) and no forbidden infrastructure exists; the snapshot and the handle
    conformance record go to the environment's substrate evidence prefix."""
    h, run_id = platform.handles, context.partition_key
    facts = substrate_ready.substrate_facts(h, platform.store, run_id, platform.connect)
    snapshot = {**facts, "gates": {r.name: r.passed for r in judge(gates.SUBSTRATE_READY, facts)}}
    snapshot_name, conformance_name = substrate_ready.evidence_names(h, run_id)
    env_writer = substrate_ready.substrate_evidence(h, platform.store, run_id)
    try:
        env_writer.write_summary(snapshot_name, snapshot, phase_id=P0)
        env_writer.write_summary(conformance_name, substrate_ready.handle_conformance(h, facts), phase_id=P0)
    except Exception as exc:  # the evidence bucket itself is unreachable: nothing can record the verdict
        raise Failure(description=f"{P0}: the substrate snapshot cannot be written: {exc}") from exc
    return Verdict(
        platform.evidence(run_id),
        facts,
        {"snapshot": MetadataValue.url(env_writer.uri(snapshot_name)), "probe_seconds": facts["seconds"]},
    )


class RunHeaderConfig(Config):
    scale: str = "demo"
    seed: int = 42


@phase_asset(P1, gates.RUN_HEADER, deps=[platform_image, substrate_snapshot], kinds={"s3", "postgres"})
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


@phase_asset(P17, gates.TEARDOWN, deps=["run_closure"], kinds={"python", "s3"})
def teardown_proof(context: AssetExecutionContext, platform: PlatformResource):
    """P17 TEARDOWN_IDLE_SAFE (dev_min P12): the closed run's daemons stopped, the demo stack destroyed (cloud),
    nothing cost-bearing left by a tag-based scan, demo credentials gone, evidence still readable."""
    h, run_id = platform.handles, context.partition_key
    writer = platform.evidence(run_id)
    facts = teardown.teardown_facts(h, writer, platform.connect)
    passed = {r.name: r.passed for r in judge(gates.TEARDOWN, facts)}
    return Verdict(
        writer,
        facts,
        {
            "stopped": MetadataValue.json(facts["daemons"]["stopped"]),
            "residuals": len(facts["residuals"]["found"]),
            "proof": MetadataValue.url(writer.uri(h.get("TEARDOWN_PROOF_PATH_PATTERN"))),
        },
        evidence={
            h.get("TEARDOWN_PROOF_PATH_PATTERN"): teardown.proof_doc(facts, passed),
            h.get("RESIDUAL_SCAN_PATH_PATTERN"): {"residuals": facts["residuals"], "daemons": facts["daemons"]},
            h.get("COST_GUARDRAIL_SNAPSHOT_PATH_PATTERN"): facts["cost"],
        },
    )

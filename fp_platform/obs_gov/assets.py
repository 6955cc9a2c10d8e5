"""Obs/Gov assets: P11 OBS_GOV_CLOSED (`run_closure`) and P16 FULL_PLATFORM_CLOSED (`platform_verdict`).

`run_closure` launches the single-writer reporter (`python -m fp_platform.obs_gov.jobs report`) through
Pipes, naming every gate verdict of P1..P10 that the Definitions hold, and judges the closure it wrote.
`platform_verdict` scans what still serves the run (operate's teardown scan: only operate renders the packs)
and launches the verdict job, which judges the run from its evidence alone, that scan included.
"""

from typing import Optional

from dagster import AssetExecutionContext, Config, MetadataValue

from fp_platform.checks import Verdict, launch_job, phase_asset
from fp_platform.contracts.evidence import EvidenceError
from fp_platform.contracts.phases import P11, P16
from fp_platform.obs_gov import gates
from fp_platform.operate import teardown
from fp_platform.resources import GateCatalog, Pipes, PlatformResource


@phase_asset(P11, gates.RUN_CLOSURE, deps=["label_summary"], kinds={"s3", "postgres"})
def run_closure(
    context: AssetExecutionContext,
    platform: PlatformResource,
    pipes: Pipes,
    gate_catalog: GateCatalog,
):
    """P11: the single-writer reporter closes the run: report, reconciliation, replay anchors, conformance, anomalies,
    governance log, drills, run_completed."""
    h, run_id = platform.handles, context.partition_key
    writer = platform.evidence(run_id)
    args = [a for name in gate_catalog.spine_verdicts for a in ("--expect-gate", name)]
    result = launch_job(context, pipes, platform, P11, "fp_platform.obs_gov.jobs", "report", *args)
    status = result.get("status")
    if status in (gates.LOCK_HELD, gates.EVIDENCE_MISSING):
        return Verdict(writer, result, {"status": status, "reason": result["reason"]}, only=gates.REFUSED_CLOSURE)
    try:
        marker = writer.read(h.get("RUN_CLOSURE_MARKER_PATH_PATTERN"))
        marker_ok = marker["closure_id"] == result["closure_id"] and all(writer.exists(n) for n in marker["files"])
    except EvidenceError as exc:
        marker, marker_ok = {"error": str(exc)}, False
    return Verdict(
        writer,
        {**result, "marker": marker, "marker_ok": marker_ok},
        {
            "status": result["status"],
            "report": MetadataValue.url(result["report_html"]),
            "funnel": MetadataValue.json(result["funnel"]),
            "drills": MetadataValue.json(result["drills"]),
            "decision_latency_p99_ms": result["decision_latency_p99_ms"],
            "governance_events": result["governance_events"],
        },
    )


class VerdictConfig(Config):
    """The spine run that decided with the bundle this run promoted (`fp-platform run --full` sets it)."""

    second_run: Optional[str] = None  # noqa: UP045 - Dagster Config needs typing.Optional


@phase_asset(P16, gates.PLATFORM_VERDICT, deps=["mpr_promotion"], kinds={"s3"})
def platform_verdict(context: AssetExecutionContext, config: VerdictConfig, platform: PlatformResource, pipes: Pipes):
    """P16: the full-platform verdict: source matrix and six-proof lane matrix from evidence, blocker-free or the list
    of blockers."""
    h, writer = platform.handles, platform.evidence(context.partition_key)
    scan = teardown.workloads_at_verdict(h, writer)
    writer.write_summary(h.get("VERDICT_WORKLOAD_SCAN_PATH_PATTERN"), scan, phase_id=P16)
    args = ["--second-run", config.second_run] if config.second_run else []
    result = launch_job(context, pipes, platform, P16, "fp_platform.obs_gov.jobs", "verdict", *args)
    facts = {
        "published": all(
            writer.exists(h.get(k)) for k in ("PLATFORM_VERDICT_PATH_PATTERN", "PROOF_MATRIX_PATH_PATTERN")
        ),
        "verdict_uri": writer.uri(h.get("PLATFORM_VERDICT_PATH_PATTERN")),
    }
    return Verdict(
        writer, {**result, **facts}, {"verdict": result["verdict"], "blockers": MetadataValue.json(result["blockers"])}
    )

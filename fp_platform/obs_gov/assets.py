"""Obs/Gov assets: P11 OBS_GOV_CLOSED (`run_closure`) and P16 FULL_PLATFORM_CLOSED (`platform_verdict`).

`run_closure` launches the single-writer reporter (`python -m fp_platform.obs_gov.jobs report`) through
Pipes, naming every gate verdict of P1..P10 that the Definitions hold, and judges the closure it wrote.
`platform_verdict` launches the verdict job, which judges the run from its evidence alone.
"""

from typing import Optional

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, PipesSubprocessClient, asset

from fp_platform.checks import gate_check_results, gate_specs, launch_job
from fp_platform.contracts.evidence import EvidenceError
from fp_platform.contracts.gates import GateResult, gate_evidence_name
from fp_platform.contracts.phases import P11, P16, PHASES, phase
from fp_platform.obs_gov import reporter, verdict
from fp_platform.resources import PlatformResource, platform_run_partitions

CLOSED_PHASES = {p.group: p.phase_id for p in PHASES if p.phase_id in reporter.SPINE}


def _expected_gates(context: AssetExecutionContext) -> list[str]:
    """The gate verdict file of every P1..P10 asset in the Definitions this asset runs in (read from the run's
    own repository, not by importing `definitions`, which imports this module)."""
    graph = context.repository_def.asset_graph
    return sorted(gate_evidence_name(CLOSED_PHASES[graph.get(k).group_name], k.to_user_string())
                  for k in graph.materializable_asset_keys if graph.get(k).group_name in CLOSED_PHASES)


@asset(group_name=phase(P11).group, partitions_def=platform_run_partitions, deps=["label_summary"],
       kinds={"s3", "postgres"},
       check_specs=gate_specs("run_closure", {
           "single_writer": "the reporter held the run's lock for the whole closure; no other reporter wrote",
           "evidence_complete": "every required phase summary and gate verdict exists and belongs to the run",
           "reconciliation_holds": "WSP sent = IG receipts (plus at most the events of requests WSP retried) ="
                                   " ADMIT+DUPLICATE+QUARANTINE+ANOMALY; admitted traffic"
                                   " = vectors = bindings = decisions = intents = outcomes = chains; cases; labels",
           "replay_anchors_valid": "offset ranges for every required topic/partition, equal to the P7 and P8 snapshots",
           "conformance_pass": "environment conformance PASS (handles, loopback only, auth on, append-only triggers)",
           "drills_observed": "every drill the run carried: expected = observed",
           "spine_closeout": "DF/AL/DLA GREEN, AL intake = outcomes, lineage_unresolved_total = 0, WSP bounded"
                             " counts (local parity §11.1)",
           "run_completed": "the closure marker was written last, after the report and the governance log"}),
       description="P11: the single-writer reporter closes the run: report, reconciliation, replay anchors, "
                   "conformance, anomalies, governance log, drills, run_completed.")
def run_closure(context: AssetExecutionContext, platform: PlatformResource, pipes: PipesSubprocessClient):
    h, run_id = platform.handles, context.partition_key
    writer = platform.evidence(run_id)
    args = [a for name in _expected_gates(context) for a in ("--expect-gate", name)]
    result = launch_job(context, pipes, platform.profile, writer, P11, "fp_platform.obs_gov.jobs", "report", *args)
    status = result.get("status")
    if status in ("REFUSED_LOCK_HELD", "REFUSED_EVIDENCE_MISSING"):
        gates = [GateResult("single_writer", status != "REFUSED_LOCK_HELD", result["reason"]),
                 GateResult("evidence_complete", status != "REFUSED_EVIDENCE_MISSING",
                            "missing: " + "; ".join(result.get("missing", [])) if result.get("missing")
                            else "not reached")]
        return MaterializeResult(metadata={"status": status, "reason": result["reason"]},
                                 check_results=gate_check_results(writer, P11, "run_closure", gates))
    try:
        marker = writer.read(h.get("RUN_CLOSURE_MARKER_PATH_PATTERN"))
        marker_ok = marker["closure_id"] == result["closure_id"] and all(writer.exists(n) for n in marker["files"])
    except EvidenceError as exc:
        marker, marker_ok = {"error": str(exc)}, False
    drills = result["drills"]
    closeout = result["spine_closeout"]
    gates = [
        GateResult("single_writer", True, f"{result['lock_key']} held by closure {result['closure_id']}"),
        GateResult("evidence_complete", True, f"{len(result['written'])} closure files from the phases' evidence"),
        GateResult("reconciliation_holds", result["reconciliation_holds"],
                   "; ".join(result["reconciliation_mismatches"]) or "every count agrees",
                   {"funnel": result["funnel"]}),
        GateResult("replay_anchors_valid", not result["anchor_problems"],
                   "; ".join(result["anchor_problems"][:5]) or "anchors equal the P7 and P8 snapshots"),
        GateResult("conformance_pass", result["conformance"] == "PASS", f"conformance {result['conformance']}"),
        GateResult("drills_observed", bool(drills) and all(v == "PASS" for v in drills.values()),
                   ", ".join(f"{d} {v}" for d, v in drills.items()) or "no drill in the run (the spec asks for one)",
                   {"drills": drills}),
        GateResult("spine_closeout", closeout["holds"], "; ".join(closeout["problems"]) or
                   f"GREEN; WSP emitted {closeout['wsp_emitted']}"),
        GateResult("run_completed", marker_ok, f"run_completed.json by {result['closure_id']}" if marker_ok
                   else f"closure marker absent or not this closure's: {marker}"),
    ]
    return MaterializeResult(
        metadata={"status": result["status"], "report": MetadataValue.url(result["report_html"]),
                  "funnel": MetadataValue.json(result["funnel"]), "drills": MetadataValue.json(drills),
                  "decision_latency_p99_ms": result["decision_latency_p99_ms"],
                  "governance_events": result["governance_events"]},
        check_results=gate_check_results(writer, P11, "run_closure", gates))


class VerdictConfig(Config):
    """The spine run that decided with the bundle this run promoted (`fp-platform run --full` sets it)."""

    second_run: Optional[str] = None  # noqa: UP045 - Dagster Config needs typing.Optional


@asset(group_name=phase(P16).group, partitions_def=platform_run_partitions, deps=["mpr_promotion"],
       kinds={"s3"},
       check_specs=gate_specs("platform_verdict", {
           "source_matrix_blocker_free": "every phase P1..P15 of the run passed; the second run's P5..P11 passed and"
                                         " its decisions carry the promoted bundle",
           "six_proof_matrix_complete": "deploy, monitor, failure drill, recovery, rollback and cost-control proofs"
                                        " for spine, ofs, mf, mpr and teardown, each from named evidence",
           "verdict_published": "the verdict, the proof matrix and one file per lane proof are written"}),
       description="P16: the full-platform verdict: source matrix and six-proof lane matrix from evidence, "
                   "blocker-free or the list of blockers.")
def platform_verdict(context: AssetExecutionContext, config: VerdictConfig, platform: PlatformResource,
                     pipes: PipesSubprocessClient):
    writer = platform.evidence(context.partition_key)
    args = ["--second-run", config.second_run] if config.second_run else []
    result = launch_job(context, pipes, platform.profile, writer, P16, "fp_platform.obs_gov.jobs",
                        "verdict", *args)
    blockers, source_blockers, lane_blockers = result["blockers"], result["source_blockers"], result["lane_blockers"]
    h = platform.handles
    published = all(writer.exists(h.get(k)) for k in ("PLATFORM_VERDICT_PATH_PATTERN", "PROOF_MATRIX_PATH_PATTERN"))
    second = result["verification_run"]
    gates = [
        GateResult("source_matrix_blocker_free", not source_blockers,
                   "; ".join(source_blockers) or "P1..P15 PASS" + (
                       f"; second run {second['platform_run_id']} P5..P11 PASS deciding with {second['promoted']}"
                       if second else "; no second run named"), {"source_matrix": result["source_matrix"]}),
        GateResult("six_proof_matrix_complete", not lane_blockers,
                   "; ".join(lane_blockers) or f"{len(verdict.LANES)} lanes x {len(verdict.PROOF_CLASSES)} proofs",
                   {"proof_matrix": {lane: {c: p["passed"] for c, p in proofs.items()}
                                     for lane, proofs in result["proof_matrix"].items()}}),
        GateResult("verdict_published", published, f"verdict {result['verdict']} at "
                   f"{writer.uri(h.get('PLATFORM_VERDICT_PATH_PATTERN'))}"),
    ]
    return MaterializeResult(metadata={"verdict": result["verdict"], "blockers": MetadataValue.json(blockers)},
                             check_results=gate_check_results(writer, P16, "platform_verdict", gates))

"""The gates of P11 OBS_GOV_CLOSED and P16 FULL_PLATFORM_CLOSED, each declared once: name, meaning and predicate
over what the phase's one-shot job reported (plus the facts the asset adds). Dagster-free: the assets turn
them into blocking checks; the unit tests judge them on documents of their own."""

from __future__ import annotations

from typing import Any

from fp_platform.contracts.gates import Gate, Judgement
from fp_platform.obs_gov import verdict

Doc = dict[str, Any]
LOCK_HELD, EVIDENCE_MISSING = "REFUSED_LOCK_HELD", "REFUSED_EVIDENCE_MISSING"


# --- P11 run_closure: doc = the reporter's report (`status`, ...) + marker_ok, marker ----------------------
def _single_writer(d: Doc) -> Judgement:
    if d["status"] == LOCK_HELD:
        return False, d["reason"]
    if d["status"] == EVIDENCE_MISSING:
        return True, d["reason"]
    return True, f"{d['lock_key']} held by closure {d['closure_id']}"


def _evidence_complete(d: Doc) -> Judgement:
    if d["status"] == EVIDENCE_MISSING:
        return False, "missing: " + "; ".join(d.get("missing", [])) if d.get("missing") else "not reached"
    if d["status"] == LOCK_HELD:
        return True, "not reached"
    return True, f"{len(d['written'])} closure files from the phases' evidence"


def _drills_observed(d: Doc) -> Judgement:
    drills = d["drills"]
    return (
        bool(drills) and all(v == "PASS" for v in drills.values()),
        ", ".join(f"{k} {v}" for k, v in drills.items()) or "no drill in the run (the spec asks for one)",
        {"drills": drills},
    )


RUN_CLOSURE = (
    Gate(
        "single_writer",
        "the reporter held the run's lock for the whole closure; no other reporter wrote",
        _single_writer,
    ),
    Gate(
        "evidence_complete",
        "every required phase summary and gate verdict exists and belongs to the run",
        _evidence_complete,
    ),
    Gate(
        "reconciliation_holds",
        "WSP sent = IG receipts (plus at most the events of requests WSP retried) ="
        " ADMIT+DUPLICATE+QUARANTINE+ANOMALY; admitted traffic"
        " = vectors = bindings = decisions = intents = outcomes = chains; cases; labels",
        lambda d: (
            d["reconciliation_holds"],
            "; ".join(d["reconciliation_mismatches"]) or "every count agrees",
            {"funnel": d["funnel"]},
        ),
    ),
    Gate(
        "replay_anchors_valid",
        "offset ranges for every required topic/partition, equal to the P7 and P8 snapshots",
        lambda d: (
            not d["anchor_problems"],
            "; ".join(d["anchor_problems"][:5]) or "anchors equal the P7 and P8 snapshots",
        ),
    ),
    Gate(
        "conformance_pass",
        "environment conformance PASS (handles, loopback only, auth on, append-only triggers)",
        lambda d: (d["conformance"] == "PASS", f"conformance {d['conformance']}"),
    ),
    Gate("drills_observed", "every drill the run carried: expected = observed", _drills_observed),
    Gate(
        "spine_closeout",
        "DF/AL/DLA GREEN, AL intake = outcomes, lineage_unresolved_total = 0, WSP bounded counts (local parity §11.1)",
        lambda d: (
            d["spine_closeout"]["holds"],
            "; ".join(d["spine_closeout"]["problems"]) or f"GREEN; WSP emitted {d['spine_closeout']['wsp_emitted']}",
        ),
    ),
    Gate(
        "run_completed",
        "the closure marker was written last, after the report and the governance log",
        lambda d: (
            d["marker_ok"],
            f"run_completed.json by {d['closure_id']}"
            if d["marker_ok"]
            else f"closure marker absent or not this closure's: {d['marker']}",
        ),
    ),
)
REFUSED_CLOSURE = RUN_CLOSURE[:2]  # a refused closure is judged on who held the lock and what was missing


# --- P16 platform_verdict: doc = the verdict job's report + published, verdict_uri ----------------------------
def _source_matrix(d: Doc) -> Judgement:
    second = d["verification_run"]
    return (
        not d["source_blockers"],
        "; ".join(d["source_blockers"])
        or "P1..P15 PASS"
        + (
            f"; second run {second['platform_run_id']} P5..P11 PASS deciding with {second['promoted']}"
            if second
            else "; no second run named"
        ),
        {"source_matrix": d["source_matrix"]},
    )


PLATFORM_VERDICT = (
    Gate(
        "source_matrix_blocker_free",
        "every phase P1..P15 of the run passed; the second run's P5..P11 passed and"
        " its decisions carry the promoted bundle",
        _source_matrix,
    ),
    Gate(
        "six_proof_matrix_complete",
        "deploy, monitor, failure drill, recovery, rollback and cost-control proofs"
        " for spine, ofs, mf, mpr and teardown, each from named evidence",
        lambda d: (
            not d["lane_blockers"],
            "; ".join(d["lane_blockers"]) or f"{len(verdict.LANES)} lanes x {len(verdict.PROOF_CLASSES)} proofs",
            {
                "proof_matrix": {
                    lane: {c: p["passed"] for c, p in proofs.items()} for lane, proofs in d["proof_matrix"].items()
                }
            },
        ),
    ),
    Gate(
        "verdict_published",
        "the verdict, the proof matrix and one file per lane proof are written",
        lambda d: (d["published"], f"verdict {d['verdict']} at {d['verdict_uri']}"),
    ),
)

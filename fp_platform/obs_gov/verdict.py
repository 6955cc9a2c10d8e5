"""P16 FULL_PLATFORM_CLOSED: the full-platform verdict of a run, from its evidence alone.

Two matrices (dev_full run-process §5 P16, App. B):
- the source matrix: every phase P1..P15 of the run has gate verdicts and all of them PASS; when a
  verification run is named (the second spine run of `fp-platform run --full`, deciding with the bundle
  this run promoted), its P5..P11 pass too and its decisions carry the promoted bundle;
- the six-proof matrix: for each lane (spine, ofs, mf, mpr, teardown) a deploy, monitor, failure drill,
  recovery, rollback and cost-control proof, each a named predicate over named evidence files.
A proof whose evidence is missing fails (fail closed); every failure is a blocker with its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fp_platform.contracts.evidence import EvidenceError, EvidenceWriter
from fp_platform.contracts.gates import gate_evidence_name
from fp_platform.contracts.phases import P2, P4, P11, P12, P13, P14, P15, P16
from fp_platform.handles import Handles
from fp_platform.obs_gov import reporter
from fp_platform.substrate.evidence_store import run_evidence

LANES = ("spine", "ofs", "mf", "mpr", "teardown")
PROOF_CLASSES = ("deploy", "monitor", "failure_drill", "recovery", "rollback", "cost_control")
SOURCE_PHASES = tuple(f"P{i}" for i in range(1, 16))  # everything before the verdict
NON_REGRESSION = tuple(f"P{i}" for i in range(5, 12))  # the second run's phases that decide and close


@dataclass
class Evidence:
    """One run's evidence, and its gate verdicts by phase, asset and gate name."""

    h: Handles
    writer: EvidenceWriter

    def doc(self, name: str) -> dict[str, Any]:
        """An evidence file by name, or by the handle key of its path (`DECISION_SUMMARY_PATH_PATTERN`)."""
        return self.writer.read(self.h.get(name) if name.endswith("_PATH_PATTERN") else name)

    def gates(self, phase_id: str, asset: str) -> dict[str, dict[str, Any]]:
        return {g["name"]: g for g in self.doc(gate_evidence_name(phase_id, asset))["gates"]}

    def gate(self, phase_id: str, asset: str, name: str) -> tuple[bool, str]:
        g = self.gates(phase_id, asset)[name]
        return g["passed"], f"{phase_id} {asset}.{name}: {g['detail']}"


Proof = Callable[[Evidence], tuple[bool, str]]


def _all(*parts: tuple[bool, str]) -> tuple[bool, str]:
    return all(ok for ok, _ in parts), "; ".join(d for _, d in parts)


def _drills(e: Evidence) -> tuple[bool, str]:
    prefix, suffix = e.h.get("DRILL_RECORD_PATH_PATTERN").split("{drill_id}")
    names = [n for n in e.writer.list() if n.startswith(prefix) and n.endswith(suffix)]
    verdicts = {e.doc(n)["drill_id"]: e.doc(n)["verdict"] for n in names}
    return bool(verdicts) and all(v == "PASS" for v in verdicts.values()), f"drills {verdicts or 'none ran'}"


def _health(e: Evidence) -> tuple[bool, str]:
    """Every worker P2 saw heartbeating published its health, and none last said RED (STOPPED: stopped
    cleanly since, as a later run's P2 does)."""
    ready = e.doc("DAEMONS_READY_PATH_PATTERN")
    beating = sorted({w["component"] for p in ready["packs"] for w in p["workers"] if w["health_state"]})
    names = set(e.writer.list())
    paths = {c: e.h.pattern("COMPONENT_HEALTH_PATH_PATTERN", component=c) for c in beating}
    states = {c: e.doc(path).get("health_state") for c, path in paths.items() if path in names}
    silent = [c for c in beating if c not in states]
    bad = {c: s for c, s in states.items() if s not in ("GREEN", "AMBER", "STOPPED")}
    return bool(beating) and not silent and not bad, (
        f"{len(states)}/{len(beating)} heartbeating workers published health"
        + (f"; no health from {silent}" if silent else "")
        + (f"; unhealthy {bad}" if bad else "")
    )


def _processes_gone(e: Evidence) -> tuple[bool, str]:
    """None of the run's daemons still serves it when the verdict is judged, by the scan P16's asset took with
    P17's own probe (`operate.teardown.workloads_at_verdict`): local worker processes P2 recorded that carry the
    run's scope (a reused pid serves no run of ours), dev_min's ECS services still wanting or running a task,
    dev_full's Deployments serving the run and its job pods. No scan, or one that could not look, fails."""
    name = e.h.get("VERDICT_WORKLOAD_SCAN_PATH_PATTERN")
    if not e.writer.exists(name):
        return False, f"no {name}: nothing scanned what still serves the run"
    scan = e.doc(name)
    if scan["error"]:
        return False, f"residual scan failed: {scan['error']}"
    found = [f"{r['kind']} {r['ident']}" for r in scan["found"]]
    return not found, (
        f"{len(scan['components'])} workers ({len(scan['recorded_pids'])} processes recorded at P2), {len(found)}"
        f" still serving the run at {scan['scanned_at_utc']}" + (f": {found[:5]}" if found else "")
    )


def _readable(e: Evidence) -> tuple[bool, str]:
    names, bad = e.writer.read_back()
    return bool(names) and not bad, f"{len(names) - len(bad)}/{len(names)} evidence files read back" + (
        f"; {bad[:3]}" if bad else ""
    )


def _retention(e: Evidence) -> tuple[bool, str]:
    unbounded = [t.name for t in e.h.topics() if not t.retention_ms or t.retention_ms <= 0]
    return not unbounded, f"{len(e.h.topics())} topics with a retention bound" + (
        f"; unbounded {unbounded}" if unbounded else ""
    )


def _shadow_bounded(e: Evidence) -> tuple[bool, str]:
    window = e.doc("MPR_SHADOW_EVAL_PATH_PATTERN")["window"]
    test = e.doc("LEARNING_INPUT_BASIS_PATH_PATTERN")["windows"]
    same = (window["start"], window["end"]) == (test["test_start"], test["test_end"])
    return same, f"shadow window {window['start']}..{window['end']}, test week {test['test_start']}..{test['test_end']}"


def _doc_has(name: str, check: Callable[[dict[str, Any]], bool], what: str) -> Proof:
    def proof(e: Evidence) -> tuple[bool, str]:
        doc = e.doc(name)
        return check(doc), f"{name}: {what}"

    return proof


PROOFS: dict[str, dict[str, tuple[str, Proof]]] = {
    "spine": {
        "deploy": (
            "P2 started every pack scoped to the run and P4 found IG ready",
            lambda e: _all(e.gate(P2, "daemons_ready", "packs_running"), e.gate(P4, "ig_ready", "ig_healthy")),
        ),
        "monitor": (
            "every component published health, none RED; P11's conformance and spine close-out passed",
            lambda e: _all(
                _health(e), e.gate(P11, "run_closure", "conformance_pass"), e.gate(P11, "run_closure", "spine_closeout")
            ),
        ),
        "failure_drill": ("every drill the run carried observed what it expected", _drills),
        "recovery": (
            "the closure's replay anchors equal the P7/P8 snapshots and every count reconciles",
            lambda e: _all(
                e.gate(P11, "run_closure", "replay_anchors_valid"), e.gate(P11, "run_closure", "reconciliation_holds")
            ),
        ),
        "rollback": (
            "P15's drill rolled the decision bundle back and forward, DF resolving each",
            lambda e: _all(e.gate(P15, "mpr_promotion", "rollback_drill")),
        ),
        "cost_control": (
            "the run is bounded: the archive closed with its byte count, every topic has a retention",
            lambda e: _all(
                _doc_has(
                    "ARCHIVE_CLOSURE_MARKER_PATH_PATTERN",
                    lambda d: d["closed"] and d["bytes"] > 0,
                    "archive closed with its bytes",
                )(e),
                _retention(e),
            ),
        ),
    },
    "ofs": {
        "deploy": (
            "the dataset is committed to Iceberg and read back",
            lambda e: e.gate(P13, "ofs_dataset", "dataset_committed"),
        ),
        "monitor": ("the quality report holds", lambda e: e.gate(P13, "ofs_dataset", "quality_holds")),
        "failure_drill": (
            "the leakage checks ran and found none",
            lambda e: _all(
                e.gate(P12, "learning_input_basis", "no_label_leakage"),
                e.gate(P12, "learning_input_basis", "no_feature_leakage"),
            ),
        ),
        "recovery": (
            "online/offline parity: the dataset rebuilds what DF saw",
            lambda e: e.gate(P13, "ofs_dataset", "online_offline_parity"),
        ),
        "rollback": (
            "the rollback recipe names the committed snapshot and how to roll the table back",
            _doc_has(
                "OFS_ROLLBACK_RECIPE_PATH_PATTERN",
                lambda d: bool(d["snapshot_id"] and d["roll_back_table"]),
                "rollback recipe names the snapshot",
            ),
        ),
        "cost_control": (
            "the build read exactly the pinned basis (segments by digest), no latest reads",
            lambda e: e.gate(P12, "learning_input_basis", "basis_pinned"),
        ),
    },
    "mf": {
        "deploy": (
            "the candidate bundle is written and registered",
            lambda e: e.gate(P14, "mf_candidate", "candidate_bundle"),
        ),
        "monitor": (
            "the MLflow run holds params, metrics, plots and the signed model",
            lambda e: e.gate(P14, "mf_candidate", "tracked_in_mlflow"),
        ),
        "failure_drill": (
            "the leakage checks of training and test passed",
            lambda e: e.gate(P14, "mf_candidate", "no_leakage"),
        ),
        "recovery": (
            "the candidate reached the policy's metric floors",
            lambda e: e.gate(P14, "mf_candidate", "metric_floors"),
        ),
        "rollback": (
            "the safe-disable path names the bundle active when trained",
            _doc_has(
                "MF_SAFE_DISABLE_PATH_PATTERN",
                lambda d: d.get("active_when_trained") is not None,
                "safe-disable names the active bundle",
            ),
        ),
        "cost_control": (
            "training and test sets are the protocol's weeks, recorded with their sizes",
            _doc_has(
                "MF_EVAL_REPORT_PATH_PATTERN",
                lambda d: (
                    d["train"]["rows"] > 0
                    and d["test"]["rows"] > 0
                    and sum(
                        d["protocol"][k] is not None for k in ("train_start", "train_end", "test_start", "test_end")
                    )
                    == 4
                ),
                "train/test rows within the recorded protocol windows",
            ),
        ),
    },
    "mpr": {
        "deploy": (
            "the candidate was promoted: PROMOTED appended and published",
            lambda e: e.gate(P15, "mpr_promotion", "promotion_committed"),
        ),
        "monitor": (
            "DF resolves the promoted bundle",
            lambda e: e.gate(P15, "mpr_promotion", "active_bundle_resolves"),
        ),
        "failure_drill": (
            "compatibility ran fail-closed against what OFP serves",
            lambda e: e.gate(P15, "mpr_promotion", "compatible"),
        ),
        "recovery": (
            "ROLLED_FORWARD after the rollback resolved again",
            lambda e: e.gate(P15, "mpr_promotion", "rollback_drill"),
        ),
        "rollback": (
            "the rollback drill report records every step, each resolved and its model loaded",
            _doc_has(
                "MPR_ROLLBACK_DRILL_REPORT_PATH_PATTERN",
                lambda d: d["passed"] and len(d["steps"]) == 3 and all(s["resolves"] for s in d["steps"]),
                "3 steps, each resolved",
            ),
        ),
        "cost_control": (
            "the shadow replayed exactly the basis's test week (bounded, nothing emitted)",
            lambda e: _shadow_bounded(e),
        ),
    },
    "teardown": {
        "deploy": (
            "P2 recorded every process teardown must stop",
            _doc_has(
                "DAEMONS_READY_PATH_PATTERN",
                lambda d: all(w["processes"] for p in d["packs"] for w in p["workers"]),
                "every worker's processes recorded",
            ),
        ),
        "monitor": (
            "residual scan at the verdict: nothing (process, service, Deployment, pod) serves the run",
            _processes_gone,
        ),
        "failure_drill": (
            "a second reporter was refused: one writer closes a run",
            lambda e: e.gate(P11, "run_closure", "single_writer"),
        ),
        "recovery": ("the evidence remains readable after the run's runtime is gone", _readable),
        "rollback": (
            "the OFS rollback recipe and the MF safe-disable path survive the teardown",
            lambda e: _all(
                _doc_has(
                    "OFS_ROLLBACK_RECIPE_PATH_PATTERN",
                    lambda d: bool(d["roll_back_table"]),
                    "OFS rollback recipe readable",
                )(e),
                _doc_has("MF_SAFE_DISABLE_PATH_PATTERN", lambda d: bool(d["how"]), "MF safe-disable readable")(e),
            ),
        ),
        "cost_control": (
            "no residual worker and every topic bounded by retention",
            lambda e: _all(_processes_gone(e), _retention(e)),
        ),
    },
}


def _prove(e: Evidence, proof: Proof) -> tuple[bool, str]:
    try:
        return proof(e)
    except (EvidenceError, KeyError) as exc:  # no evidence, no proof
        return False, f"evidence missing: {exc}"


def source_matrix(e: Evidence, phases: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Each phase's gate verdicts (every asset of the phase), PASS only when it has some and all pass."""
    names = e.writer.list()
    out = {}
    for pid in phases:
        files = [n for n in names if n.startswith(f"gates/{pid}/")]
        verdicts = {n.split("/")[-1].removesuffix(".json"): e.doc(n)["verdict"] for n in files}
        out[pid] = {
            "verdict": "PASS" if verdicts and all(v == "PASS" for v in verdicts.values()) else "FAIL",
            "assets": verdicts or "no gate verdicts",
        }
    return out


def platform_verdict(
    h: Handles, writer: EvidenceWriter, second: EvidenceWriter | None, promoted: tuple[str, str] | None
) -> dict[str, Any]:
    e = Evidence(h, writer)
    sources = source_matrix(e, SOURCE_PHASES)
    blockers = [f"{pid}: {s['assets']}" for pid, s in sources.items() if s["verdict"] != "PASS"]
    lane_blockers = []
    verification: dict[str, Any] | None = None
    if second is None and promoted is not None:
        blockers.append(
            f"no verification run: nothing shows the spine passing while deciding with the promoted"
            f" {promoted[0]} {promoted[1]} (fp-platform run --full runs one)"
        )
    if second is not None:
        e2 = Evidence(h, second)
        again = source_matrix(e2, NON_REGRESSION)
        try:
            bundles = _bundles(e2)
        except (EvidenceError, KeyError) as exc:
            bundles = []
            blockers.append(f"second run's decision summary unreadable: {exc}")
        carries = promoted is not None and list(promoted) in bundles
        verification = {
            "platform_run_id": second.platform_run_id,
            "phases": again,
            "decision_bundles": bundles,
            "promoted": list(promoted) if promoted else None,
            "decisions_carry_promoted_bundle": carries,
        }
        blockers += [f"second run {pid}: {s['assets']}" for pid, s in again.items() if s["verdict"] != "PASS"]
        if not carries:
            blockers.append(f"second run's decisions carry {bundles}, not the promoted {promoted}")
    matrix: dict[str, dict[str, Any]] = {}
    for lane in LANES:
        matrix[lane] = {}
        for cls in PROOF_CLASSES:
            means, proof = PROOFS[lane][cls]
            ok, detail = _prove(e, proof)
            matrix[lane][cls] = {"passed": ok, "means": means, "detail": detail}
            if not ok:
                lane_blockers.append(f"{lane}.{cls}: {detail}")
    return {
        "verdict": "PASS" if not blockers + lane_blockers else "FAIL",
        "blockers": blockers + lane_blockers,
        "source_blockers": blockers,
        "lane_blockers": lane_blockers,
        "source_matrix": sources,
        "proof_matrix": matrix,
        "verification_run": verification,
    }


def _bundles(e: Evidence) -> list[list[str]]:
    doc = e.doc("DECISION_SUMMARY_PATH_PATTERN")
    return [[b["bundle_id"], b["bundle_version"]] for b in doc["bundles"]]


def publish(h: Handles, writer: EvidenceWriter, verdict: dict[str, Any]) -> None:
    """The verdict bundle: the verdict, the proof matrix, one file per lane and proof."""
    for lane, proofs in verdict["proof_matrix"].items():
        for cls, proof in proofs.items():
            writer.write_summary(
                h.pattern("LANE_PROOF_PATH_PATTERN", lane=lane, proof_class=cls),
                {"lane": lane, "proof_class": cls, **proof},
                phase_id=P16,
            )
    writer.write_summary(h.get("PROOF_MATRIX_PATH_PATTERN"), {"lanes": verdict["proof_matrix"]}, phase_id=P16)
    writer.write_summary(h.get("PLATFORM_VERDICT_PATH_PATTERN"), verdict, phase_id=P16)


def judge(h: Handles, run_id: str, second_run: str | None) -> dict[str, Any]:
    """Judge the run (and its verification run), publish the verdict bundle, return the verdict."""
    writer = run_evidence(h, run_id)
    promoted = None
    receipt = h.get("MPR_PROMOTION_RECEIPT_PATH_PATTERN")
    if writer.exists(receipt) and writer.read(receipt).get("promoted"):
        c = writer.read(receipt)["candidate"]
        promoted = (c["bundle_id"], c["bundle_version"])
    second = run_evidence(h, second_run, store=writer.store) if second_run else None
    result = platform_verdict(h, writer, second, promoted)
    publish(h, writer, result)
    if writer.exists(h.get("RUN_REPORT_PATH_PATTERN")):
        try:  # a page for people: the verdict above is recorded whether or not it renders
            reporter.publish_html(h, writer)  # now with the learning lane's section
        except Exception as exc:
            result["report_html_error"] = f"{type(exc).__name__}: {exc}"
    return result

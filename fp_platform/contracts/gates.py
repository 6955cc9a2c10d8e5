"""Phase gates: each declared once (`Gate`: its check name, what it means, its predicate over the phase's
evidence document), and the verdict every gated asset records (`gates/<phase_id>/<asset>.json`), so a run
that fails still leaves a record of the failed phase, the asset and the reason.

A plane's `gates.py` declares its gates; the Dagster glue (`checks.py`) turns the same declarations into
blocking asset checks, so a gate's name is written once and its predicate is a plain function that unit
tests call without the stack.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from fp_platform.contracts.evidence import EvidenceWriter


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    detail: str
    metadata: dict[str, Any] = field(default_factory=dict)
    advisory: bool = False  # reported (a warning when failed) but does not decide the verdict


# A predicate's answer: passed, the detail shown with the check, and optionally metadata for the check.
Judgement = tuple[bool, str] | tuple[bool, str, dict[str, Any]]


@dataclass(frozen=True)
class Gate:
    """One phase gate, declared once."""

    name: str
    description: str
    predicate: Callable[[dict[str, Any]], Judgement]
    advisory: bool = False  # reported (a warning when failed) but does not decide the verdict

    def judge(self, doc: dict[str, Any]) -> GateResult:
        passed, detail, *meta = self.predicate(doc)
        return GateResult(self.name, bool(passed), detail, meta[0] if meta else {}, self.advisory)


def none_listed(key: str, ok: str | Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], Judgement]:
    """A predicate over `doc[key]` (the problems a phase found): passes when it lists none; the detail is the
    problems, or `ok` (a text, or a function of the document) when there are none. Most "nothing is wrong" gates
    are this, so each declares only where its problems are and what a pass says."""

    def predicate(d: dict[str, Any]) -> Judgement:
        found = d[key]
        return not found, "; ".join(found) or (ok(d) if callable(ok) else ok)

    return predicate


def workers_green(healthy: str | Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], Judgement]:
    """A predicate over `doc["unhealthy"]` (the workers not GREEN for the run): passes when it names none,
    with `healthy` as the detail."""
    return none_listed("unhealthy", healthy)


def tables_append_only(d: dict[str, Any]) -> Judgement:
    """A predicate over `doc["append_only_tables"]` (table -> the database refuses UPDATE/DELETE there)."""
    mutable = [t for t, ok in d["append_only_tables"].items() if not ok]
    return not mutable, (
        f"no append-only trigger on {mutable}"
        if mutable
        else f"{len(d['append_only_tables'])} tables refuse UPDATE/DELETE"
    )


def judge(gates: Sequence[Gate], doc: dict[str, Any]) -> list[GateResult]:
    """Every gate's result over the phase's evidence document, in declaration order."""
    return [g.judge(doc) for g in gates]


def gate_evidence_name(phase_id: str, asset: str) -> str:
    return f"gates/{phase_id}/{asset.replace('/', '__')}.json"


def record_gates(writer: EvidenceWriter, phase_id: str, asset: str, results: list[GateResult]) -> dict[str, Any]:
    """Write one asset's gate verdict (a derived summary: re-materialising the asset replaces it)."""
    return writer.write_summary(
        gate_evidence_name(phase_id, asset),
        {
            "asset": asset,
            "verdict": "PASS" if results and all(r.passed for r in results if not r.advisory) else "FAIL",
            "warnings": [f"{r.name}: {r.detail}" for r in results if r.advisory and not r.passed],
            "gates": [asdict(r) for r in results],
        },
        phase_id=phase_id,
    )

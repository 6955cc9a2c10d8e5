"""Phase gate verdicts: what each gate saw, and the evidence file that records it.

Every gated asset writes its verdict into the run's evidence (`gates/<phase_id>/<asset>.json`), so
a run that fails still leaves a record of the failed phase, the asset and the reason.
"""

from __future__ import annotations

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

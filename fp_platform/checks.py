"""Gate results → Dagster blocking asset checks, with the verdict recorded in evidence."""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, Failure, MetadataValue

from fp_platform.contracts.evidence import EvidenceWriter
from fp_platform.contracts.gates import GateResult, record_gates


def gate_specs(asset: str, gates: dict[str, str]) -> list[AssetCheckSpec]:
    """Blocking checks: a failed gate stops every downstream phase."""
    return [AssetCheckSpec(name, asset=asset, blocking=True, description=desc) for name, desc in gates.items()]


def gate_check_results(
    writer: EvidenceWriter, phase_id: str, asset: str, results: list[GateResult]
) -> list[AssetCheckResult]:
    verdict = record_gates(writer, phase_id, results)
    evidence_uri = writer.uri(f"gates/{phase_id}.json")
    return [
        AssetCheckResult(
            asset_key=AssetKey(asset),
            check_name=r.name,
            passed=r.passed,
            severity=AssetCheckSeverity.ERROR,
            metadata={"detail": r.detail, "phase_id": phase_id, "verdict": verdict["verdict"],
                      "evidence": MetadataValue.url(evidence_uri),
                      **{k: MetadataValue.json(v) if isinstance(v, dict | list) else v for k, v in r.metadata.items()
                         if v is not None}},
        )
        for r in results
    ]


def fail_phase(writer: EvidenceWriter, phase_id: str, gate: str, reason: str) -> Failure:
    """Record a phase that could not reach its gates as FAIL, and return the Failure to raise."""
    record_gates(writer, phase_id, [GateResult(gate, False, reason)])
    return Failure(description=f"{phase_id} {gate}: {reason}", metadata={"phase_id": phase_id, "reason": reason})

"""Gate declarations → Dagster blocking asset checks, with the verdict recorded in evidence (`phase_asset`
builds a phase's asset from its plane function's gates; `judged` closes it); and the one launcher of
one-shot jobs, whose silent failure becomes a recorded phase verdict."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    PipesSubprocessClient,
    asset,
)

from fp_platform.contracts.evidence import EvidenceWriter
from fp_platform.contracts.gates import Gate, GateResult, gate_evidence_name, judge, record_gates
from fp_platform.contracts.phases import phase
from fp_platform.resources import platform_run_partitions


def gate_specs(asset: AssetKey | str, gates: Sequence[Gate]) -> list[AssetCheckSpec]:
    """One check per declared gate: a blocking one stops every downstream phase when it fails; an advisory one
    warns only."""
    return [AssetCheckSpec(g.name, asset=asset, blocking=not g.advisory, description=g.description) for g in gates]


def phase_asset(phase_id: str, gates: Sequence[Gate], **asset_args: Any) -> Callable:
    """`@asset` of a gated phase asset: named after the function, in the phase's group, partitioned by run,
    with one check per declared gate."""

    def wrap(fn: Callable) -> Any:
        return asset(
            name=fn.__name__,
            group_name=phase(phase_id).group,
            partitions_def=platform_run_partitions,
            check_specs=gate_specs(fn.__name__, gates),
            **asset_args,
        )(fn)

    return wrap


def judged(
    context: AssetExecutionContext,
    writer: EvidenceWriter,
    phase_id: str,
    gates: Sequence[Gate],
    doc: dict[str, Any],
    metadata: dict[str, Any] | None = None,
) -> MaterializeResult:
    """The asset's result: its declared gates judged over the phase's document, the verdict recorded."""
    return MaterializeResult(
        metadata=metadata or {},
        check_results=gate_check_results(writer, phase_id, context.asset_key, judge(gates, doc)),
    )


def gate_check_results(
    writer: EvidenceWriter, phase_id: str, asset: AssetKey | str, results: list[GateResult]
) -> list[AssetCheckResult]:
    key = AssetKey.from_coercible(asset)
    name = key.to_user_string()
    verdict = record_gates(writer, phase_id, name, results)
    evidence_uri = writer.uri(gate_evidence_name(phase_id, name))
    return [
        AssetCheckResult(
            asset_key=key,
            check_name=r.name,
            passed=r.passed,
            severity=AssetCheckSeverity.WARN if r.advisory else AssetCheckSeverity.ERROR,
            metadata={
                "detail": r.detail,
                "phase_id": phase_id,
                "verdict": verdict["verdict"],
                "evidence": MetadataValue.url(evidence_uri),
                **{
                    k: MetadataValue.json(v) if isinstance(v, dict | list) else v
                    for k, v in r.metadata.items()
                    if v is not None
                },
            },
        )
        for r in results
    ]


def refused(writer: EvidenceWriter, phase_id: str, asset: str, gate: str, result: dict) -> MaterializeResult:
    """A one-shot job refused its input: the phase's `gate` fails with the job's reason (the other gates were
    not reached), recorded in evidence like any verdict."""
    return MaterializeResult(
        metadata={"status": "REFUSED", "reason": result["reason"]},
        check_results=gate_check_results(writer, phase_id, asset, [GateResult(gate, False, result["reason"])]),
    )


def fail_phase(writer: EvidenceWriter, phase_id: str, asset: AssetKey | str, gate: str, reason: str) -> Failure:
    """Record an asset that could not reach its gates as FAIL, and return the Failure to raise."""
    record_gates(writer, phase_id, AssetKey.from_coercible(asset).to_user_string(), [GateResult(gate, False, reason)])
    return Failure(description=f"{phase_id} {gate}: {reason}", metadata={"phase_id": phase_id, "reason": reason})


def launch_job(
    context: AssetExecutionContext,
    pipes: PipesSubprocessClient,
    profile: str,
    writer: EvidenceWriter,
    phase_id: str,
    module: str,
    job: str,
    *args: str,
) -> dict:
    """Run `python -m <module> <job> --run-id <partition> ...` through Pipes; return what it reported."""
    invocation = pipes.run(
        context=context,
        env={"FP_PROFILE": profile},
        command=[sys.executable, "-m", module, job, "--run-id", context.partition_key, *args],
    )
    messages = invocation.get_custom_messages()
    if not messages:
        raise fail_phase(writer, phase_id, context.asset_key, job, "job reported no result")
    return messages[-1]

"""Gate declarations → Dagster blocking asset checks, with the verdict recorded in evidence; and the one
launcher of one-shot jobs, whose silent failure becomes a recorded phase verdict.

`phase_asset(P9, gates.DECISION_SUMMARY)` builds a phase's asset from its gates: the body gathers the
phase's facts and returns a `Verdict` (or a `Refusal`); the decorator writes its evidence files, judges
the document with the declared gates and records the verdict — the phase id, the asset key and the gate
names are each written once.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
    PipesClient,
    PipesClientCompletedInvocation,
    PipesSubprocessClient,
    asset,
)

from fp_platform.contracts.evidence import EvidenceWriter
from fp_platform.contracts.gates import Gate, GateResult, gate_evidence_name, judge, record_gates
from fp_platform.contracts.phases import phase
from fp_platform.resources import PlatformResource, ecs_task_params, k8s_job_params, platform_run_partitions


def gate_specs(asset: AssetKey | str, gates: Sequence[Gate]) -> list[AssetCheckSpec]:
    """One check per declared gate: a blocking one stops every downstream phase when it fails; an advisory one
    warns only."""
    return [AssetCheckSpec(g.name, asset=asset, blocking=not g.advisory, description=g.description) for g in gates]


@dataclass(frozen=True)
class Verdict:
    """What a phase asset's body returns: its run's evidence writer, the document its gates judge, the metadata
    the UI shows, and the evidence files to write first (name → document). `only` narrows the judgement to a
    subset of the declared gates (a closure refused before it could be judged in full)."""

    writer: EvidenceWriter
    doc: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)
    only: Sequence[Gate] | None = None


@dataclass(frozen=True)
class Refusal:
    """A phase's one-shot job refused its input: `gate` fails with the job's reason and the others fail as not
    judged (Dagster wants a result for every declared check; an unjudged gate never passes), recorded in
    evidence like any verdict."""

    writer: EvidenceWriter
    gate: str
    result: dict[str, Any]


class JobRefused(Exception):
    """A phase's one-shot job refused its input (`launch_job(..., refused_gate=...)`): `phase_asset` records the
    `Refusal` it carries, so a body that launches jobs needs no refusal check after each."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(f"{refusal.gate}: {refusal.result.get('reason')}")
        self.refusal = refusal


def summary_verdict(
    writer: EvidenceWriter,
    facts: dict[str, Any],
    name: str,
    shown: Sequence[str],
    *,
    hidden: Sequence[str] = ("unhealthy",),
    overrides: dict[str, Any] | None = None,
    slices: dict[str, dict[str, Any]] | None = None,
) -> Verdict:
    """The verdict of a plane summary: `facts` judged, the `shown` ones as metadata; evidence file `name` holds
    the facts without the `hidden` ones (the health they are judged with), with `overrides`, naming the
    bounded `slices` (evidence name → document) written beside it."""
    summary = {k: v for k, v in facts.items() if k not in hidden} | (overrides or {})
    if slices:
        summary["slices"] = list(slices)
    return Verdict(writer, facts, {k: facts[k] for k in shown}, {**(slices or {}), name: summary})


def phase_asset(phase_id: str, gates: Sequence[Gate], **asset_args: Any) -> Callable:
    """`@asset` of a gated phase asset: named after the function (or `key=`), in the phase's group, partitioned by
    run, with one check per declared gate, and its body's `Verdict` judged by those gates."""

    def wrap(fn: Callable) -> Any:
        @functools.wraps(fn)
        def body(context: AssetExecutionContext, *args: Any, **kwargs: Any) -> Any:
            try:
                outcome = fn(context, *args, **kwargs)
            except JobRefused as refused:
                outcome = refused.refusal
            if isinstance(outcome, Refusal):
                if outcome.gate not in {g.name for g in gates}:
                    raise ValueError(f"{fn.__name__} refused under {outcome.gate!r}, which is not one of its gates")
                reason = outcome.result["reason"]
                results = [
                    GateResult(
                        g.name,
                        False,
                        reason if g.name == outcome.gate else f"not judged: {outcome.gate} refused",
                        advisory=g.advisory,
                    )
                    for g in gates
                ]
                return MaterializeResult(
                    metadata={"status": "REFUSED", "reason": reason},
                    check_results=gate_check_results(outcome.writer, phase_id, context.asset_key, results),
                )
            if not isinstance(outcome, Verdict):
                return outcome
            for name, doc in outcome.evidence.items():
                outcome.writer.write_summary(name, doc, phase_id=phase_id)
            results = judge(outcome.only if outcome.only is not None else gates, outcome.doc)
            return MaterializeResult(
                metadata=outcome.metadata,
                check_results=gate_check_results(outcome.writer, phase_id, context.asset_key, results),
            )

        key = asset_args.pop("key", None) or AssetKey(fn.__name__)
        return asset(
            key=key,
            group_name=phase(phase_id).group,
            partitions_def=platform_run_partitions,
            check_specs=gate_specs(key, gates),
            **asset_args,
        )(body)

    return wrap


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


def fail_phase(writer: EvidenceWriter, phase_id: str, asset: AssetKey | str, gate: str, reason: str) -> Failure:
    """Record an asset that could not reach its gates as FAIL, and return the Failure to raise."""
    record_gates(writer, phase_id, AssetKey.from_coercible(asset).to_user_string(), [GateResult(gate, False, reason)])
    return Failure(description=f"{phase_id} {gate}: {reason}", metadata={"phase_id": phase_id, "reason": reason})


def launch_job(
    context: AssetExecutionContext,
    pipes: PipesClient,
    platform: PlatformResource,
    phase_id: str,
    module: str,
    job: str,
    *args: str,
    refused_gate: str | None = None,
) -> dict:
    """Run `python -m <module> <job> --run-id <partition> ...` through the profile's Pipes client (a local
    subprocess, an ECS task on dev_min, a pod on dev_full); return what it reported (a job that reports
    nothing fails the phase, recorded in the run's evidence). With `refused_gate`, a report of status REFUSED
    raises `JobRefused`: that gate fails with the job's reason."""
    writer = platform.evidence(context.partition_key)
    argv = ["-m", module, job, "--run-id", context.partition_key, *args]
    env = {"FP_PROFILE": platform.profile}
    if isinstance(pipes, PipesSubprocessClient):
        invocation = pipes.run(context=context, env=env, command=[sys.executable, *argv])
    else:
        invocation = _launch_in_cloud(context, pipes, platform, writer, phase_id, module, job, argv, env)
    messages = invocation.get_custom_messages()
    if not messages:
        raise fail_phase(writer, phase_id, context.asset_key, job, "job reported no result")
    result = messages[-1]
    if refused_gate and result.get("status") == "REFUSED":
        raise JobRefused(Refusal(writer, refused_gate, result))
    return result


def _launch_in_cloud(
    context: AssetExecutionContext,
    pipes: PipesClient,
    platform: PlatformResource,
    writer: EvidenceWriter,
    phase_id: str,
    module: str,
    job: str,
    argv: list[str],
    env: dict[str, str],
) -> PipesClientCompletedInvocation:
    """An ECS task (dev_min) or a pod (dev_full); the cloud clients are imported only here, off the local path."""
    from dagster_aws.pipes import PipesECSClient
    from dagster_k8s import PipesK8sClient

    if isinstance(pipes, PipesECSClient):
        params = ecs_task_params(platform.handles, module, job, ["python", *argv], env)
        return pipes.run(context=context, run_task_params=params)  # type: ignore[call-arg]
    if isinstance(pipes, PipesK8sClient):
        h = platform.handles
        image_ref = writer.read(h.get("EVIDENCE_RUN_JSON_KEY")).get("image_ref") or ""
        try:
            params = k8s_job_params(h, module, job, ["python", *argv], env, image_ref, context.partition_key)
        except ValueError as exc:  # no digest-pinned image in run.json: the pod would run an unknown image
            raise fail_phase(writer, phase_id, context.asset_key, job, str(exc)) from None
        return pipes.run(context=context, **params)  # type: ignore[call-arg]
    raise fail_phase(writer, phase_id, context.asset_key, job, f"no launch path for {type(pipes).__name__}")

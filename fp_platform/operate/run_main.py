"""`fp-platform run`: stack up → new run partition → materialise the phases in-process → verdict.

The run executes the same Definitions the UI loads, on the same Dagster instance, so a run started
here shows in the UI with its checks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from fp_platform.contracts.gates import gate_evidence_name
from fp_platform.contracts.ids import check_platform_run_id, new_platform_run_id
from fp_platform.contracts.phases import PHASES, Phase, phases_until
from fp_platform.handles import Handles, handles
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.paths import project_root

DEFAULT_SCALE = "demo"


@dataclass(frozen=True)
class PhaseOutcome:
    phase: Phase
    verdict: str  # PASS | FAIL | NOT_RUN
    reason: str


def active_run_file(h: Handles):
    return project_root() / str(h.get("ACTIVE_RUN_ID_SOURCE"))


def record_active_run(h: Handles, platform_run_id: str) -> None:
    path = active_run_file(h)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(platform_run_id + "\n")


def allocate_run_id(instance, partitions_name: str) -> str:
    """A fresh platform_run_id (second resolution): wait out a clash with an existing partition."""
    while True:
        run_id = new_platform_run_id()
        if not instance.has_dynamic_partition(partitions_name, run_id):
            return run_id
        time.sleep(0.2)


def phase_outcomes(h: Handles, platform_run_id: str, phases: tuple[Phase, ...],
                   assets_by_group: dict[str, list[str]]) -> list[PhaseOutcome]:
    """Read every gated asset's verdict back from evidence: the table shows what was recorded.
    A phase passes only when each of its assets has a PASS verdict."""
    writer = run_evidence(h, platform_run_id)
    outcomes = []
    for ph in phases:
        failed, missing, warnings, passed = [], [], [], 0
        for asset in assets_by_group.get(ph.group, []):
            name = gate_evidence_name(ph.phase_id, asset)
            if not writer.exists(name):
                missing.append(asset)
                continue
            doc = writer.read(name)
            failed += [f"{asset}.{g['name']}: {g['detail']}" for g in doc["gates"]
                       if not g["passed"] and not g.get("advisory")]
            warnings += [f"{asset}.{w}" for w in doc.get("warnings", [])]
            passed += sum(g["passed"] for g in doc["gates"])
        if failed:
            outcomes.append(PhaseOutcome(ph, "FAIL", "; ".join(failed)))
        elif missing:
            outcomes.append(PhaseOutcome(ph, "NOT_RUN", f"no gate verdict for {', '.join(missing)}"))
        else:
            warn = f"; warning: {'; '.join(warnings)}" if warnings else ""
            outcomes.append(PhaseOutcome(ph, "PASS", f"{passed} gates passed{warn}"))
    return outcomes


def pinned_scale(h: Handles, platform_run_id: str) -> str | None:
    """The scale an existing run was pinned with (so a re-materialisation keeps its config)."""
    writer = run_evidence(h, platform_run_id)
    name = h.get("EVIDENCE_RUN_JSON_KEY")
    return writer.read(name)["config"]["params"]["scale"] if writer.exists(name) else None


def main(until: str | None, scale: str | None, run_id: str | None, console: Console,
         assets: list[str] | None = None, max_events_per_output: int | None = None) -> int:
    from fp_platform.operate import dagster_home
    from fp_platform.substrate import local_stack

    h = handles()
    if h.profile == "local":
        local_stack.up(h, progress=lambda m: console.print(f"… {m}"))
    dagster_home.prepare(h)

    import warnings

    from dagster import DagsterInstance, PreviewWarning

    warnings.filterwarnings("ignore", category=PreviewWarning)  # Pipes internals; noise for operators

    from fp_platform.definitions import PLATFORM_RUN_JOB, defs

    job = defs.resolve_job_def(PLATFORM_RUN_JOB)
    implemented = {key: spec.group_name for key, spec in _asset_groups(defs).items()}
    implemented_groups = set(implemented.values())
    runnable = tuple(p for p in PHASES if p.group in implemented_groups)
    wanted = tuple(p for p in phases_until(until) if p.group in implemented_groups) if until else runnable
    if until and phases_until(until)[-1].group not in implemented_groups:
        done = ", ".join(p.phase_id for p in runnable)
        console.print(f"[red]phase {until} is not implemented yet; implemented phases: {done}[/]")
        return 2

    instance = DagsterInstance.get()
    partitions_name = h.get("PLATFORM_RUN_PARTITIONS")
    if run_id:
        check_platform_run_id(run_id)
        if not instance.has_dynamic_partition(partitions_name, run_id):
            instance.add_dynamic_partitions(partitions_name, [run_id])
    else:
        run_id = allocate_run_id(instance, partitions_name)
        instance.add_dynamic_partitions(partitions_name, [run_id])
    record_active_run(h, run_id)
    console.print(f"platform_run_id [bold]{run_id}[/] (recorded in {active_run_file(h)})")

    groups = {p.group for p in wanted}
    selection = [key for key, group in implemented.items() if group in groups]
    if assets:
        by_name = {key.to_user_string(): key for key in implemented}
        unknown = sorted(set(assets) - set(by_name))
        if unknown:
            console.print(f"[red]unknown asset(s) {', '.join(unknown)}; assets are {', '.join(sorted(by_name))}[/]")
            return 2
        selection = [by_name[a] for a in assets]
        wanted = tuple(p for p in PHASES if p.group in {implemented[k] for k in selection})
    selected = {k.to_user_string() for k in selection}
    ops: dict = {}
    if "run_header" in selected:
        ops["run_header"] = {"config": {"scale": scale or pinned_scale(h, run_id) or DEFAULT_SCALE}}
    if "wsp_stream" in selected and max_events_per_output:
        ops["wsp_stream"] = {"config": {"max_events_per_output": max_events_per_output}}
    result = job.execute_in_process(
        instance=instance,
        partition_key=run_id,
        asset_selection=selection,
        run_config={"ops": ops, "loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        raise_on_error=False,
        tags={"fp/platform_run_id": run_id, "fp/until": wanted[-1].phase_id},
    )

    assets_by_group: dict[str, list[str]] = {}
    for key, group in implemented.items():
        if not assets or key in selection:  # with --asset, judge only what was materialised
            assets_by_group.setdefault(group, []).append(key.to_user_string())
    outcomes = phase_outcomes(h, run_id, wanted, assets_by_group)
    table = Table(title=f"run {run_id}", title_justify="left")
    for col in ("phase", "name", "verdict", "reason"):
        table.add_column(col)
    for o in outcomes:
        colour = {"PASS": "green", "FAIL": "red"}.get(o.verdict, "yellow")
        table.add_row(o.phase.phase_id, o.phase.name, f"[{colour}]{o.verdict}[/]", o.reason)
    console.print(table)
    writer = run_evidence(h, run_id)
    console.print(f"evidence: s3://{writer.bucket}/{writer.run_root}  (fp-platform evidence ls {run_id})")
    ok = result.success and all(o.verdict == "PASS" for o in outcomes)
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                console.print(f"[red]step {event.step_key} failed:[/] {event.step_failure_data.error.message.strip()}")
    return 0 if ok else 1


def _asset_groups(defs):
    """asset key → group name, for every asset in the Definitions."""
    graph = defs.resolve_asset_graph()
    return {key: graph.get(key) for key in graph.materializable_asset_keys}

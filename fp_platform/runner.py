"""`fp-platform run`: stack up → new run partition → materialise the phases in-process → verdict.

The run executes the same Definitions the UI loads, on the same Dagster instance, so a run started
here shows in the UI with its checks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

from rich.console import Console
from rich.live import Live
from rich.table import Table

from fp_platform.contracts.drills import DEFAULT_DRILLS
from fp_platform.contracts.gates import gate_evidence_name
from fp_platform.contracts.ids import check_platform_run_id, new_platform_run_id
from fp_platform.contracts.phases import P11, P15, P17, PHASES, Phase, phase, phases_until
from fp_platform.handles import Handles, handles
from fp_platform.operate.active_run import active_run_location, record_active_run
from fp_platform.substrate import evidence_store
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.paths import project_root

DEFAULT_SCALE = "demo"
SPINE_LAST = P11  # a run without --full stops at the spine's closure
LEARNING_LAST = P15  # --full: the first run goes on to promotion, then a second spine run, then P16
VERDICT_ASSET = "platform_verdict"
CLOSE_OUT = P17  # a spine run ends with its teardown: a closed run leaves no worker polling (dev_min P12)


class RunRefused(ValueError):
    """The request cannot run as asked (a phase not implemented, an unknown asset): exit code 2, nothing run."""


@dataclass(frozen=True)
class PhaseOutcome:
    phase: Phase
    verdict: str  # PASS | FAIL | NOT_RUN
    reason: str


def allocate_run_id(instance, partitions_name: str) -> str:
    """A fresh platform_run_id (second resolution): wait out a clash with an existing partition."""
    while True:
        run_id = new_platform_run_id()
        if not instance.has_dynamic_partition(partitions_name, run_id):
            return run_id
        time.sleep(0.2)


def phase_outcomes(
    h: Handles, platform_run_id: str, phases: tuple[Phase, ...], assets_by_group: dict[str, list[str]]
) -> list[PhaseOutcome]:
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
            failed += [
                f"{asset}.{g['name']}: {g['detail']}" for g in doc["gates"] if not g["passed"] and not g.get("advisory")
            ]
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
    return evidence_store.pinned_scale(h, run_evidence(h, platform_run_id))


@dataclass
class RunResult:
    platform_run_id: str
    outcomes: list[PhaseOutcome]
    success: bool
    wall_s: float
    step_s: dict[str, float]  # asset key -> seconds in its step (phase work, as Dagster timed it)
    failures: list[str]


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    """Seconds between each step's start and its end, from the run's event log."""
    started, spent = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in started:
            spent[event.step_key] = round(entry.timestamp - started[event.step_key], 2)
    return spent


class PhaseProgress:
    """A live table of the phases while the run executes: each phase's verdict as its gates land in
    evidence, and how long it took (polled from the evidence store in a thread)."""

    def __init__(
        self,
        h: Handles,
        run_id: str,
        phases: tuple[Phase, ...],
        assets_by_group: dict[str, list[str]],
        console: Console,
    ) -> None:
        self.h, self.run_id, self.phases, self.assets_by_group = h, run_id, phases, assets_by_group
        self.console, self.started = console, time.monotonic()
        self.done_at: dict[str, float] = {}
        self.outcomes: list[PhaseOutcome] = []
        self._stop = threading.Event()

    def _table(self) -> Table:
        table = Table(title=f"run {self.run_id} — {time.monotonic() - self.started:.0f}s", title_justify="left")
        for col in ("phase", "name", "state", "after"):
            table.add_column(col)
        by_id = {o.phase.phase_id: o for o in self.outcomes}
        running_shown = False
        for ph in self.phases:
            o = by_id.get(ph.phase_id)
            if o and o.verdict != "NOT_RUN":
                colour = "green" if o.verdict == "PASS" else "red"
                state, after = f"[{colour}]{o.verdict}[/]", f"{self.done_at.get(ph.phase_id, 0):.0f}s"
            elif not running_shown:
                running_shown, state, after = True, "[yellow]running…[/]", ""
            else:
                state, after = "[dim]pending[/]", ""
            table.add_row(ph.phase_id, ph.name, state, after)
        return table

    def poll(self) -> None:
        self.outcomes = phase_outcomes(self.h, self.run_id, self.phases, self.assets_by_group)
        for o in self.outcomes:
            if o.verdict != "NOT_RUN":
                self.done_at.setdefault(o.phase.phase_id, time.monotonic() - self.started)

    def __enter__(self) -> PhaseProgress:
        self._live = Live(self._table(), console=self.console, refresh_per_second=1, transient=True)
        self._live.__enter__()

        def loop() -> None:
            while not self._stop.wait(3.0):
                try:
                    self.poll()
                except Exception:  # noqa: BLE001 - the display must never break the run
                    continue
                self._live.update(self._table())

        self._thread = threading.Thread(target=loop, name="phase-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._live.__exit__(*exc)


@dataclass(frozen=True)
class RunRequest:
    """What `fp-platform run` was asked for, passed whole from the command line to every run it starts (the
    phases `until` one, or `full`; a new run or `run_id` again; only `assets`; the stream's bound and drills;
    `second_run`, the verification run P16 judges beside this one)."""

    until: str | None = None
    scale: str | None = None
    run_id: str | None = None
    assets: tuple[str, ...] = ()
    max_events_per_output: int | None = None
    drills: tuple[str, ...] = DEFAULT_DRILLS
    full: bool = False
    second_run: str | None = None


def execute(request: RunRequest, console: Console) -> RunResult:
    """Stack up, allocate (or reuse) the run partition, materialise the selected phases in-process with a live
    progress display; the RunResult (`RunRefused` when the request itself cannot run). Without `until`
    the spine runs (up to SPINE_LAST); `full` goes on through every implemented phase."""
    from fp_platform.operate import dagster_home
    from fp_platform.substrate import local_stack

    h = handles()
    run_id, assets, drills = request.run_id, request.assets, request.drills
    if h.profile == "local":
        local_stack.up(h, progress=lambda m: console.print(f"… {m}"))
    dagster_home.prepare(h)

    import warnings

    from dagster import DagsterInstance, PreviewWarning

    warnings.filterwarnings("ignore", category=PreviewWarning)  # Pipes internals; noise for operators

    from fp_platform.definitions import PLATFORM_RUN_JOB, defs

    job = defs.resolve_job_def(PLATFORM_RUN_JOB)
    until = request.until or (None if request.full else SPINE_LAST)
    implemented = {key: spec.group_name for key, spec in _asset_groups(defs).items()}
    implemented_groups = set(implemented.values())
    runnable = tuple(p for p in PHASES if p.group in implemented_groups)
    wanted = tuple(p for p in phases_until(until) if p.group in implemented_groups) if until else runnable
    if until and phases_until(until)[-1].group not in implemented_groups:
        done = ", ".join(p.phase_id for p in runnable)
        raise RunRefused(f"phase {until} is not implemented yet; implemented phases: {done}")
    if until == SPINE_LAST and phase(CLOSE_OUT).group in implemented_groups:
        wanted += (phase(CLOSE_OUT),)

    instance = DagsterInstance.get()
    partitions_name = h.get("PLATFORM_RUN_PARTITIONS")
    if run_id:
        check_platform_run_id(run_id)
        if not instance.has_dynamic_partition(partitions_name, run_id):
            instance.add_dynamic_partitions(partitions_name, [run_id])
    else:
        run_id = allocate_run_id(instance, partitions_name)
        instance.add_dynamic_partitions(partitions_name, [run_id])
    if not closed_run_only(assets):
        record_active_run(h, run_id)
        console.print(f"platform_run_id [bold]{run_id}[/] (recorded in {active_run_location(h)})")
    else:
        console.print(f"platform_run_id [bold]{run_id}[/] (closed; the active run is unchanged)")

    groups = {p.group for p in wanted}
    selection = [key for key, group in implemented.items() if group in groups]
    if assets:
        by_name = {key.to_user_string(): key for key in implemented}
        unknown = sorted(set(assets) - set(by_name))
        if unknown:
            raise RunRefused(f"unknown asset(s) {', '.join(unknown)}; assets are {', '.join(sorted(by_name))}")
        selection = [by_name[a] for a in assets]
        wanted = tuple(p for p in PHASES if p.group in {implemented[k] for k in selection})
    selected = {k.to_user_string() for k in selection}
    ops: dict = {}
    if "run_header" in selected:
        ops["run_header"] = {"config": {"scale": request.scale or pinned_scale(h, run_id) or DEFAULT_SCALE}}
    if "wsp_stream" in selected:
        wsp_config: dict = {"drills": list(drills)}
        if request.max_events_per_output:
            wsp_config["max_events_per_output"] = request.max_events_per_output
        ops["wsp_stream"] = {"config": wsp_config}
    if VERDICT_ASSET in selected and request.second_run:
        ops[VERDICT_ASSET] = {"config": {"second_run": request.second_run}}
    if drills:
        console.print(f"drills: {', '.join(drills)}")

    assets_by_group: dict[str, list[str]] = {}
    for key, group in implemented.items():
        if not assets or key in selection:  # with --asset, judge only what was materialised
            assets_by_group.setdefault(group, []).append(key.to_user_string())
    started = time.monotonic()
    with PhaseProgress(h, run_id, wanted, assets_by_group, console):
        result = job.execute_in_process(
            instance=instance,
            partition_key=run_id,
            asset_selection=selection,
            run_config={"ops": ops, "loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            raise_on_error=False,
            tags={"fp/platform_run_id": run_id, "fp/until": wanted[-1].phase_id},
        )
        if not result.success and close_out_failed(defs, instance, result.run_id):
            console.print(f"[yellow]the run failed before {CLOSE_OUT}: {CLOSE_OUT} ran for {run_id} on its own[/]")
    wall = round(time.monotonic() - started, 2)
    failures = [
        f"step {e.step_key} failed: {e.step_failure_data.error.message.strip()}"
        for e in result.all_events
        if e.is_step_failure
    ]
    return RunResult(
        run_id,
        phase_outcomes(h, run_id, wanted, assets_by_group),
        result.success,
        wall,
        _step_seconds(instance, result.run_id),
        failures,
    )


def closed_run_only(assets: tuple[str, ...]) -> bool:
    """Whether `assets` only judge or tear down a run (P16, P17): that needs no worker, so the active run (whose
    workers the supervisor keeps) stays what it was."""
    from fp_platform.operate.sensors import TEARDOWN_ASSET

    return bool(assets) and set(assets) <= {VERDICT_ASSET, TEARDOWN_ASSET}


def close_out_failed(defs, instance, dagster_run_id: str) -> bool:
    """Run P17 alone for a failed in-process run that was to end with it and never reached it (its workers would
    keep polling): the rule of the `teardown_after_failure` sensor, applied here because no daemon evaluates
    sensors for an in-process run. True when P17 ran."""
    from fp_platform.operate.sensors import TEARDOWN_AFTER_TAG, TEARDOWN_JOB, teardown_owed

    owed = teardown_owed(instance, instance.get_run_by_id(dagster_run_id))
    if owed is None:
        return False
    defs.resolve_job_def(TEARDOWN_JOB).execute_in_process(
        instance=instance,
        partition_key=owed,
        raise_on_error=False,
        tags={"fp/platform_run_id": owed, TEARDOWN_AFTER_TAG: dagster_run_id},
    )
    return True


def _print_run(run: RunResult, console: Console) -> bool:
    """The phase table, evidence and report locations of one run; True when every phase passed."""
    h = handles()
    table = Table(title=f"run {run.platform_run_id} ({run.wall_s:.0f}s)", title_justify="left")
    for col in ("phase", "name", "verdict", "reason"):
        table.add_column(col)
    for o in run.outcomes:
        colour = {"PASS": "green", "FAIL": "red"}.get(o.verdict, "yellow")
        table.add_row(o.phase.phase_id, o.phase.name, f"[{colour}]{o.verdict}[/]", o.reason)
    console.print(table)
    writer = run_evidence(h, run.platform_run_id)
    console.print(f"evidence: s3://{writer.bucket}/{writer.run_root}  (fp-platform evidence ls {run.platform_run_id})")
    report = h.get("RUN_REPORT_HTML_PATH_PATTERN")
    if writer.exists(report):
        local = project_root() / str(h.get("LOCAL_REPORTS_DIR")) / run.platform_run_id / report
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(writer.store.get(writer.bucket, writer.key(report)))
        console.print(f"report: {writer.uri(report)}\n        file://{local}")
    for failure in run.failures:
        console.print(f"[red]{failure}[/]")
    return run.success and all(o.verdict == "PASS" for o in run.outcomes)


def full_run(request: RunRequest, console: Console) -> int:
    """Spine + learning through promotion (P1..P15) as `request.run_id` (default: a new run), a second spine run
    deciding with the promoted bundle (P1..P11 and its P17, non-regression), then P16's verdict on the first run
    with the second beside it, then the first run's P17 (the spec's order: teardown after the verdict). The
    verdict and the teardown judge a closed run: the second stays the active one."""
    h = handles()
    if h.values.get("TF_STACK_DEMO_DIR"):
        raise RunRefused(
            f"{h.profile}: its demo stack is applied for one run, so a second run cannot follow in the same"
            " command; the learning lane and the verdict (P12..P16) are dev_full's (spec)"
        )
    from fp_platform.operate.sensors import TEARDOWN_ASSET

    first = execute(replace(request, until=LEARNING_LAST, full=False), console)
    try:
        code = _learn_verify_judge(request, first, console)
    finally:  # whatever became of the rest, the first run leaves no worker behind (spec P17, after the verdict)
        closed = RunRequest(run_id=first.platform_run_id, assets=(TEARDOWN_ASSET,), drills=())
        teardown_ok = _print_run(execute(closed, console), console)
    return code if teardown_ok else 1


def _learn_verify_judge(request: RunRequest, first: RunResult, console: Console) -> int:
    """After the first run through P15: the second spine run, then P16 on the first; the exit code."""
    if not _print_run(first, console):
        console.print(f"[red]{first.platform_run_id} did not pass through {LEARNING_LAST}: no second run[/]")
        return 1
    console.print(f"second spine run: decides with the bundle {first.platform_run_id} promoted")
    scale = request.scale or pinned_scale(handles(), first.platform_run_id)
    second = execute(replace(request, until=SPINE_LAST, scale=scale, run_id=None, full=False), console)
    second_ok = _print_run(second, console)
    verdict = execute(
        RunRequest(run_id=first.platform_run_id, assets=(VERDICT_ASSET,), drills=(), second_run=second.platform_run_id),
        console,
    )
    verdict_ok = _print_run(verdict, console)
    h = handles()
    doc = run_evidence(h, first.platform_run_id)
    name = h.get("PLATFORM_VERDICT_PATH_PATTERN")
    if doc.exists(name):
        v = doc.read(name)
        colour = "green" if v["verdict"] == "PASS" else "red"
        console.print(f"platform verdict [{colour}]{v['verdict']}[/] ({doc.uri(name)})")
        for blocker in v["blockers"]:
            console.print(f"  [red]blocker[/] {blocker}")
    return 0 if second_ok and verdict_ok else 1


def main(request: RunRequest, console: Console) -> int:
    """`fp-platform run`: the exit code (0 every phase passed, 1 a gate failed, 2 the request was refused)."""
    try:
        if request.full and not (request.until or request.assets):
            return full_run(request, console)
        return 0 if _print_run(execute(request, console), console) else 1
    except RunRefused as exc:
        console.print(f"[red]{exc}[/]")
        return 2


def _asset_groups(defs):
    """asset key → group name, for every asset in the Definitions."""
    graph = defs.resolve_asset_graph()
    return {key: graph.get(key) for key in graph.materializable_asset_keys}

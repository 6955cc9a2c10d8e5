"""`fp-platform bench run`: a whole run's wall time, events/s, time per phase and Dagster's own share.

The run is the same `fp-platform run` (in-process, same Definitions); the phase times come from the run's
step events, and the orchestration overhead is the wall time not spent inside any step (Dagster's
planning, event log writes, check evaluation and in-process executor hand-offs).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console

from fp_platform import runner
from fp_platform.contracts.bench_line import bench_line
from fp_platform.substrate import db
from fp_platform.substrate.evidence_store import run_evidence


def run(
    scale: str,
    until: str | None,
    max_events_per_output: int | None,
    drills: tuple[str, ...],
    console: Console,
    log: Callable[[str], None],
) -> list[dict]:
    request = runner.RunRequest(until=until, scale=scale, max_events_per_output=max_events_per_output, drills=drills)
    result = runner.execute(request, console)
    from fp_platform.definitions import defs
    from fp_platform.handles import handles

    h = handles()
    graph = defs.resolve_asset_graph()
    group_of = {k.to_user_string().replace("/", "__"): graph.get(k).group_name for k in graph.materializable_asset_keys}
    per_phase: dict[str, float] = {}
    for step, seconds in result.step_s.items():
        group = group_of.get(step, step)
        per_phase[group] = round(per_phase.get(group, 0.0) + seconds, 2)
    in_steps = sum(result.step_s.values())
    with db.connect(h) as conn:
        events, traffic = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE topic = %s AND decision = 'ADMIT') FROM ig_receipts"
            " WHERE platform_run_id = %s",
            (h.topic("FP_BUS_TRAFFIC_FRAUD_V1").name, result.platform_run_id),
        ).fetchone()
    verdicts = {o.phase.phase_id: o.verdict for o in result.outcomes}
    params = {
        "scale": scale,
        "until": until or "all",
        "max_events_per_output": max_events_per_output,
        "drills": list(drills),
        "platform_run_id": result.platform_run_id,
        "verdicts": verdicts,
        "evidence": run_evidence(h, result.platform_run_id).uri(""),
    }
    log(
        f"run {result.platform_run_id}: {result.wall_s}s, {events} events ({traffic} traffic), "
        f"{in_steps:.1f}s in steps; verdicts {verdicts}"
    )
    lines = [
        bench_line("run", "run_wall_s", result.wall_s, "s", params, higher_is_better=False),
        bench_line(
            "run",
            "run_events_per_s",
            round(events / result.wall_s, 1),
            "events/s",
            {**params, "events": events, "traffic_events": traffic},
        ),
        bench_line(
            "run",
            "orchestration_overhead_share",
            round(max(0.0, result.wall_s - in_steps) / result.wall_s, 4),
            "share",
            {**params, "seconds_in_steps": round(in_steps, 2)},
            higher_is_better=False,
        ),
    ]
    lines += [
        bench_line("run", f"phase_{group}_s", seconds, "s", params, higher_is_better=False)
        for group, seconds in sorted(per_phase.items())
    ]
    return lines

"""The incident drills a run can carry (spec dev_min §12.4, §13.5): what each injects and what must follow.

A drill is a run option. The stream drills are WSP options (`WspOptions.drill_*` shares, selected per
event id so a rerun picks the same events); the process drills act on a supervised worker during P6.
The reporter (P11) writes `drills/<drill_id>.json` with expected vs observed for each drill the run
carried.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Drill:
    drill_id: str
    injects: str
    expects: str
    wsp_option: str | None = None  # WspOptions field set to `share`
    share: float = 0.0


DRILLS: dict[str, Drill] = {
    d.drill_id: d
    for d in (
        Drill(
            "duplicates",
            "WSP re-sends 1% of events (same event id, same payload) in a later request",
            "every copy gets a DUPLICATE receipt; nothing is admitted, decided or acted on twice",
            "drill_duplicates",
            0.01,
        ),
        Drill(
            "missing_context",
            "WSP withholds the context events of 2% of flows",
            "each of their transactions is bound MISSING_CONTEXT and decided under explicit degrade with its reasons",
            "drill_drop_context",
            0.02,
        ),
        Drill(
            "payload_mismatch",
            "WSP re-sends 0.5% of events under the same event id with a changed payload",
            "every altered copy is an ANOMALY receipt, quarantined with its payload; the original stays the only"
            " admitted record",
            "drill_mismatch",
            0.005,
        ),
        Drill(
            "backpressure",
            "the decision processor (hosting the online feature plane) is paused (SIGSTOP) mid-stream, then resumed",
            "its lag grows while paused and returns to zero; every admitted event still gets a vector and a decision",
        ),
        Drill(
            "worker_crash",
            "the decision processor (hosting the decision fabric) is killed (SIGKILL) mid-stream; the"
            " supervisor restarts it",
            "the worker restarts; every admitted traffic event is decided and acted on exactly once",
        ),
    )
}
DEFAULT_DRILLS: tuple[str, ...] = ("duplicates", "missing_context")
PROCESS_DRILLS: tuple[str, ...] = tuple(d for d, spec in DRILLS.items() if spec.wsp_option is None)


def check_drills(drill_ids: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validated, de-duplicated drill ids in catalogue order; an unknown id is a ValueError naming the known ones."""
    unknown = sorted(set(drill_ids) - set(DRILLS))
    if unknown:
        raise ValueError(f"unknown drill(s) {', '.join(unknown)}; drills are {', '.join(DRILLS)}")
    return tuple(d for d in DRILLS if d in set(drill_ids))


def wsp_shares(drill_ids: tuple[str, ...]) -> dict[str, float]:
    """The WSP options the stream drills among `drill_ids` set."""
    return {DRILLS[d].wsp_option: DRILLS[d].share for d in drill_ids if DRILLS[d].wsp_option}

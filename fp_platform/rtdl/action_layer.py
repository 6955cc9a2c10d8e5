"""AL, the action layer: executes each action intent's simulated effect once, idempotent on
`action_id`, and emits `rtdl.action_outcome`. Every intent delivery is recorded in `al_intake`; one
for an action already executed is a duplicate, prevented and counted — never acted twice."""

from __future__ import annotations

from typing import Any

import psycopg

from fp_platform.contracts import components, ids
from fp_platform.rtdl.policy import load_policy
from fp_platform.substrate import db
from fp_platform.substrate.worker import BusRecord, Worker

INTENT = "rtdl.action_intent"
_INTAKE_COLUMNS = ("platform_run_id", "origin_topic", "origin_partition", "origin_offset", "action_id", "duplicate")
_OUTCOME_COLUMNS = (
    "action_id",
    "platform_run_id",
    "decision_id",
    "action_kind",
    "effect",
    "outcome_id",
    "status",
    "origin_topic",
    "origin_partition",
    "origin_offset",
)


def intake_parity(conn: psycopg.Connection, run_id: str) -> dict[str, int]:
    """Intents taken in (distinct actions, all deliveries, duplicates prevented) and outcomes, for the run."""
    actions, deliveries, dupes = conn.execute(
        "SELECT count(DISTINCT action_id), count(*), count(*) FILTER (WHERE duplicate) FROM al_intake"
        " WHERE platform_run_id = %s",
        (run_id,),
    ).fetchone()
    outcomes = conn.execute("SELECT count(*) FROM al_outcomes WHERE platform_run_id = %s", (run_id,)).fetchone()[0]
    return {"intents": actions, "intent_deliveries": deliveries, "duplicates_prevented": dupes, "outcomes": outcomes}


class ActionLayer(Worker):
    identity = components.ACTION_LAYER
    _parity: dict[str, int]  # `intake_parity` of the run: read once at start, then kept up by `apply`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.effects = {a["kind"]: a["effect"] for a in load_policy(self.h).actions.values()}

    def on_start(self, conn: psycopg.Connection) -> None:
        self._parity = intake_parity(conn, self.run_id)

    def apply(self, conn: psycopg.Connection, records: list[BusRecord]) -> None:
        intents = [r for r in records if r.envelope["event_class"] == INTENT]
        if not intents:
            return
        done = {
            a
            for (a,) in conn.execute(
                "SELECT action_id FROM al_outcomes WHERE action_id = ANY(%s)",
                ([r.payload["action_id"] for r in intents],),
            )
        }
        intake, outcomes = [], []
        for r in intents:
            p = r.payload
            duplicate = p["action_id"] in done
            intake.append((self.run_id, *r.origin, p["action_id"], duplicate))
            if duplicate:
                self.stats.counters["duplicates_prevented"] += 1
                continue
            done.add(p["action_id"])
            outcome_id = ids.outcome_id(p["action_id"])
            effect = self.effects[p["action_kind"]]
            outcomes.append(
                (
                    p["action_id"],
                    self.run_id,
                    p["decision_id"],
                    p["action_kind"],
                    effect,
                    outcome_id,
                    "EXECUTED",
                    *r.origin,
                )
            )
            self.emit(
                r.derive(
                    self.component,
                    outcome_id,
                    "rtdl.action_outcome",
                    {
                        "outcome_id": outcome_id,
                        "action_id": p["action_id"],
                        "decision_id": p["decision_id"],
                        "action_kind": p["action_kind"],
                        "effect": effect,
                        "status": "EXECUTED",
                        "event_id": p["event_id"],
                        "intent_origin": {"topic": r.topic, "partition": r.partition, "offset": r.offset},
                    },
                ),
                p["decision_id"],
            )
            self.stats.counters[f"executed_{p['action_kind'].lower()}"] += 1
        db.copy_rows(conn, "al_intake", _INTAKE_COLUMNS, intake)
        if outcomes:
            db.copy_rows(conn, "al_outcomes", _OUTCOME_COLUMNS, outcomes)
        self.stats.counters["intents"] += len(intents)
        self.stats.counters["outcomes"] += len(outcomes)
        # The run's parity moves by exactly these rows: every intake row is new (its key is the origin
        # offset), and an action's first intake is its one non-duplicate row, written with its outcome.
        self._parity["intent_deliveries"] += len(intake)
        self._parity["duplicates_prevented"] += len(intake) - len(outcomes)
        self._parity["intents"] += len(outcomes)
        self._parity["outcomes"] += len(outcomes)

    def health(self, conn: psycopg.Connection) -> tuple[str, dict[str, Any]]:
        """From the counts kept in memory: no pass over the run's tables per heartbeat (the P9 gates
        count them in SQL, `intake_parity`)."""
        parity = dict(self._parity)
        problem = (
            ""
            if parity["intents"] == parity["outcomes"]
            else f"{parity['intents']} intents but {parity['outcomes']} outcomes"
        )
        return problem, {"run_parity": parity}

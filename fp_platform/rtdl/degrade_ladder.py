"""DL, the degrade ladder: the run's posture (NORMAL → DEGRADED_CONTEXT → RULES_ONLY → FAIL_CLOSED)
from explicit signals — join-miss and feature-miss rates over the last traffic events, registry
resolution and model availability — against the policy profile's thresholds. Each change is an
append-only `dl_posture_events` row with its reasons and signals. DL runs chained in the decision
processor, just ahead of DF, which decides under the posture DL has just set.

Worse postures apply at once; a better one must hold for `recover_after_events` events first.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

import orjson
import psycopg

from fp_platform.contracts import bundle_registry, components
from fp_platform.rtdl.decision_context import EventContext
from fp_platform.rtdl.policy import POSTURES, Policy


def ladder_posture(policy: Policy, signals: dict[str, Any]) -> tuple[str, list[str]]:
    """The posture the signals call for, with the reasons (pure: the policy decides, not the code)."""
    ladder = policy.ladder
    found: list[tuple[str, str]] = []
    if not signals["registry_resolved"]:
        found.append((ladder["registry_unresolved"], "registry: no active bundle"))
    if signals.get("model_problem"):
        found.append((ladder["model_unavailable"], f"model: {signals['model_problem']}"))
    if signals["window_events"] >= int(ladder["min_window_events"]):
        for posture, limits in ladder["thresholds"].items():
            for name, limit in limits.items():
                if signals[name] >= float(limit):
                    found.append(
                        (posture, f"{name} {signals[name]:.3f} >= {limit} over {signals['window_events']} events")
                    )
    if not found:
        return "NORMAL", []
    worst = max((p for p, _ in found), key=POSTURES.index)
    return worst, [r for p, r in found if p == worst] + [r for p, r in found if p != worst]


def current_posture(conn: psycopg.Connection, run_id: str) -> tuple[int, str, list[str]] | None:
    """(seq, posture, reasons) of the run's latest posture event, or None before DL wrote one."""
    row = conn.execute(
        "SELECT seq, posture, reasons FROM dl_posture_events WHERE platform_run_id = %s ORDER BY seq DESC LIMIT 1",
        (run_id,),
    ).fetchone()
    return None if row is None else (row[0], row[1], list(row[2]))


class DegradeLadder:
    """The ladder operator, chained in the decision processor ahead of DF: it sees each event's context as
    DF is about to judge it, and DF decides under the posture it sets."""

    identity = components.DEGRADE_LADDER

    def __init__(self, run_id: str, policy: Policy) -> None:
        self.run_id = run_id
        self.policy = policy
        self.counters: Counter = Counter()
        self.window: deque[tuple[bool, bool]] = deque(maxlen=int(policy.ladder["window_events"]))
        self.posture: str | None = None
        self.posture_seq: int | None = None
        self.events_since_change = 0
        self.static: dict[str, Any] = {"registry_resolved": False, "bundle": None, "model_problem": None}

    def restore(self, conn: psycopg.Connection) -> None:
        """Posture and window as the run's posture events and decisions left them (a restart continues)."""
        latest = current_posture(conn, self.run_id)
        self.posture, self.posture_seq = (latest[1], latest[0]) if latest else (None, None)
        rows = conn.execute(
            "SELECT binding_status IS DISTINCT FROM 'READY', features IS NULL, decided_at >"
            " coalesce((SELECT max(at) FROM dl_posture_events WHERE platform_run_id = %(r)s),"
            " '-infinity') FROM df_decisions WHERE platform_run_id = %(r)s"
            " ORDER BY decided_at DESC, decision_id DESC LIMIT %(n)s",
            {"r": self.run_id, "n": self.window.maxlen},
        ).fetchall()
        self.window.extend((j, f) for j, f, _ in reversed(rows))
        self.events_since_change = sum(after for _, _, after in rows)

    def set_static(self, bundle: bundle_registry.Bundle | None, model_problem: str | None) -> None:
        """Registry resolution and model availability, as DF resolved them (one load per bundle change)."""
        self.static = {
            "registry_resolved": bundle is not None,
            "bundle": bundle.ref() if bundle else None,
            "model_problem": model_problem,
        }

    def signals(self) -> dict[str, Any]:
        n = len(self.window)
        return {
            **self.static,
            "window_events": n,
            "join_miss_rate": sum(j for j, _ in self.window) / n if n else 0.0,
            "feature_miss_rate": sum(f for _, f in self.window) / n if n else 0.0,
        }

    def observe(self, conn: psycopg.Connection, contexts: list[tuple[EventContext, tuple]]) -> None:
        """The events DF is about to judge (context, origin), in event order; then the posture they call for."""
        for ctx, _ in contexts:
            self.window.append((ctx.binding_status != "READY", ctx.features is None))
        self.events_since_change += len(contexts)
        self.judge(conn, max(o for _, o in contexts) if contexts else None)

    def judge(self, conn: psycopg.Connection, origin: tuple | None, force: bool = False) -> None:
        signals = self.signals()
        posture, reasons = ladder_posture(self.policy, signals)
        if posture == self.posture and not force:
            return
        better = self.posture is not None and POSTURES.index(posture) < POSTURES.index(self.posture)
        if better and self.events_since_change < int(self.policy.ladder["recover_after_events"]):
            return
        self.posture_seq = conn.execute(
            "INSERT INTO dl_posture_events (platform_run_id, posture, previous_posture, reasons, signals, policy_rev,"
            " origin_topic, origin_partition, origin_offset) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING seq",
            (
                self.run_id,
                posture,
                self.posture,
                reasons or ["all signals within policy"],
                orjson.dumps(signals).decode(),
                self.policy.policy_rev,
                *(origin or (None, None, None)),
            ),
        ).fetchone()[0]
        self.counters["posture_changes"] += 1
        self.counters[f"posture_{posture.lower()}"] += 1
        self.posture, self.events_since_change = posture, 0

    def health(self) -> dict[str, Any]:
        return {"posture": self.posture}

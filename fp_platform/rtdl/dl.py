"""DL, the degrade ladder: the run's posture (NORMAL → DEGRADED_CONTEXT → RULES_ONLY → FAIL_CLOSED)
from explicit signals — join-miss and feature-miss rates over the last traffic events, registry
resolution and model availability — against the policy profile's thresholds. Each change is an
append-only `dl_posture_events` row with its reasons and signals; DF reads the latest.

Worse postures apply at once; a better one must hold for `recover_after_events` events first.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import orjson
import psycopg

from fp_platform.rtdl import bundles
from fp_platform.rtdl.decision_context import ContextWorker
from fp_platform.rtdl.policy import POSTURES, Policy
from fp_platform.substrate import bundle_models, mpr_registry
from fp_platform.substrate.worker import BusRecord

STATIC_SIGNALS_TTL_S = 10.0  # registry and model are re-checked this often


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
                    found.append((posture, f"{name} {signals[name]:.3f} >= {limit} over"
                                           f" {signals['window_events']} events"))
    if not found:
        return "NORMAL", []
    worst = max((p for p, _ in found), key=POSTURES.index)
    return worst, [r for p, r in found if p == worst] + [r for p, r in found if p != worst]


def current_posture(conn: psycopg.Connection, run_id: str) -> tuple[int, str, list[str]] | None:
    """(seq, posture, reasons) of the run's latest posture event, or None before DL wrote one."""
    row = conn.execute("SELECT seq, posture, reasons FROM dl_posture_events WHERE platform_run_id = %s"
                       " ORDER BY seq DESC LIMIT 1", (run_id,)).fetchone()
    return None if row is None else (row[0], row[1], list(row[2]))


class DegradeLadder(ContextWorker):
    component_key = "COMPONENT_ID_DL"
    pack_key = "PACK_ID_RTDL_DECISION_LANE"
    group_key = "CONSUMER_GROUP_ID_DL"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window: deque[tuple[bool, bool]] = deque(maxlen=int(self.policy.ladder["window_events"]))
        self.posture: str | None = None
        self.events_since_change = 0
        self._static: tuple[float, dict[str, Any]] = (0.0, {})

    def _static_signals(self, conn: psycopg.Connection) -> dict[str, Any]:
        at, cached = self._static
        if time.monotonic() - at < STATIC_SIGNALS_TTL_S:
            return cached
        bundle = mpr_registry.active_bundle(conn)
        signals: dict[str, Any] = {"registry_resolved": bundle is not None,
                                   "bundle": bundle.ref() if bundle else None, "model_problem": None}
        if bundle is not None and bundle.model_ref:
            try:
                bundle_models.load_model(self.store, bundle.model_ref)
            except bundle_models.ModelUnavailable as exc:
                signals["model_problem"] = str(exc)
        self._static = (time.monotonic(), signals)
        return signals

    def signals(self, conn: psycopg.Connection) -> dict[str, Any]:
        n = len(self.window)
        return {**self._static_signals(conn), "window_events": n,
                "join_miss_rate": sum(j for j, _ in self.window) / n if n else 0.0,
                "feature_miss_rate": sum(f for _, f in self.window) / n if n else 0.0}

    def on_start(self, conn: psycopg.Connection) -> None:
        bundles.ensure_bootstrap(conn, self.h, self.policy)
        latest = current_posture(conn, self.run_id)
        self.posture = latest[1] if latest else None
        self._judge(conn, None, force=latest is None)

    def apply(self, conn: psycopg.Connection, records: list[BusRecord]) -> None:
        for r in sorted(records, key=lambda r: (r.ts, r.origin)):
            ctx = self.contexts[r.envelope["event_id"]]
            self.window.append((ctx.binding_status != "READY", ctx.features is None))
        self.events_since_change += len(records)
        self._judge(conn, max(records, key=lambda r: r.origin))

    def _judge(self, conn: psycopg.Connection, last: BusRecord | None, force: bool = False) -> None:
        signals = self.signals(conn)
        posture, reasons = ladder_posture(self.policy, signals)
        if posture == self.posture and not force:
            return
        better = self.posture is not None and POSTURES.index(posture) < POSTURES.index(self.posture)
        if better and self.events_since_change < int(self.policy.ladder["recover_after_events"]):
            return
        origin = last.origin if last else (None, None, None)
        conn.execute("INSERT INTO dl_posture_events (platform_run_id, posture, previous_posture, reasons, signals,"
                     " policy_rev, origin_topic, origin_partition, origin_offset) VALUES (%s, %s, %s, %s, %s, %s,"
                     " %s, %s, %s)", (self.run_id, posture, self.posture, reasons or ["all signals within policy"],
                                     orjson.dumps(signals).decode(), self.policy.policy_rev, *origin))
        self.stats.counters["posture_changes"] += 1
        self.stats.counters[f"posture_{posture.lower()}"] += 1
        self.posture, self.events_since_change = posture, 0

    def health(self, conn: psycopg.Connection) -> tuple[str, dict[str, Any]]:
        return "", {"posture": self.posture}

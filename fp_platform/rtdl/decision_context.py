"""What DF and DL know about a traffic event when they judge it: its CSFB flow binding and its OFP
feature vector. Both wait (up to the policy's context wait) for CSFB and OFP to have durably consumed
the events' offsets, then read whatever exists; an event still without them is judged without them,
and says so (explicit degrade, never a silent default)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from fp_platform.handles import Handles
from fp_platform.rtdl.policy import load_policy
from fp_platform.substrate.worker import BusRecord, Worker


@dataclass(frozen=True)
class EventContext:
    binding_status: str | None  # READY / MISSING_CONTEXT / LATE_CONTEXT; None: CSFB has no binding yet
    binding_reasons: tuple[str, ...]
    feature_version: str | None
    features: dict[str, Any] | None  # None: OFP has no vector yet
    # OFP's consumed offsets ({topic: {partition: next_offset}}) in the snapshot the vector was read from:
    # the vector is the feature definition over exactly those records (what OFS's parity check rebuilds).
    feature_watermark: dict[str, dict[str, int]] | None = None

    def degrade_reasons(self) -> list[str]:
        reasons = []
        if self.binding_status is None:
            reasons.append("context: no flow binding (CSFB has not consumed the event)")
        elif self.binding_status != "READY":
            reasons += [f"context {self.binding_status}: {r}" for r in self.binding_reasons]
        if self.features is None:
            reasons.append("features: no vector (OFP has not consumed the event)")
        return reasons


def _uncovered(conn: psycopg.Connection, groups: list[str], needs: dict[tuple[str, int], int]) -> list[str]:
    saved = {(g, t, p): o for g, t, p, o in conn.execute(
        "SELECT consumer_group, topic, kafka_partition, next_offset FROM worker_offsets"
        " WHERE consumer_group = ANY(%s)", (groups,))}
    return [f"{g} {t}[{p}] at {saved.get((g, t, p), 0)} < {n}" for g in groups for (t, p), n in needs.items()
            if saved.get((g, t, p), 0) < n]


def deployed_context_groups(h: Handles) -> tuple[str, str]:
    """The consumer groups of the CSFB and OFP whose state DF and DL read (the deployed ones by default)."""
    return h.get("CONSUMER_GROUP_ID_CSFB"), h.get("CONSUMER_GROUP_ID_OFP")


def _bindings(conn: psycopg.Connection, run_id: str, event_ids: list[str]) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {e: (s, tuple(rs)) for e, s, rs in conn.execute(
        "SELECT event_id, status, reasons FROM csfb_flow_bindings WHERE platform_run_id = %s"
        " AND event_id = ANY(%s)", (run_id, event_ids))}


# One statement, so one snapshot: the vectors and the OFP checkpoint they reflect (OFP writes both in
# one transaction).
_VECTORS_SQL = """
SELECT f.event_id, f.feature_version, f.features, w.watermark FROM ofp_features f, (
  SELECT jsonb_object_agg(topic, parts) AS watermark FROM (
    SELECT topic, jsonb_object_agg(kafka_partition::text, next_offset) AS parts FROM worker_offsets
    WHERE consumer_group = %s GROUP BY topic) t) w
WHERE f.platform_run_id = %s AND f.event_id = ANY(%s)
"""


def gather(conn: psycopg.Connection, run_id: str, records: list[BusRecord], waits: tuple[float, float, float],
           groups: tuple[str, str], tick: Callable[[], bool] = lambda: False
           ) -> tuple[dict[str, EventContext], dict[str, Any]]:
    """Context per traffic event id, and how the wait went (waited_ms, what was still uncovered).

    `groups`: the CSFB and OFP consumer groups whose checkpoints must pass the events' offsets.
    `waits`: (stall, most, grace) seconds — wait while they make progress, give up once they have not
    moved for `stall` (or after `most` in all): slower context is waited for, stalled context is
    degraded. Then a binding short of READY is read again for up to `grace`: CSFB reads the context
    topics apart from the traffic topic, so a flow's context may be just behind its transaction.
    `tick` is called while waiting (heartbeats); True from it stops the wait (shutdown)."""
    stall_s, most_s, grace_s = waits
    needs: dict[tuple[str, int], int] = {}
    for r in records:
        needs[(r.topic, r.partition)] = max(needs.get((r.topic, r.partition), 0), r.offset + 1)
    t0 = last_move = time.monotonic()
    seen: list[str] = []
    while behind := _uncovered(conn, list(groups), needs):
        now = time.monotonic()
        if behind != seen:
            seen, last_move = behind, now
        if now - last_move >= stall_s or now - t0 >= most_s or tick():
            break
        time.sleep(0.005)
    ids = [r.envelope["event_id"] for r in records]
    bindings = _bindings(conn, run_id, ids)
    deadline = time.monotonic() + grace_s
    while (short := [e for e in ids if bindings.get(e, (None,))[0] != "READY"]) and time.monotonic() < deadline:
        if tick():
            break
        time.sleep(0.05)
        bindings.update(_bindings(conn, run_id, short))
    vectors = {e: (v, f, w) for e, v, f, w in conn.execute(_VECTORS_SQL, (groups[1], run_id, ids))}
    out = {}
    for e in ids:
        status, reasons = bindings.get(e, (None, ()))
        version, features, watermark = vectors.get(e, (None, None, None))
        out[e] = EventContext(status, reasons, version, features, watermark)
    return out, {"waited_ms": round((time.monotonic() - t0) * 1000, 1), "uncovered": behind}


class ContextWorker(Worker):
    """A traffic consumer that judges each event with its context (DF, DL): the policy profile, and the
    batch's contexts gathered in `prepare`, before the transaction, into `self.contexts`."""

    topic_keys = ("FP_BUS_TRAFFIC_FRAUD_V1",)
    phase_id = "P9"

    def __init__(self, *args: Any, context_groups: tuple[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = load_policy(self.h)
        self.context_groups = context_groups or deployed_context_groups(self.h)
        self.contexts: dict[str, EventContext] = {}

    def prepare(self, conn: psycopg.Connection, records: list[BusRecord]) -> None:
        self.contexts, wait = gather(conn, self.run_id, records, self.policy.context_waits, self.context_groups,
                                     self.waiting)
        self.stats.counters["context_wait_ms_last"] = wait["waited_ms"]

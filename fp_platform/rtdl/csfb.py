"""CSFB intake: JoinFrames and the FlowBinding index, and `resolve_flow_binding` for the decision lane.

A join frame holds a flow's context parts (arrival event, arrival entities, flow anchor), each with
its origin offset. Each traffic event gets a binding whose status derives from its frame:
READY (all parts present, the anchor binds this transaction, none stamped after it),
MISSING_CONTEXT (a part absent or the anchor binds another transaction) or LATE_CONTEXT (all present
but a part is stamped after the transaction), with the reasons. A context part that arrives after
its traffic re-derives the binding (and counts as a late arrival), so the final index is the same
whatever order the partitions were read in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from fp_platform.substrate import db
from fp_platform.substrate.worker import BusRecord, Worker

READY, MISSING_CONTEXT, LATE_CONTEXT = "READY", "MISSING_CONTEXT", "LATE_CONTEXT"

# event class -> (frame columns it fills, payload field or envelope attribute for each)
PARTS: dict[str, tuple[str, dict[str, str]]] = {
    "context.arrival_events": ("arrival", {"arrival_event_id": "@event_id", "arrival_ts": "@ts", "channel": "channel",
                                           "arrival_origin": "@origin"}),
    "context.arrival_entities": ("entities", {"entities_event_id": "@event_id", "entities_ts": "@ts",
                                              "card_id": "card_id", "device_id": "device_id", "ip": "ip",
                                              "entities_origin": "@origin"}),
    "context.flow_anchor.fraud": ("anchor", {"anchor_event_id": "@event_id", "anchor_ts": "@ts",
                                             "transaction_id": "transaction_id", "anchor_origin": "@origin"}),
}
FRAME_COLUMNS: tuple[str, ...] = tuple(c for _, cols in PARTS.values() for c in cols)
_TYPES = {"arrival_ts": "timestamptz", "entities_ts": "timestamptz", "anchor_ts": "timestamptz",
          "transaction_id": "bigint", "arrival_origin": "jsonb", "entities_origin": "jsonb", "anchor_origin": "jsonb"}
_PART_NAMES = {"arrival_event_id": "arrival_event", "entities_event_id": "arrival_entities",
               "anchor_event_id": "flow_anchor"}


def binding_status(frame: dict[str, Any] | None, transaction_id: int, event_ts: datetime) -> tuple[str, list[str]]:
    """The binding of one traffic event given its flow's frame (None: no part seen yet)."""
    frame = frame or {}
    missing = [f"{name} missing" for col, name in _PART_NAMES.items() if frame.get(col) is None]
    if frame.get("anchor_event_id") is not None and frame.get("transaction_id") != transaction_id:
        missing.append(f"flow_anchor binds transaction {frame.get('transaction_id')}, not {transaction_id}")
    if missing:
        return MISSING_CONTEXT, missing
    late = [f"{name} stamped after the transaction" for name, col in
            (("arrival_event", "arrival_ts"), ("arrival_entities", "entities_ts"), ("flow_anchor", "anchor_ts"))
            if frame[col] > event_ts]
    return (LATE_CONTEXT, late) if late else (READY, [])


def _frame(conn: psycopg.Connection, run_id: str, flow_id: str) -> dict[str, Any] | None:
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM csfb_join_frames WHERE platform_run_id = %s AND flow_id = %s", (run_id, flow_id)).fetchone()


def resolve_flow_binding(conn: psycopg.Connection, run_id: str, envelope: dict[str, Any]) -> dict[str, Any]:
    """READY / MISSING_CONTEXT / LATE_CONTEXT for a traffic envelope, with reasons and its context."""
    p = envelope["payload"]
    ts = datetime.fromisoformat(envelope["ts_utc"].replace("Z", "+00:00"))
    frame = _frame(conn, run_id, p["flow_id"])
    status, reasons = binding_status(frame, p["transaction_id"], ts)
    context = {k: frame[k] for k in ("channel", "card_id", "device_id", "ip")} if frame else {}
    return {"status": status, "reasons": reasons, "flow_id": p["flow_id"], "transaction_id": p["transaction_id"],
            "context": context}


def _value(r: BusRecord, source: str) -> Any:
    if source == "@event_id":
        return r.envelope["event_id"]
    if source == "@ts":
        return r.ts
    if source == "@origin":
        return r.origin_json
    return r.payload[source]


class CsfbIntake(Worker):
    component_key = "COMPONENT_ID_CSFB"
    pack_key = "PACK_ID_RTDL_CORE"
    group_key = "CONSUMER_GROUP_ID_CSFB"
    topic_keys = ("FP_BUS_CONTEXT_ARRIVAL_EVENTS_V1", "FP_BUS_CONTEXT_ARRIVAL_ENTITIES_V1",
                  "FP_BUS_CONTEXT_FLOW_ANCHOR_FRAUD_V1", "FP_BUS_TRAFFIC_FRAUD_V1")

    def apply(self, conn: psycopg.Connection, records: list[BusRecord]) -> None:
        frames: dict[str, dict[str, Any]] = {}
        traffic = []
        for r in records:
            cls = r.envelope["event_class"]
            if cls in PARTS:
                cols = PARTS[cls][1]
                frames.setdefault(r.payload["flow_id"], {}).update({c: _value(r, s) for c, s in cols.items()})
            elif cls == "traffic.fraud":
                traffic.append(r)
        run = {"run": self.run_id}
        if frames:
            db.stage(conn, "csfb_frames_in", "flow_id text, " + ", ".join(f"{c} {_TYPES.get(c, 'text')}"
                                                                       for c in FRAME_COLUMNS),
                     ((flow, *(parts.get(c) for c in FRAME_COLUMNS)) for flow, parts in frames.items()))
            updates = ", ".join(f"{c} = COALESCE(t.{c}, EXCLUDED.{c})" for c in FRAME_COLUMNS)
            conn.execute(f"INSERT INTO csfb_join_frames AS t SELECT %(run)s, * FROM csfb_frames_in ORDER BY flow_id"
                         f" ON CONFLICT (platform_run_id, flow_id) DO UPDATE SET {updates}", run)
            self.stats.counters["context_parts"] += sum(1 for r in records if r.envelope["event_class"] in PARTS)
        if traffic:
            db.stage(conn, "csfb_tx_in", "event_id text, flow_id text, transaction_id bigint, event_ts timestamptz,"
                     " origin_topic text, origin_partition int, origin_offset bigint",
                     ((r.envelope["event_id"], r.payload["flow_id"], r.payload["transaction_id"], r.ts, *r.origin)
                      for r in traffic))
            conn.execute("INSERT INTO csfb_flow_bindings (platform_run_id, event_id, flow_id, transaction_id, event_ts,"
                         " status, origin_topic, origin_partition, origin_offset) SELECT %(run)s, event_id, flow_id,"
                         " transaction_id, event_ts, 'MISSING_CONTEXT', origin_topic, origin_partition, origin_offset"
                         " FROM csfb_tx_in ON CONFLICT DO NOTHING", run)
        self._rebind(conn, set(frames) | {r.payload["flow_id"] for r in traffic}, {r.envelope["event_id"]
                                                                                  for r in traffic})

    def _rebind(self, conn: psycopg.Connection, flows: set[str], new_events: set[str]) -> None:
        """Re-derive the bindings of the flows this batch touched; count hits, misses, late arrivals."""
        db.stage(conn, "csfb_touched", "flow_id text PRIMARY KEY", ((f,) for f in flows))
        rows = conn.cursor(row_factory=dict_row).execute(
            "SELECT b.event_id, b.transaction_id AS bound_transaction_id, b.event_ts, b.status, b.reasons,"
            " f.flow_id AS frame_flow_id, " + ", ".join(f"f.{c}" for c in FRAME_COLUMNS) + " FROM csfb_touched x"
            " CROSS JOIN LATERAL (SELECT * FROM csfb_flow_bindings b WHERE b.platform_run_id = %(run)s"
            "   AND b.flow_id = x.flow_id OFFSET 0) b"  # OFFSET 0: per-flow index lookups, not a pass over the run
            " LEFT JOIN csfb_join_frames f ON f.platform_run_id = b.platform_run_id AND f.flow_id = b.flow_id",
            {"run": self.run_id}).fetchall()
        changes = []
        for row in rows:
            frame = row if row["frame_flow_id"] is not None else None
            status, reasons = binding_status(frame, row["bound_transaction_id"], row["event_ts"])
            if row["event_id"] in new_events:
                self.stats.counters["join_hits" if status == READY else "join_misses"] += 1
            elif row["status"] != READY and status == READY:
                self.stats.counters["late_arrivals"] += 1  # context completed after its traffic was seen
            if (status, reasons) != (row["status"], row["reasons"]):
                changes.append((status, reasons, row["event_id"]))
        if changes:
            db.stage(conn, "csfb_changes", "status text, reasons text[], event_id text", changes)
            conn.execute("UPDATE csfb_flow_bindings b SET status = c.status, reasons = c.reasons FROM csfb_changes c"
                         " WHERE b.platform_run_id = %s AND b.event_id = c.event_id", (self.run_id,))


def binding_counts(conn: psycopg.Connection, run_id: str) -> dict[str, int]:
    """Bindings per status for the run (join hits = READY; the rest are explicit degrades)."""
    counts = {READY: 0, MISSING_CONTEXT: 0, LATE_CONTEXT: 0}
    counts.update(dict(conn.execute("SELECT status, count(*) FROM csfb_flow_bindings WHERE platform_run_id = %s"
                                    " GROUP BY status", (run_id,)).fetchall()))
    return counts

"""CSFB, context store and flow binding: each traffic event's binding to its flow's join frame.

A join frame holds a flow's context parts (arrival event, arrival entities, flow anchor). Each traffic
event gets a binding whose status derives from its frame (`keyed_state.binding_status`): READY,
MISSING_CONTEXT or LATE_CONTEXT, with the reasons. A part that arrives after its traffic re-derives the
binding (and counts as a late arrival), so the final index is the same whatever order the partitions
were read in. CSFB runs chained in the decision processor (`processor.py`): its frames are keyed state
in memory; what P8 judges, the binding index `csfb_flow_bindings`, is written in the processor's
micro-batch transaction.
"""

from __future__ import annotations

from collections import Counter

import orjson
import psycopg

from fp_platform.contracts import components
from fp_platform.rtdl.keyed_state import LATE_CONTEXT, MISSING_CONTEXT, READY, KeyedState, Tx, from_us

__all__ = ["READY", "MISSING_CONTEXT", "LATE_CONTEXT", "Csfb", "binding_counts"]


class Csfb:
    """The flow-binding operator: bindings of the run's traffic events, kept as the frames say."""

    identity = components.CONTEXT_BINDING

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.counters: Counter = Counter()
        self.bindings: dict[str, tuple[str, list[str]]] = {}
        self._new: list[Tx] = []
        self._changed: dict[str, tuple[str, list[str]]] = {}

    def restore(self, state: KeyedState) -> None:
        """The bindings as the applied records make them (what the binding index holds)."""
        self.bindings = {e: state.binding(e) for e in state.events}

    def on_traffic(self, tx: Tx) -> None:
        """A new traffic event: its binding is derived when the batch is written (after the batch's parts)."""
        self._new.append(tx)

    def on_part(self, state: KeyedState, events: list[str]) -> None:
        """Re-derive the bindings of a flow's events already bound (written) after a context part."""
        self.counters["context_parts"] += 1
        for e in events:
            old = self.bindings.get(e)
            if old is None:
                continue  # taken in by this batch: bound when written
            new = state.binding(e)
            if new != old:
                self.bindings[e] = self._changed[e] = new
                if new[0] == READY:
                    self.counters["late_arrivals"] += 1  # context completed after its traffic was bound

    def write(self, conn: psycopg.Connection, state: KeyedState) -> None:
        """Bind the batch's new events and rewrite the changed bindings: one statement each (inside the
        processor's transaction)."""
        if self._new:  # events this batch took in: never bound before (one binary COPY)
            with conn.cursor().copy(
                "COPY csfb_flow_bindings (platform_run_id, event_id, flow_id, transaction_id,"
                " event_ts, status, reasons, origin_topic, origin_partition, origin_offset)"
                " FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(
                    ("text", "text", "text", "int8", "timestamptz", "text", "text[]", "text", "int4", "int8")
                )
                for tx in self._new:
                    status, reasons = self.bindings[tx.event_id] = state.binding(tx.event_id)
                    self.counters["join_hits" if status == READY else "join_misses"] += 1
                    copy.write_row(
                        (
                            self.run_id,
                            tx.event_id,
                            tx.flow_id,
                            tx.transaction_id,
                            from_us(tx.ts),
                            status,
                            reasons,
                            *tx.origin,
                        )
                    )
        if self._changed:
            rows = [{"event_id": e, "status": st, "reasons": rs} for e, (st, rs) in sorted(self._changed.items())]
            conn.execute(
                "UPDATE csfb_flow_bindings b SET status = c.status, reasons = c.reasons FROM"
                " jsonb_to_recordset(%s::jsonb) AS c(event_id text, status text, reasons text[])"
                " WHERE b.platform_run_id = %s AND b.event_id = c.event_id",
                (orjson.dumps(rows).decode(), self.run_id),
            )
        self._new.clear()
        self._changed.clear()


def binding_counts(conn: psycopg.Connection, run_id: str) -> dict[str, int]:
    """Bindings per status for the run (join hits = READY; the rest are explicit degrades)."""
    counts = {READY: 0, MISSING_CONTEXT: 0, LATE_CONTEXT: 0}
    counts.update(
        dict(
            conn.execute(
                "SELECT status, count(*) FROM csfb_flow_bindings WHERE platform_run_id = %s GROUP BY status", (run_id,)
            ).fetchall()
        )
    )
    return counts

"""OFP, the online feature plane: the feature vector of every traffic event, in event (world) time.

The features are the shared definition in `contracts/features.py` (OFS rebuilds them offline in
DuckDB; P13 proves the two equal). OFP runs chained in the decision processor (`processor.py`): its
windows are keyed state in memory (`keyed_state.py`), so DF's vector is computed in the same process
with no database round trip. A vector is a pure function of the records applied: a late record
(another partition, a late label) recomputes the stored vectors it touches (revision + 1), so the final
`ofp_features` do not depend on the order the bus was read in. `lookup` serves other readers.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import psycopg

from fp_platform.contracts import components
from fp_platform.contracts.features import FEATURE_VERSION
from fp_platform.rtdl.keyed_state import KeyedState, from_us
from fp_platform.substrate import db
from fp_platform.substrate.db import jsonb

# An upsert that moves the revision only when the vector changed (a recompute that found the same values
# leaves the row as it was).
_UPSERT = """
INSERT INTO ofp_features AS f (platform_run_id, event_id, feature_version, features, event_ts, origin_topic,
                               origin_partition, origin_offset)
SELECT %s, r.event_id, %s, r.features, r.event_ts, r.origin_topic, r.origin_partition, r.origin_offset
FROM jsonb_to_recordset(%s::jsonb) AS r(event_id text, features jsonb, event_ts timestamptz, origin_topic text,
                                       origin_partition int, origin_offset bigint)
ORDER BY r.event_id
ON CONFLICT (platform_run_id, event_id) DO UPDATE SET features = EXCLUDED.features, revision = f.revision + 1,
  computed_at = now() WHERE f.features IS DISTINCT FROM EXCLUDED.features
"""


def lookup(conn: psycopg.Connection, run_id: str, event_id: str) -> dict[str, Any] | None:
    """The stored feature vector of one traffic event (None until OFP has seen the event)."""
    row = conn.execute(
        "SELECT feature_version, features, revision FROM ofp_features WHERE platform_run_id = %s AND event_id = %s",
        (run_id, event_id),
    ).fetchone()
    return None if row is None else {"feature_version": row[0], "features": row[1], "revision": row[2]}


class Ofp:
    """The feature operator: which vectors a batch changed, written with the labels it took in."""

    identity = components.ONLINE_FEATURES

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.counters: Counter = Counter()
        self.dirty: set[str] = set()
        self.new: set[str] = set()  # traffic events taken in by this batch (their first vector)
        self._labels: list[tuple] = []

    def on_label(
        self, transaction_id: int, is_fraud: bool, effective_at: str, observed_at: str, origin: tuple[str, int, int]
    ) -> None:
        self.counters["label_events"] += 1
        self._labels.append((self.run_id, transaction_id, is_fraud, effective_at, observed_at, *origin))

    def holds_writes(self) -> bool:
        """Vectors to write, or labels taken in: a batch of labels alone that moved no vector still writes its
        labels in the batch's transaction, before its offsets commit (else the stream's last labels would wait
        for traffic that never comes, and a crash would lose them)."""
        return bool(self.dirty or self._labels)

    def write(self, conn: psycopg.Connection, state: KeyedState) -> dict[str, dict[str, Any]]:
        """Write the batch's vectors — the new events' in one binary COPY, the recomputed ones (a late record
        touched them) as upserts — and its labels (in the processor's transaction); the vectors written, by
        event (DF, next in the chain, decides with them)."""
        vectors = {e: state.vector(e) for e in self.dirty}
        if self.new:
            db.copy_rows(
                conn,
                "ofp_features",
                "platform_run_id, event_id, feature_version, features, event_ts, origin_topic, origin_partition,"
                " origin_offset",
                (
                    (
                        self.run_id,
                        e,
                        FEATURE_VERSION,
                        jsonb(vectors[e]),
                        from_us(state.events[e].ts),
                        *state.events[e].origin,
                    )
                    for e in self.new
                ),
                ("text", "text", "text", "jsonb", "timestamptz", "text", "int4", "int8"),
            )
        late = [e for e in self.dirty if e not in self.new]
        if late:
            rows = []
            for e in late:
                t = state.events[e]
                topic, part, offset = t.origin
                rows.append(
                    {
                        "event_id": e,
                        "features": vectors[e],
                        "event_ts": from_us(t.ts).isoformat(),
                        "origin_topic": topic,
                        "origin_partition": part,
                        "origin_offset": offset,
                    }
                )
            conn.execute(_UPSERT, (self.run_id, FEATURE_VERSION, orjson.dumps(rows).decode()))
        self.counters["vectors_written"] += len(vectors)
        self.counters["vectors_recomputed_late"] += len(late)
        if self._labels:
            conn.cursor().executemany(
                "INSERT INTO ofp_labels (platform_run_id, transaction_id, is_fraud, effective_at, observed_at,"
                " origin_topic, origin_partition, origin_offset) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                self._labels,
            )
        self.counters["traffic_events"] += len(self.new)
        self.dirty.clear()
        self._labels.clear()
        self.new.clear()
        return vectors

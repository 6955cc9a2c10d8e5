"""OFP projector: the online feature vector of every traffic event, in event (world) time.

The features are the shared definition in `contracts/features.py` (OFS rebuilds them offline). A
vector is a pure function of the records OFP has applied: when a record arrives late (another
partition, a late label) the vectors it touches are recomputed (revision + 1), so the final state does
not depend on the order the bus was read in.
"""

from __future__ import annotations

from typing import Any

import psycopg

from fp_platform.contracts.features import DELAY_DAYS, FEATURE_VERSION, WINDOW_DAYS
from fp_platform.substrate import db
from fp_platform.substrate.worker import BusRecord, Worker

_SPAN = max(WINDOW_DAYS)


def _interval(days: int) -> str:
    return f"interval '{int(days)} days'"


def _vector_sql() -> str:
    cust = ", ".join(
        f"count(*) FILTER (WHERE c.ts > t.ts - {_interval(w)}) AS n{w},"
        f" avg(c.amount) FILTER (WHERE c.ts > t.ts - {_interval(w)}) AS a{w}" for w in WINDOW_DAYS)
    term = ", ".join(
        f"count(*) FILTER (WHERE x.ts > t.ts - {_interval(DELAY_DAYS + w)}) AS n{w},"
        f" count(*) FILTER (WHERE x.ts > t.ts - {_interval(DELAY_DAYS + w)} AND lab.is_fraud) AS f{w}"
        for w in WINDOW_DAYS)
    fields = ", ".join(
        [f"'customer_nb_tx_{w}d', cu.n{w}" for w in WINDOW_DAYS]
        + [f"'customer_avg_amount_{w}d', cu.a{w}" for w in WINDOW_DAYS]
        + [f"'terminal_nb_tx_{w}d', te.n{w}" for w in WINDOW_DAYS]
        + [f"'terminal_risk_{w}d', CASE WHEN te.n{w} > 0 THEN te.f{w}::float8 / te.n{w} ELSE 0 END"
           for w in WINDOW_DAYS]
        + ["'card_new_device', cx.new_device", "'card_new_ip', cx.new_ip",
           "'terminal_labels_visible', te.labelled", "'context_complete', s.flow_id IS NOT NULL"])
    return f"""
INSERT INTO ofp_features AS f (platform_run_id, event_id, feature_version, features, event_ts, origin_topic,
                               origin_partition, origin_offset)
SELECT t.platform_run_id, t.event_id, %(version)s, jsonb_build_object({fields}), t.ts, t.origin_topic,
       t.origin_partition, t.origin_offset
FROM ofp_dirty d
CROSS JOIN LATERAL (SELECT * FROM ofp_transactions t WHERE t.platform_run_id = %(run)s AND t.event_id = d.event_id
                    OFFSET 0) t  -- a fence: one index lookup per dirty event, not a pass over the run
CROSS JOIN LATERAL (
  SELECT {cust} FROM ofp_transactions c
  WHERE c.platform_run_id = t.platform_run_id AND c.customer_id = t.customer_id
    AND c.ts > t.ts - {_interval(_SPAN)} AND (c.ts, c.transaction_id) <= (t.ts, t.transaction_id)) cu
CROSS JOIN LATERAL (
  SELECT {term}, count(lab.is_fraud) AS labelled FROM ofp_transactions x
  LEFT JOIN LATERAL (
    SELECT l.is_fraud FROM ofp_labels l WHERE l.platform_run_id = x.platform_run_id
      AND l.transaction_id = x.transaction_id AND l.observed_at <= t.ts ORDER BY l.observed_at DESC LIMIT 1) lab ON true
  WHERE x.platform_run_id = t.platform_run_id AND x.terminal_id = t.terminal_id
    AND x.ts > t.ts - {_interval(DELAY_DAYS + _SPAN)} AND x.ts <= t.ts - {_interval(DELAY_DAYS)}) te
LEFT JOIN ofp_card_sightings s ON s.platform_run_id = t.platform_run_id AND s.flow_id = t.flow_id
LEFT JOIN LATERAL (
  SELECT NOT EXISTS (SELECT 1 FROM ofp_card_sightings p WHERE p.platform_run_id = s.platform_run_id
           AND p.card_id = s.card_id AND p.device_id = s.device_id
           AND (p.ts, p.flow_id) < (s.ts, s.flow_id)) AS new_device,
         NOT EXISTS (SELECT 1 FROM ofp_card_sightings p WHERE p.platform_run_id = s.platform_run_id
           AND p.card_id = s.card_id AND p.ip = s.ip AND (p.ts, p.flow_id) < (s.ts, s.flow_id)) AS new_ip
  ) cx ON s.flow_id IS NOT NULL
ORDER BY t.event_id
ON CONFLICT (platform_run_id, event_id) DO UPDATE SET features = EXCLUDED.features, revision = f.revision + 1,
  computed_at = now() WHERE f.features IS DISTINCT FROM EXCLUDED.features
"""


VECTOR_SQL = _vector_sql()

# Which stored events a late record touches (their windows or context include it).
_DIRTY_BY_TX = f"""
INSERT INTO ofp_dirty SELECT event_id FROM ofp_tx_in ON CONFLICT DO NOTHING;
INSERT INTO ofp_dirty SELECT t.event_id FROM ofp_tx_in n JOIN ofp_transactions t ON t.platform_run_id = %(run)s
  AND t.customer_id = n.customer_id AND t.ts >= n.ts AND t.ts < n.ts + {_interval(_SPAN)} ON CONFLICT DO NOTHING;
INSERT INTO ofp_dirty SELECT t.event_id FROM ofp_tx_in n JOIN ofp_transactions t ON t.platform_run_id = %(run)s
  AND t.terminal_id = n.terminal_id AND t.ts >= n.ts + {_interval(DELAY_DAYS)}
  AND t.ts < n.ts + {_interval(DELAY_DAYS + _SPAN)} ON CONFLICT DO NOTHING;
"""
# A card's device (ip) is new on the flow that first shows it; a sighting arriving late can only take that
# from its immediate successor, so that is the one other flow to recompute.
_SUCCESSOR = """
INSERT INTO ofp_dirty SELECT t.event_id FROM ofp_sight_in s
  CROSS JOIN LATERAL (SELECT o.flow_id FROM ofp_card_sightings o WHERE o.platform_run_id = %(run)s
    AND o.card_id = s.card_id AND o.{col} = s.{col} AND (o.ts, o.flow_id) > (s.ts, s.flow_id)
    ORDER BY o.ts, o.flow_id LIMIT 1) nxt
  JOIN ofp_transactions t ON t.platform_run_id = %(run)s AND t.flow_id = nxt.flow_id ON CONFLICT DO NOTHING;
"""
_DIRTY_BY_SIGHTING = """
INSERT INTO ofp_dirty SELECT t.event_id FROM ofp_sight_in s JOIN ofp_transactions t
  ON t.platform_run_id = %(run)s AND t.flow_id = s.flow_id ON CONFLICT DO NOTHING;
""" + _SUCCESSOR.format(col="device_id") + _SUCCESSOR.format(col="ip")
_DIRTY_BY_LABEL = f"""
INSERT INTO ofp_dirty SELECT t.event_id FROM ofp_labels_in l
  JOIN ofp_transactions x ON x.platform_run_id = %(run)s AND x.transaction_id = l.transaction_id
  JOIN ofp_transactions t ON t.platform_run_id = %(run)s AND t.terminal_id = x.terminal_id
   AND t.ts >= GREATEST(l.observed_at, x.ts + {_interval(DELAY_DAYS)}) AND t.ts < x.ts + {_interval(DELAY_DAYS + _SPAN)}
  ON CONFLICT DO NOTHING;
"""

_ORIGIN_COLS = "origin_topic text, origin_partition int, origin_offset bigint"


def _begin(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS ofp_dirty (event_id text PRIMARY KEY) ON COMMIT DROP")


def _recompute(conn: psycopg.Connection, run_id: str) -> int:
    conn.execute("ANALYZE ofp_dirty")  # its size decides between per-event lookups and one pass
    conn.execute("SET LOCAL enable_seqscan = on")
    return conn.execute(VECTOR_SQL, {"run": run_id, "version": FEATURE_VERSION}).rowcount


def _add_labels(conn: psycopg.Connection, run_id: str, labels) -> None:
    db.stage(conn, "ofp_labels_in", f"transaction_id bigint, is_fraud boolean, effective_at timestamptz,"
             f" observed_at timestamptz, {_ORIGIN_COLS}", labels)
    conn.execute("INSERT INTO ofp_labels SELECT %(run)s, * FROM ofp_labels_in ON CONFLICT DO NOTHING", {"run": run_id})
    for stmt in _DIRTY_BY_LABEL.strip().split(";\n"):
        conn.execute(stmt.strip().rstrip(";"), {"run": run_id})


def record_labels(conn: psycopg.Connection, run_id: str, labels: list[tuple]) -> int:
    """Add label assertions (transaction_id, is_fraud, effective_at, observed_at, topic, partition, offset)
    and recompute the vectors whose terminal windows they reach; returns vectors changed."""
    conn.execute("SET LOCAL enable_seqscan = off")  # per-key index lookups, as in the worker base's batches
    _begin(conn)
    _add_labels(conn, run_id, labels)
    return _recompute(conn, run_id)


def lookup(conn: psycopg.Connection, run_id: str, event_id: str) -> dict[str, Any] | None:
    """The feature vector of one traffic event as DF reads it (None until OFP has seen the event)."""
    row = conn.execute("SELECT feature_version, features, revision FROM ofp_features"
                       " WHERE platform_run_id = %s AND event_id = %s", (run_id, event_id)).fetchone()
    return None if row is None else {"feature_version": row[0], "features": row[1], "revision": row[2]}


class OfpProjector(Worker):
    component_key = "COMPONENT_ID_OFP"
    pack_key = "PACK_ID_RTDL_CORE"
    group_key = "CONSUMER_GROUP_ID_OFP"
    topic_keys = ("FP_BUS_TRAFFIC_FRAUD_V1", "FP_BUS_CONTEXT_ARRIVAL_ENTITIES_V1", "FP_BUS_LABELS_EVENTS_V1")

    def apply(self, conn: psycopg.Connection, records: list[BusRecord]) -> None:
        traffic = [r for r in records if r.envelope["event_class"] == "traffic.fraud"]
        sightings = [r for r in records if r.envelope["event_class"] == "context.arrival_entities"]
        labels = [r for r in records if r.envelope["event_class"] == "labels.assertion"]
        run = {"run": self.run_id}
        _begin(conn)
        if traffic:
            db.stage(conn, "ofp_tx_in", f"event_id text, transaction_id bigint, flow_id text, customer_id text,"
                     f" terminal_id bigint, amount float8, ts timestamptz, {_ORIGIN_COLS}",
                     ((r.envelope["event_id"], r.payload["transaction_id"], r.payload["flow_id"],
                       r.payload["customer_id"], r.payload["terminal_id"], r.payload["amount"], r.ts, *r.origin)
                      for r in traffic))
            conn.execute("INSERT INTO ofp_transactions SELECT %(run)s, * FROM ofp_tx_in ON CONFLICT DO NOTHING", run)
            for stmt in _DIRTY_BY_TX.strip().split(";\n"):
                conn.execute(stmt.strip().rstrip(";"), run)
        if sightings:
            db.stage(conn, "ofp_sight_in", f"flow_id text, card_id text, device_id text, ip text, ts timestamptz,"
                     f" {_ORIGIN_COLS}",
                     ((r.payload["flow_id"], r.payload["card_id"], r.payload["device_id"], r.payload["ip"], r.ts,
                       *r.origin) for r in sightings))
            conn.execute("INSERT INTO ofp_card_sightings SELECT %(run)s, * FROM ofp_sight_in ON CONFLICT DO NOTHING",
                         run)
            for stmt in _DIRTY_BY_SIGHTING.strip().split(";\n"):
                conn.execute(stmt.strip().rstrip(";"), run)
        if labels:  # label events from LS (terminal risk counts a fraud label from its observation time on)
            _add_labels(conn, self.run_id, ((r.payload["transaction_id"], r.payload["label"] == "FRAUD",
                                            r.payload["effective_at"], r.payload["observed_at"], *r.origin)
                                           for r in labels))
        changed = _recompute(conn, self.run_id)
        self.stats.counters["traffic_events"] += len(traffic)
        self.stats.counters["card_sightings"] += len(sightings)
        self.stats.counters["label_events"] += len(labels)
        self.stats.counters["vectors_written"] += changed
        self.stats.counters["vectors_recomputed_late"] += max(0, changed - len(traffic))

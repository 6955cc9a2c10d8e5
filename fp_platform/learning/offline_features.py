"""The shared feature definition (`contracts/features.py`) computed offline in DuckDB, over archived
records, for a set of events, each seeing either every record of the run (the training dataset) or only
the records under a watermark (what OFP had applied when DF read the vector: the parity check).

Tables it expects in the DuckDB connection (the OFS loader fills them from the archive):
  tx(event_id, transaction_id, flow_id, customer_id, card_id, terminal_id, amount, ts, part, off)
  sightings(flow_id, card_id, device_id, ip, ts, part, off)
  labels(transaction_id, is_fraud, observed_at, part, off)
  events(event_id, wm_id)   -- the events to compute; wm_id NULL: every record visible
  wm(wm_id, topic, part, next_offset)
A record (part, off) of topic X is visible to an event with a watermark when off < next_offset of
(wm_id, X, part); the event's own record always is (OFP had applied it before DF read its vector).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from fp_platform.contracts.features import DELAY_DAYS, WINDOW_DAYS

SPAN = max(WINDOW_DAYS)


def _visible(alias: str, topic_param: str) -> str:
    return (
        f"LEFT JOIN wm w_{alias} ON w_{alias}.wm_id = e.wm_id AND w_{alias}.topic = ${topic_param}"
        f" AND w_{alias}.part = {alias}.part"
    )


def _seen(alias: str) -> str:
    return f"(e.wm_id IS NULL OR {alias}.off < w_{alias}.next_offset)"


def _earlier(column: str, name: str) -> str:
    """Whether no visible earlier sighting of the card shows the same `column` (device or ip)."""
    return f"""{name} AS (
  SELECT e.event_id, count(p.flow_id) FILTER (WHERE {_seen("p")}) = 0 AS {name} FROM own e LEFT JOIN sightings p
   ON p.card_id = e.card_id AND p.{column} = e.{column} AND (p.ts < e.ts OR (p.ts = e.ts AND p.flow_id < e.flow_id))
  {_visible("p", "entities")}
  GROUP BY e.event_id)"""


def vector_sql() -> str:
    cust = ", ".join(
        f"count(*) FILTER (WHERE c.ts > e.ts - INTERVAL {w} DAY) AS n{w},"
        f" avg(c.amount) FILTER (WHERE c.ts > e.ts - INTERVAL {w} DAY) AS a{w}"
        for w in WINDOW_DAYS
    )
    term = ", ".join(
        f"count(x.transaction_id) FILTER (WHERE x.ts > e.ts - INTERVAL {DELAY_DAYS + w} DAY) AS n{w},"
        f" count(x.transaction_id) FILTER (WHERE x.ts > e.ts - INTERVAL {DELAY_DAYS + w} DAY"
        f" AND x.is_fraud) AS f{w}"
        for w in WINDOW_DAYS
    )
    cols = ", ".join(
        [f"cu.n{w} AS customer_nb_tx_{w}d" for w in WINDOW_DAYS]
        + [f"cu.a{w} AS customer_avg_amount_{w}d" for w in WINDOW_DAYS]
        + [f"te.n{w} AS terminal_nb_tx_{w}d" for w in WINDOW_DAYS]
        + [
            f"CASE WHEN te.n{w} > 0 THEN te.f{w}::DOUBLE / te.n{w} ELSE 0 END AS terminal_risk_{w}d"
            for w in WINDOW_DAYS
        ]
        + [
            "cx.new_device AS card_new_device",
            "cx.new_ip AS card_new_ip",
            "te.labelled AS terminal_labels_visible",
            "cx.flow_id IS NOT NULL AS context_complete",
        ]
    )
    return f"""
WITH ev AS (
  SELECT e.event_id, e.wm_id, t.transaction_id, t.flow_id, t.customer_id, t.terminal_id, t.ts
  FROM events e JOIN tx t USING (event_id)),
cu AS (
  SELECT e.event_id, {cust}, max(c.ts) AS max_input_ts
  FROM ev e JOIN tx c ON c.customer_id = e.customer_id AND c.ts > e.ts - INTERVAL {SPAN} DAY
   AND (c.ts < e.ts OR (c.ts = e.ts AND c.transaction_id <= e.transaction_id))
  {_visible("c", "traffic")}
  WHERE {_seen("c")} OR c.event_id = e.event_id
  GROUP BY e.event_id),
tx_lab AS (  -- each terminal-window transaction with the latest label visible by the event's time
  SELECT e.event_id, x.transaction_id, any_value(x.ts) AS ts,
         arg_max(l.is_fraud, l.observed_at) FILTER (WHERE {_seen("l")}) AS is_fraud,
         max(l.observed_at) FILTER (WHERE {_seen("l")}) AS label_observed_at
  FROM ev e JOIN tx x ON x.terminal_id = e.terminal_id AND x.ts > e.ts - INTERVAL {DELAY_DAYS + SPAN} DAY
   AND x.ts <= e.ts - INTERVAL {DELAY_DAYS} DAY
  {_visible("x", "traffic")}
  LEFT JOIN labels l ON l.transaction_id = x.transaction_id AND l.observed_at <= e.ts
  {_visible("l", "labels")}
  WHERE {_seen("x")}
  GROUP BY e.event_id, x.transaction_id),
te AS (
  SELECT e.event_id, {term}, count(x.is_fraud) AS labelled, max(x.ts) AS max_input_ts,
         max(x.label_observed_at) AS max_label_observed_at
  FROM ev e LEFT JOIN tx_lab x USING (event_id) GROUP BY e.event_id),
own AS (  -- the event's flow sighting, when visible
  SELECT e.event_id, e.wm_id, s.flow_id, s.card_id, s.device_id, s.ip, s.ts
  FROM ev e JOIN sightings s ON s.flow_id = e.flow_id
  {_visible("s", "entities")}
  WHERE {_seen("s")}),
{_earlier("device_id", "new_device")},
{_earlier("ip", "new_ip")},
cx AS (SELECT o.event_id, o.flow_id, d.new_device, i.new_ip
       FROM own o JOIN new_device d USING (event_id) JOIN new_ip i USING (event_id))
SELECT ev.event_id, {cols},
       greatest(cu.max_input_ts, te.max_input_ts) AS max_input_ts, te.max_label_observed_at
FROM ev JOIN cu USING (event_id) JOIN te USING (event_id) LEFT JOIN cx USING (event_id)
"""


VECTOR_SQL = vector_sql()


def compute(con: duckdb.DuckDBPyConnection, topics: dict[str, str]) -> pa.Table:
    """The vectors of `events` (columns: event_id, FEATURE_NAMES, the two flags, max_input_ts,
    max_label_observed_at). `topics`: the traffic, entities and labels topic names (watermark keys)."""
    con.execute("SET TimeZone = 'UTC'")  # day windows in UTC, as OFP's database computes them
    con.execute("SET enable_progress_bar = false")  # stdout carries a job's result (and a bench's JSON lines)
    return con.sql(VECTOR_SQL, params={k: topics[k] for k in ("traffic", "entities", "labels")}).to_arrow_table()

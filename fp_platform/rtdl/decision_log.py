"""DLA, the decision log and audit: every rtdl record of the run (decision, intent, outcome) appended
once to `dla_audit_records` and to write-once parquet segments on S3; a chain closes when a
decision has its intent and outcome and its traffic event resolves to the IG receipt that admitted it
at the same offset. Each closed chain is appended to `dla_chains` and published to the audit topic.
A chain that cannot close counts in `lineage_unresolved_total`. Redeliveries are recorded (with
whether the payload matched), never appended twice."""

from __future__ import annotations

import time
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row

from fp_platform.contracts import components, ids
from fp_platform.contracts.envelope import Envelope
from fp_platform.rtdl.archive import by_partition, put_segment, segment_bytes
from fp_platform.substrate import db
from fp_platform.substrate.settings import WorkerSettings
from fp_platform.substrate.worker import BusRecord, Worker

DECISION, INTENT, OUTCOME = "rtdl.decision_response", "rtdl.action_intent", "rtdl.action_outcome"

_CHAIN_COLUMNS = (
    "decision_id",
    "platform_run_id",
    "event_id",
    "receipt_id",
    "decision",
    "action_id",
    "outcome_id",
    "posture",
    "degraded",
    "lineage",
)
_CHAINS = f"""
SELECT t.decision_id, d.record AS decision, i.record AS intent, o.record AS outcome,
       r.receipt_id, r.topic AS r_topic, r.kafka_partition AS r_partition, r.kafka_offset AS r_offset,
       jsonb_build_object('topic', d.origin_topic, 'partition', d.origin_partition, 'offset', d.origin_offset)
         AS decision_origin,
       jsonb_build_object('topic', i.origin_topic, 'partition', i.origin_partition, 'offset', i.origin_offset)
         AS intent_origin,
       jsonb_build_object('topic', o.origin_topic, 'partition', o.origin_partition, 'offset', o.origin_offset)
         AS outcome_origin
FROM dla_touched t
JOIN LATERAL (SELECT * FROM dla_audit_records a WHERE a.platform_run_id = %(run)s AND a.decision_id = t.decision_id
              AND a.event_class = '{DECISION}' OFFSET 0) d ON true
JOIN LATERAL (SELECT * FROM dla_audit_records a WHERE a.platform_run_id = %(run)s AND a.decision_id = t.decision_id
              AND a.event_class = '{INTENT}' LIMIT 1) i ON true
JOIN LATERAL (SELECT * FROM dla_audit_records a WHERE a.platform_run_id = %(run)s AND a.decision_id = t.decision_id
              AND a.event_class = '{OUTCOME}' LIMIT 1) o ON true
LEFT JOIN dla_chains c ON c.decision_id = t.decision_id
LEFT JOIN LATERAL (  -- a fence: one probe of the receipts' unique index per chain, not a pass over the run
  SELECT * FROM ig_receipts r WHERE r.platform_run_id = %(run)s AND r.decision = 'ADMIT'
    AND r.event_class = d.record->'payload'->>'event_class' AND r.event_id = d.record->'payload'->>'event_id'
  OFFSET 0) r ON true
WHERE c.decision_id IS NULL
"""


_OPEN = (
    "FROM dla_audit_records a WHERE a.platform_run_id = %s"
    " AND NOT EXISTS (SELECT 1 FROM dla_chains c WHERE c.decision_id = a.decision_id)"
)


def lineage_unresolved(conn: psycopg.Connection, run_id: str) -> int:
    """Decisions, intents or outcomes audited for the run whose chain has not closed."""
    return conn.execute(f"SELECT count(DISTINCT a.decision_id) {_OPEN}", (run_id,)).fetchone()[0]


class DecisionLogAudit(Worker):
    identity = components.DECISION_LOG_AUDIT
    _pending: set[str]  # decisions with all three records whose chain waits on its receipt
    _unresolved: set[str]  # `lineage_unresolved` of the run: read once at start, then kept up by the batches
    _last_retry = 0.0

    def apply(self, conn: psycopg.Connection, records: list[BusRecord]) -> None:
        self._segments(conn, records)
        run = {"run": self.run_id}
        db.stage(
            conn,
            "dla_in",
            "event_class text, event_id text, decision_id text, payload_hash text,"
            " origin_topic text, origin_partition int, origin_offset bigint, record jsonb",
            (
                (
                    r.envelope["event_class"],
                    r.envelope["event_id"],
                    r.payload["decision_id"],
                    r.envelope["payload_hash"],
                    *r.origin,
                    r.value.decode(),
                )
                for r in records
            ),
        )
        audited = conn.execute(
            "INSERT INTO dla_audit_records (platform_run_id, event_class, event_id, decision_id, payload_hash,"
            " origin_topic, origin_partition, origin_offset, record) SELECT DISTINCT ON (event_class, event_id)"
            " %(run)s, event_class, event_id, decision_id, payload_hash, origin_topic, origin_partition,"
            " origin_offset, record FROM dla_in ORDER BY event_class, event_id, origin_partition, origin_offset"
            " ON CONFLICT DO NOTHING RETURNING decision_id, event_class",
            run,
        ).fetchall()
        appended = len(audited)
        redelivered = conn.execute(
            "INSERT INTO dla_redeliveries SELECT %(run)s, i.event_class, i.event_id, a.payload_hash = i.payload_hash,"
            " i.origin_topic, i.origin_partition, i.origin_offset FROM dla_in i"
            " JOIN dla_audit_records a ON a.platform_run_id = %(run)s AND a.event_class = i.event_class"
            "  AND a.event_id = i.event_id"
            " WHERE (a.origin_topic, a.origin_partition, a.origin_offset)"
            "  <> (i.origin_topic, i.origin_partition, i.origin_offset) ON CONFLICT DO NOTHING",
            run,
        ).rowcount
        self.stats.counters["audit_records"] += appended
        self.stats.counters["redeliveries"] += redelivered
        self._open(conn, audited)
        self._close_chains(conn, {r.payload["decision_id"] for r in records} | self._pending)

    def _open(self, conn: psycopg.Connection, audited: list[tuple[str, str]]) -> None:
        """Count the decisions these new audit records open. A decision's own record opens it (its chain is
        closed from that one record, so it cannot have closed before); an intent or outcome of a decision
        not open already may be of a chain closed before — those few (none in the normal flow, where the
        decision is audited first and open until its outcome) are looked up."""
        opened = {d for d, c in audited if c == DECISION} - self._unresolved
        other = {d for d, c in audited if c != DECISION} - self._unresolved - opened
        if other:
            other -= {
                d
                for (d,) in conn.execute(
                    "SELECT decision_id FROM dla_chains WHERE decision_id = ANY(%s)", (list(other),)
                )
            }
        self._unresolved |= opened | other

    def on_start(self, conn: psycopg.Connection) -> None:
        self._unresolved = {d for (d,) in conn.execute(f"SELECT DISTINCT a.decision_id {_OPEN}", (self.run_id,))}
        self._pending = set(self._unresolved)

    def on_idle(self, conn: psycopg.Connection) -> None:
        """Chains that waited on a receipt (IG commits it just after the publish) close without new records."""
        if self._pending and time.monotonic() - self._last_retry > 1.0:
            self._last_retry = time.monotonic()
            with self.unit_of_work(conn):
                self._close_chains(conn, set(self._pending))

    def _segments(self, conn: psycopg.Connection, records: list[BusRecord]) -> None:
        """Every record consumed, write-once on S3 per partition and batch (the index row in the same txn)."""
        bucket = self.h.get("S3_ARCHIVE_BUCKET")
        for topic, partition, recs in by_partition(records):
            segment_id = f"{topic}.p{partition}.{recs[0].offset}-{recs[-1].offset}"
            key = self.h.pattern("DLA_AUDIT_SEGMENT_PATTERN", platform_run_id=self.run_id, segment_id=segment_id)
            body = segment_bytes(recs)
            sha = put_segment(self, bucket, key, body)
            conn.execute(
                "INSERT INTO dla_audit_segments (platform_run_id, segment_id, records, object_key, sha256,"
                " bytes) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (self.run_id, segment_id, len(recs), key, sha, len(body)),
            )

    def _close_chains(self, conn: psycopg.Connection, decision_ids: set[str]) -> None:
        db.stage(conn, "dla_touched", "decision_id text PRIMARY KEY", ((d,) for d in decision_ids))
        # Index probes per touched decision, never a scan: on a young run's tables the planner's statistics
        # lag the rows a stream has just appended, and a scan per chain took seconds of a core per batch.
        conn.execute("SET LOCAL enable_seqscan = off")
        rows = conn.cursor(row_factory=dict_row).execute(_CHAINS, {"run": self.run_id}).fetchall()
        conn.execute("SET LOCAL enable_seqscan = on")
        chains, waiting = [], set()
        for row in rows:
            d, i, o = row["decision"]["payload"], row["intent"]["payload"], row["outcome"]["payload"]
            traffic_origin = d["origin"]
            receipt_at = {"topic": row["r_topic"], "partition": row["r_partition"], "offset": row["r_offset"]}
            if row["receipt_id"] is None or receipt_at != traffic_origin:
                waiting.add(row["decision_id"])
                continue
            lineage = {
                "admitted_event": traffic_origin,
                "ig_receipt_id": row["receipt_id"],
                "decision": row["decision_origin"],
                "intent": row["intent_origin"],
                "outcome": row["outcome_origin"],
            }
            degraded = bool(d["degrade_reasons"])
            chains.append(
                (
                    row["decision_id"],
                    self.run_id,
                    d["event_id"],
                    row["receipt_id"],
                    d["decision"],
                    i["action_id"],
                    o["outcome_id"],
                    d["posture"]["level"],
                    degraded,
                    orjson.dumps(lineage).decode(),
                )
            )
            self.emit(
                Envelope.build(
                    event_id=ids.audit_event_id(row["decision_id"]),
                    event_class="audit.decision_chain",
                    ts_utc=row["decision"]["ts_utc"],
                    pins=row["decision"]["pins"],
                    producer=self.component,
                    payload={
                        "decision_id": row["decision_id"],
                        "event_class": d["event_class"],
                        "event_id": d["event_id"],
                        "receipt_id": row["receipt_id"],
                        "decision": d["decision"],
                        "reason_codes": d["reason_codes"],
                        "score": d["score"],
                        "bundle": d["bundle"],
                        "posture": d["posture"],
                        "degrade_reasons": d["degrade_reasons"],
                        "action_id": i["action_id"],
                        "action_kind": i["action_kind"],
                        "outcome_id": o["outcome_id"],
                        "effect": o["effect"],
                        "outcome_status": o["status"],
                        "transaction_id": d["transaction_id"],
                        "card_id": d["card_id"],
                        "amount": d["amount"],
                        "lineage": lineage,
                    },
                ),
                row["decision_id"],
            )
        self._pending = waiting
        if chains:
            db.copy_rows(conn, "dla_chains", _CHAIN_COLUMNS, chains)
            self.stats.counters["chains_closed"] += len(chains)
            self._unresolved.difference_update(c[0] for c in chains)

    def health(self, conn: psycopg.Connection) -> tuple[str, dict[str, Any]]:
        """From the open decisions kept in memory: no pass over the run's tables per heartbeat (the P9
        gates count them in SQL, `lineage_unresolved`)."""
        unresolved = len(self._unresolved)
        idle_s = time.perf_counter() - self.stats.last_applied_mono if self.stats.last_applied_mono else 0.0
        stuck = unresolved and idle_s > 3 * WorkerSettings.load(self.h).heartbeat_interval_seconds
        return (f"{unresolved} chains unresolved while idle" if stuck else ""), {
            "lineage_unresolved_total": unresolved,
            "chains_pending": len(self._pending),
        }

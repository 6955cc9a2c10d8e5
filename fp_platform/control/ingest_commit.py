"""P7 INGEST_COMMITTED: what IG durably did for a run, from its append-only receipts and the bus.

- receipts: outcome counts per event class; ingest attempts = ADMIT + DUPLICATE + QUARANTINE +
  ANOMALY + PUBLISH_AMBIGUOUS; in-doubt claims still unresolved; receipts all in S3 segments.
- offsets: per topic and partition, watermarks and the run's admitted range; the run's records on
  the bus counted by their headers against ADMIT receipts (dedupe drift must be 0).
- quarantine: every refused payload indexed and present in the quarantine bucket.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import psycopg
from confluent_kafka import Consumer, TopicPartition

from fp_platform.contracts.canonical import sha256_hex
from fp_platform.contracts.envelope import record_identity
from fp_platform.control.ig.admission import OUTCOMES
from fp_platform.handles import Handles
from fp_platform.substrate import bus
from fp_platform.substrate.object_store import S3ObjectStore


def receipt_summary(conn: psycopg.Connection, run_id: str) -> dict[str, Any]:
    by_class: dict[str, Counter] = defaultdict(Counter)
    for event_class, decision, n in conn.execute(
        "SELECT event_class, decision, count(*) FROM ig_receipts WHERE platform_run_id = %s AND source = 'ingest'"
        " GROUP BY 1, 2",
        (run_id,),
    ):
        by_class[event_class][decision] = n
    totals = Counter()
    for c in by_class.values():
        totals.update(c)
    resolved = conn.execute(
        "SELECT count(*) FROM ig_receipts WHERE platform_run_id = %s AND source = 'reconcile'", (run_id,)
    ).fetchone()[0]
    in_doubt = conn.execute(
        "SELECT count(*) FROM ig_admission_state WHERE platform_run_id = %s AND state = 'IN_DOUBT'", (run_id,)
    ).fetchone()[0]
    settled = conn.execute(  # claims reconcile proved unpublishable: a terminal QUARANTINE receipt each
        "SELECT count(*) FROM ig_receipts WHERE platform_run_id = %s AND source = 'reconcile'"
        " AND decision = 'QUARANTINE'",
        (run_id,),
    ).fetchone()[0]
    admitted = conn.execute(
        "SELECT count(*) FROM ig_receipts WHERE platform_run_id = %s AND decision = 'ADMIT'", (run_id,)
    ).fetchone()[0]
    claims = conn.execute("SELECT count(*) FROM ig_admissions WHERE platform_run_id = %s", (run_id,)).fetchone()[0]
    max_seq, receipted = conn.execute(
        "SELECT coalesce(max(seq), 0), count(*) FROM ig_receipts WHERE platform_run_id = %s", (run_id,)
    ).fetchone()
    in_segments = conn.execute(
        "SELECT coalesce(sum(row_count), 0), coalesce(max(last_seq), 0) FROM"
        " ig_receipt_segments WHERE platform_run_id = %s",
        (run_id,),
    ).fetchone()
    rejections = dict(
        conn.execute(
            "SELECT error, count(*) FROM ig_request_rejections WHERE required_run_id = %s GROUP BY 1", (run_id,)
        ).fetchall()
    )
    return {
        "attempts": sum(totals.values()),
        "counts": {d: totals.get(d, 0) for d in OUTCOMES},
        "by_event_class": {c: {d: v.get(d, 0) for d in OUTCOMES} for c, v in sorted(by_class.items())},
        "admitted_distinct": admitted,
        "claims": claims,
        "resolved_by_reconcile": resolved,
        "unresolved_in_doubt": in_doubt,
        "settled_unpublishable": settled,
        "request_rejections": rejections,
        "receipts_total": receipted,
        "receipts_in_segments": int(in_segments[0]),
        "segments_cover_through_seq": int(in_segments[1]) >= max_seq,
    }


def segment_problems(conn: psycopg.Connection, store: S3ObjectStore, run_id: str) -> list[str]:
    """Each recorded receipt segment present with its recorded digest (write-once held)."""
    problems = []
    for uri, sha in conn.execute(
        "SELECT object_uri, sha256 FROM ig_receipt_segments WHERE platform_run_id = %s", (run_id,)
    ):
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        try:
            if sha256_hex(store.get(bucket, key)) != sha:
                problems.append(f"{uri}: digest differs from the recorded one")
        except FileNotFoundError:
            problems.append(f"{uri}: missing")
    return problems


def offsets_snapshot(h: Handles, conn: psycopg.Connection, consumer: Consumer, run_id: str) -> dict[str, Any]:
    """Watermarks, the run's admitted offset ranges and the records IG published for it on the bus."""
    ranges = {
        (t, p): (lo, hi, n)
        for t, p, lo, hi, n in conn.execute(
            "SELECT topic, kafka_partition, min(kafka_offset), max(kafka_offset), count(*) FROM ig_receipts"
            " WHERE platform_run_id = %s AND decision = 'ADMIT' GROUP BY 1, 2",
            (run_id,),
        )
    }
    topics: dict[str, list[dict[str, Any]]] = {}
    drift, publisher = 0, h.get("COMPONENT_ID_IG")
    for topic in sorted({t for t, _ in ranges}):
        rows = []
        for p in bus.partitions(consumer, topic):
            low, _ = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            lo, hi, admitted = ranges.get((topic, p), (None, None, 0))
            on_bus, end, ids = 0, lo or low, set()
            for msg in bus.read_partition(consumer, topic, p, lo or low):
                end = msg.offset() + 1
                hdr = record_identity(msg.headers())
                if hdr.get("platform_run_id") == run_id and hdr.get("publisher") == publisher:
                    on_bus += 1
                    ids.add((hdr.get("event_class"), hdr.get("event_id")))
            drift += abs(on_bus - admitted) + (on_bus - len(ids))
            rows.append(
                {
                    "partition": p,
                    "start_offset": low,
                    "end_offset": end,
                    "run_first_offset": lo,
                    "run_last_offset": hi,
                    "admitted": admitted,
                    "run_records_on_bus": on_bus,
                    "run_distinct_events_on_bus": len(ids),
                    "advanced": hi is None or end > hi,
                }
            )
        topics[topic] = rows
    return {"topics": topics, "dedupe_drift": drift, "offset_kind": "kafka_offset"}


def quarantine_summary(conn: psycopg.Connection, store: S3ObjectStore, run_id: str) -> dict[str, Any]:
    rows = conn.execute(
        "SELECT event_class, event_id, payload_hash, decision, reason, object_uri FROM ig_quarantine"
        " WHERE platform_run_id = %s ORDER BY quarantined_at",
        (run_id,),
    ).fetchall()
    items, missing = [], []
    by_decision: Counter = Counter()
    for event_class, event_id, ph, decision, reason, uri in rows:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        if not store.exists(bucket, key):
            missing.append(uri)
        by_decision[decision] += 1
        items.append(
            {
                "event_class": event_class,
                "event_id": event_id,
                "payload_hash": ph,
                "decision": decision,
                "reason": reason,
                "object_uri": uri,
            }
        )
    return {
        "count": len(rows),
        "by_decision": dict(by_decision),
        "missing_payloads": missing,
        "items": items[:200],
        "items_truncated": len(items) > 200,
    }

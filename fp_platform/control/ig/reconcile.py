"""Resolve in-doubt claims (crash or unknown delivery) from the topic itself.

A claim without an ADMIT receipt is looked for on its topic by its headers: found ⇒ ADMIT receipt
with the real offset; absent ⇒ the claimed record is published now, then receipted. Claims younger
than the producer's delivery timeout may still be in flight in a live IG and are left alone unless
`grace_s=0` (IG start-up, when nothing of this process can be in flight).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import psycopg
from confluent_kafka import Consumer, Producer
from psycopg_pool import ConnectionPool

from fp_platform.contracts.envelope import record_headers, record_identity
from fp_platform.control.ig.admission import ADMIT, Receipt, write_receipts
from fp_platform.handles import Handles
from fp_platform.substrate import bus, db

Log = Callable[[str], None]


def in_doubt(pool: ConnectionPool, run_id: str | None, grace_s: float) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        return cur.execute(
            "SELECT a.platform_run_id, a.event_class, a.event_id, a.payload_hash, a.topic, a.message_key,"
            " a.message, a.claimed_at FROM ig_admission_state s JOIN ig_admissions a USING"
            " (platform_run_id, event_class, event_id) WHERE s.state = 'IN_DOUBT'"
            " AND (%s::text IS NULL OR a.platform_run_id = %s) AND a.claimed_at < now() - make_interval(secs => %s)",
            (run_id, run_id, grace_s),
        ).fetchall()


def find_on_topic(
    consumer: Consumer, topic: str, wanted: set[tuple[str, str, str]]
) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(run, class, id) → (partition, offset) of the wanted records present on `topic` (whole log:
    with a memory-mode broker, offsets restart with the log, so receipts cannot bound the scan)."""
    found: dict[tuple[str, str, str], tuple[int, int]] = {}
    for p in bus.partitions(consumer, topic):
        for msg in bus.read_partition(consumer, topic, p):
            hdr = record_identity(msg.headers())
            ident = (hdr.get("platform_run_id"), hdr.get("event_class"), hdr.get("event_id"))
            if ident in wanted:
                found[ident] = (p, msg.offset())
    return found


def reconcile(
    pool: ConnectionPool,
    producer: Producer,
    consumer: Consumer,
    publisher: str,
    run_id: str | None = None,
    grace_s: float = 40.0,
    log: Log = lambda _: None,
) -> dict[str, int]:
    """Resolve every in-doubt claim older than `grace_s`; returns counts found/republished/unresolved."""
    claims = in_doubt(pool, run_id, grace_s)
    counts = {"in_doubt": len(claims), "found_on_topic": 0, "republished": 0, "unresolved": 0}
    if not claims:
        return counts
    by_topic: dict[str, list[dict]] = defaultdict(list)
    for c in claims:
        by_topic[c["topic"]].append(c)
    for topic, rows in by_topic.items():
        wanted = {(r["platform_run_id"], r["event_class"], r["event_id"]): r for r in rows}
        found = find_on_topic(consumer, topic, set(wanted))
        log(f"{topic}: {len(rows)} in doubt, {len(found)} found on the topic")
        receipts = [_resolved(wanted[ident], topic, p, o) for ident, (p, o) in found.items()]
        write_receipts(pool, receipts)
        counts["found_on_topic"] += len(receipts)
        missing = [r for ident, r in wanted.items() if ident not in found]
        republished = _republish(producer, topic, missing, publisher)
        write_receipts(pool, republished)
        counts["republished"] += len(republished)
        counts["unresolved"] += len(missing) - len(republished)
    return counts


def _resolved(claim: dict, topic: str, partition: int, offset: int) -> Receipt:
    return Receipt(
        claim["platform_run_id"],
        claim["event_class"],
        claim["event_id"],
        claim["payload_hash"],
        ADMIT,
        "resolved by reconcile",
        topic,
        partition,
        offset,
        source="reconcile",
    )


def _republish(producer: Producer, topic: str, claims: list[dict], publisher: str) -> list[Receipt]:
    """Publish claimed records proven absent from the topic; receipt only confirmed deliveries."""
    records = [
        (
            topic,
            bytes(c["message"]),
            None if c["message_key"] is None else bytes(c["message_key"]),
            record_headers(c["platform_run_id"], c["event_class"], c["event_id"], c["payload_hash"], publisher),
        )
        for c in claims
    ]
    outcomes = bus.deliver(producer, records)
    return [_resolved(c, topic, *ref) for c, ref in zip(claims, outcomes, strict=True) if isinstance(ref, tuple)]


def reconcile_now(h: Handles, run_id: str | None, log: Log = lambda _: None) -> dict[str, int]:
    """The operator's `fp-platform ig reconcile`: safe beside a live IG (leaves young claims alone)."""
    pool = ConnectionPool(db.dsn(h), min_size=1, max_size=2, kwargs={"autocommit": True}, open=True)
    producer = bus.producer(h)
    consumer = bus.scan_consumer(h)
    try:
        return reconcile(
            pool, producer, consumer, h.get("COMPONENT_ID_IG"), run_id, float(h.get("IG_RECONCILE_GRACE_SECONDS")), log
        )
    finally:
        consumer.close()
        producer.flush(30)
        pool.close()

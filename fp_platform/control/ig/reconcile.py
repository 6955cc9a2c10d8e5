"""Resolve in-doubt claims (crash or unknown delivery) from the topic itself.

A claim without an ADMIT receipt is looked for on its topic by its headers: found ⇒ ADMIT receipt
with the real offset; absent ⇒ the claimed record is published now, then receipted. A record that can
never be published (larger than the broker accepts, or refused as invalid) is settled instead: a
terminal QUARANTINE receipt (source reconcile) and a copy in the quarantine store; nothing is deleted,
the claim keeps the record. Claims younger than the producer's delivery timeout may still be in flight
in a live IG and are left alone unless `grace_s=0` (IG start-up for its own run, when nothing of that
run can be in flight: one gate per run).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import psycopg
from confluent_kafka import Consumer, Producer
from psycopg_pool import ConnectionPool

from fp_platform.contracts.envelope import record_headers, record_identity
from fp_platform.control.ig import quarantine
from fp_platform.control.ig.admission import ADMIT, QUARANTINE, Receipt, write_receipts
from fp_platform.control.ig.limits import broker_message_max_bytes, record_bytes
from fp_platform.control.settings import IngestSettings
from fp_platform.handles import Handles
from fp_platform.substrate import bus, db
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.substrate.settings import BusSettings

# Delivery errors no retry can cure: the record itself is refused (librdkafka's and the broker's names).
PERMANENT_ERRORS = ("MSG_SIZE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "INVALID_RECORD", "CORRUPT_MESSAGE")

Log = Callable[[str], None]


_UNRESOLVED = (
    "NOT EXISTS (SELECT 1 FROM ig_receipts r WHERE r.platform_run_id = a.platform_run_id"
    " AND r.event_class = a.event_class AND r.event_id = a.event_id AND r.decision = 'ADMIT')"
    " AND NOT EXISTS (SELECT 1 FROM ig_receipts r WHERE r.platform_run_id = a.platform_run_id"
    " AND r.event_class = a.event_class AND r.event_id = a.event_id AND r.decision = 'QUARANTINE'"
    " AND r.source = 'reconcile')"
)  # a claim without a terminal receipt (ADMIT, or reconcile's settlement): each probe is one index lookup


def resolved_before(conn: psycopg.Connection, run_id: str) -> datetime | None:
    """The run's latest mark: every claim of the run claimed before it has a terminal receipt."""
    return conn.execute(
        "SELECT max(resolved_before) FROM ig_resolved_marks WHERE platform_run_id = %s", (run_id,)
    ).fetchone()[0]


def advance_mark(pool: ConnectionPool, run_id: str) -> datetime | None:
    """Record how far the run's claims are all resolved; returns the run's mark afterwards.

    The mark stops at the run's first unresolved claim, and never passes a claim transaction still
    open: claims are stamped with their transaction's start (`claimed_at` = now()), so the cut-off is
    read first (the oldest open transaction of this role, or the clock), and the claims are read in
    a later statement, whose snapshot holds every claim stamped before the cut-off. Reads only the
    claims since the previous mark (index on run, claimed_at). The pool must be autocommit (IG's is):
    each statement its own snapshot."""
    with pool.connection() as conn:
        since = resolved_before(conn, run_id)
        cutoff = conn.execute(
            "SELECT least(clock_timestamp(), min(xact_start)) FROM pg_stat_activity"
            " WHERE usename = current_user AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
        ).fetchone()[0]
        first_open = conn.execute(
            "SELECT min(a.claimed_at) FROM ig_admissions a WHERE a.platform_run_id = %s"
            " AND a.claimed_at >= coalesce(%s, '-infinity'::timestamptz) AND a.claimed_at < %s AND " + _UNRESOLVED,
            (run_id, since, cutoff),
        ).fetchone()[0]
        mark = first_open or cutoff
        if since is not None and mark <= since:
            return since
        conn.execute(
            "INSERT INTO ig_resolved_marks (platform_run_id, resolved_before) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (run_id, mark),
        )
        return mark


def in_doubt(pool: ConnectionPool, run_id: str | None, grace_s: float) -> list[dict[str, Any]]:
    """Claims older than `grace_s` without a terminal receipt, of `run_id` (read from its latest mark on)
    or of every run (each from its own mark)."""
    runs = [run_id] if run_id is not None else _runs_with_claims(pool)
    out: list[dict[str, Any]] = []
    with pool.connection() as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        for run in runs:
            since = resolved_before(conn, run)
            out += cur.execute(
                "SELECT a.platform_run_id, a.event_class, a.event_id, a.payload_hash, a.topic, a.message_key,"
                " a.message, a.claimed_at FROM ig_admissions a WHERE a.platform_run_id = %s"
                " AND a.claimed_at >= coalesce(%s, '-infinity'::timestamptz)"
                " AND a.claimed_at < now() - make_interval(secs => %s) AND " + _UNRESOLVED,
                (run, since, grace_s),
            ).fetchall()
    return out


def _runs_with_claims(pool: ConnectionPool) -> list[str]:
    """Every run that has claims (a skip scan of the primary key: one probe per run, not per claim)."""
    with pool.connection() as conn:
        return [
            r[0]
            for r in conn.execute(
                "WITH RECURSIVE runs(id) AS (SELECT min(platform_run_id) FROM ig_admissions UNION ALL"
                " SELECT (SELECT min(platform_run_id) FROM ig_admissions WHERE platform_run_id > runs.id)"
                " FROM runs WHERE runs.id IS NOT NULL) SELECT id FROM runs WHERE id IS NOT NULL"
            ).fetchall()
        ]


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
    *,
    h: Handles,
    store: S3ObjectStore,
    max_record_bytes: int,
) -> dict[str, int]:
    """Resolve every in-doubt claim older than `grace_s` (of `run_id`, or of every run when None); returns
    counts found/republished/settled/unresolved. A claim is settled when its record exceeds
    `max_record_bytes` or its publish fails with a permanent error."""
    claims = in_doubt(pool, run_id, grace_s)
    counts = {"in_doubt": len(claims), "found_on_topic": 0, "republished": 0, "settled": 0, "unresolved": 0}
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
        oversized = [c for c in missing if _size(c, publisher) > max_record_bytes]
        unpublishable = {
            id(c): f"record of {_size(c, publisher)} bytes > {max_record_bytes}: the broker cannot hold it"
            for c in oversized
        }
        republished, failed = _republish(producer, topic, [c for c in missing if id(c) not in unpublishable], publisher)
        write_receipts(pool, republished)
        unpublishable.update({id(c): err for c, err in failed if any(code in err for code in PERMANENT_ERRORS)})
        settled = [c for c in missing if id(c) in unpublishable]
        _settle(h, store, pool, [(c, unpublishable[id(c)]) for c in settled])
        counts["republished"] += len(republished)
        counts["settled"] += len(settled)
        counts["unresolved"] += len(missing) - len(republished) - len(settled)
        if settled:
            log(f"{topic}: {len(settled)} claims settled as never publishable (QUARANTINE receipts)")
    return counts


def _size(claim: dict, publisher: str) -> int:
    key = None if claim["message_key"] is None else bytes(claim["message_key"])
    return record_bytes(bytes(claim["message"]), key, _headers(claim, publisher))


def _headers(claim: dict, publisher: str) -> list[tuple[str, str]]:
    return record_headers(
        claim["platform_run_id"], claim["event_class"], claim["event_id"], claim["payload_hash"], publisher
    )


def _settle(h: Handles, store: S3ObjectStore, pool: ConnectionPool, claims: list[tuple[dict, str]]) -> None:
    """Terminal receipts for claims that can never be published; the claimed record preserved in quarantine."""
    receipts = [
        Receipt(
            c["platform_run_id"],
            c["event_class"],
            c["event_id"],
            c["payload_hash"],
            QUARANTINE,
            f"unpublishable, settled by reconcile: {why}"[:2000],
            c["topic"],
            source="reconcile",
        )
        for c, why in claims
    ]
    by_run: dict[str, list[quarantine.Refused]] = defaultdict(list)
    for (c, _), r in zip(claims, receipts, strict=True):
        by_run[c["platform_run_id"]].append(
            quarantine.Refused(
                c["event_class"],
                c["event_id"],
                c["payload_hash"],
                QUARANTINE,
                r.reason or "",
                r.receipt_id,
                None,
                orjson.loads(bytes(c["message"])),
            )
        )
    for run, items in by_run.items():
        quarantine.preserve(h, store, pool, run, items)
    write_receipts(pool, receipts)


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


def _republish(
    producer: Producer, topic: str, claims: list[dict], publisher: str
) -> tuple[list[Receipt], list[tuple[dict, str]]]:
    """Publish claimed records proven absent from the topic; receipts for confirmed deliveries, and the
    claims whose delivery failed with the reason."""
    records = [
        (
            topic,
            bytes(c["message"]),
            None if c["message_key"] is None else bytes(c["message_key"]),
            _headers(c, publisher),
        )
        for c in claims
    ]
    outcomes = bus.deliver(producer, records) if records else []
    done = [_resolved(c, topic, *ref) for c, ref in zip(claims, outcomes, strict=True) if isinstance(ref, tuple)]
    failed = [(c, ref) for c, ref in zip(claims, outcomes, strict=True) if isinstance(ref, str)]
    return done, failed


def record_limit(h: Handles, admin) -> int:
    """The largest record IG publishes: the broker's declared limit less the framing margin."""
    topics = [t.name for t in h.topics()]
    declared = broker_message_max_bytes(admin, topics, BusSettings.load(h).message_max_bytes)
    return declared - IngestSettings.load(h).record_overhead_bytes


def reconcile_now(h: Handles, run_id: str | None, log: Log = lambda _: None) -> dict[str, int]:
    """The operator's `fp-platform ig reconcile`: safe beside a live IG (leaves young claims alone)."""
    pool = ConnectionPool(db.dsn(h), min_size=1, max_size=2, kwargs={"autocommit": True}, open=True)
    producer = bus.producer(h, **{"message.max.bytes": BusSettings.load(h).message_max_bytes})
    consumer = bus.scan_consumer(h)
    try:
        return reconcile(
            pool,
            producer,
            consumer,
            h.get("COMPONENT_ID_IG"),
            run_id,
            IngestSettings.load(h).reconcile_grace_seconds,
            log,
            h=h,
            store=S3ObjectStore(h),
            max_record_bytes=record_limit(h, bus.admin(h)),
        )
    finally:
        consumer.close()
        producer.flush(30)
        pool.close()

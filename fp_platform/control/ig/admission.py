"""IG admission: validate → claim the dedupe tuple → publish → receipt, in that order.

The claim (dedupe tuple, payload hash and the exact bus record) is committed before the publish and
the ADMIT receipt, carrying the Kafka offset, only after delivery is confirmed. So a crash at any
point loses nothing (the claim holds the record) and doubles nothing (a claimed event is never
published again by an attempt; only `reconcile` may, after proving it is not on the topic).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from confluent_kafka import KafkaException, Producer
from psycopg_pool import ConnectionPool

from fp_platform.contracts.canonical import canonical_json, payload_hash, sha256_hex
from fp_platform.contracts.envelope import record_headers, topic_key_for
from fp_platform.contracts.evidence import utc_now_iso
from fp_platform.contracts.payloads import envelope_problem
from fp_platform.control.ig import quarantine
from fp_platform.control.ig.limits import id_problem, printable, record_bytes, shape, stored_id
from fp_platform.control.ig.receipt_segments import RECEIPT_BARRIER, RECEIPT_COLUMNS
from fp_platform.control.settings import IngestSettings
from fp_platform.handles import Handles, Topic
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.substrate.settings import BusSettings

ADMIT, DUPLICATE, QUARANTINE, ANOMALY, AMBIGUOUS = "ADMIT", "DUPLICATE", "QUARANTINE", "ANOMALY", "PUBLISH_AMBIGUOUS"
OUTCOMES = (ADMIT, DUPLICATE, QUARANTINE, ANOMALY, AMBIGUOUS)
OFFSET_KIND = "kafka_offset"
SETTLED = "SETTLED"  # ig_admission_state: a claim reconcile proved can never be published (terminal receipt)

Tuple = tuple[str, str]  # (event_class, event_id) within the required run


@dataclass
class Receipt:
    platform_run_id: str
    event_class: str
    event_id: str
    payload_hash: str
    decision: str
    reason: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    producer: str | None = None
    source: str = "ingest"
    receipt_id: str = field(default_factory=lambda: "rcpt_" + uuid.uuid4().hex)
    received_at: datetime | None = None  # when the request arrived at IG; None: when the receipt is written

    def to_response(self) -> dict[str, Any]:
        eb_ref = None
        if self.offset is not None:
            eb_ref = {
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                "offset_kind": OFFSET_KIND,
            }
        return {
            "receipt_id": self.receipt_id,
            "event_class": self.event_class,
            "event_id": self.event_id,
            "payload_hash": self.payload_hash,
            "decision": self.decision,
            "reason": self.reason,
            "eb_ref": eb_ref,
        }


@dataclass
class Candidate:
    """One event of a request after validation; `problem` set means it is quarantined."""

    event_class: str
    event_id: str
    payload_hash: str
    doc: Any
    producer: str | None = None
    problem: str | None = None
    topic: str | None = None
    key: bytes | None = None
    message: bytes | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def tuple(self) -> Tuple:
        return (self.event_class, self.event_id)


def write_receipts(pool: ConnectionPool, receipts: list[Receipt]) -> None:
    """Append receipts in one transaction; `received_at` is the receipt's own, else the column default (now())."""
    if not receipts:
        return
    stamped = [r for r in receipts if r.received_at is not None]
    unstamped = [r for r in receipts if r.received_at is None]
    with pool.connection() as conn, conn.transaction():
        # the segment flusher's barrier: it waits for every transaction holding this (receipt_segments)
        conn.execute("SELECT pg_advisory_xact_lock_shared(hashtext(%s))", (RECEIPT_BARRIER,))
        for rows, columns in ((stamped, (*RECEIPT_COLUMNS, "received_at")), (unstamped, RECEIPT_COLUMNS)):
            if not rows:
                continue
            with conn.cursor().copy(f"COPY ig_receipts ({', '.join(columns)}) FROM STDIN") as copy:
                for r in rows:
                    row = (
                        r.receipt_id,
                        r.platform_run_id,
                        r.event_class,
                        r.event_id,
                        r.payload_hash,
                        r.decision,
                        r.reason,
                        r.source,
                        r.topic,
                        r.partition,
                        r.offset,
                        r.producer,
                    )
                    copy.write_row((*row, r.received_at) if r.received_at is not None else row)


class Admitter:
    """Everything IG does with an event after the HTTP layer: plain Python, thread-safe."""

    def __init__(
        self, h: Handles, required_run_id: str, pool: ConnectionPool, producer: Producer, store: S3ObjectStore
    ) -> None:
        self.h = h
        self.run_id = required_run_id
        self.pool = pool
        self.producer = producer
        self.store = store
        self.publisher = h.get("COMPONENT_ID_IG")
        self._topics: dict[str, Topic] = {}
        self.delivery_timeout_s = BusSettings.load(h).producer_delivery_timeout_ms / 1000
        self._lock = threading.Lock()
        self._inflight: dict[Tuple, threading.Event] = {}
        self.counters = dict.fromkeys(OUTCOMES, 0)
        self.last_publish_error: str | None = None
        self.max_depth = IngestSettings.load(h).max_json_depth
        # the gate lowers this at start to what the broker declares (limits.broker_message_max_bytes)
        self.max_record_bytes = BusSettings.load(h).message_max_bytes - IngestSettings.load(h).record_overhead_bytes
        # claims this process left without a terminal receipt (health re-checks these by key, not the table)
        self._in_doubt: set[Tuple] = set()
        self._doubt_lock = threading.Lock()

    # --- validation ----------------------------------------------------------------------------
    def prepare(self, doc: Any, scan_nul: bool = True) -> Candidate:
        """Shape, ids, schema, payload hash, run pin, record size and topic of one received event.

        Every property a store would refuse (U+0000, an unbounded or dot-only id, a record above the
        broker's limit) is found here, before the claim, so it ends in a QUARANTINE receipt, never a 5xx."""
        if not isinstance(doc, dict):
            return self._unidentified(doc, "envelope must be a JSON object")
        event_class = doc.get("event_class") if isinstance(doc.get("event_class"), str) else None
        event_id = doc.get("event_id") if isinstance(doc.get("event_id"), str) else None
        problems = []
        if scan_nul and shape(doc, self.max_depth).has_nul:
            problems.append("a string holds U+0000 (no store of the platform can keep it)")
        for name, value in (("event_class", event_class), ("event_id", event_id)):
            if value is not None and (bad := id_problem(value, name)):
                problems.append(bad)
        if (schema := envelope_problem(doc)) is not None:
            problems.append(f"schema: {schema}")
        if problems or event_class is None or event_id is None:
            return self._unidentified(
                doc, "; ".join(problems) or "schema: event_class and event_id are required", event_class, event_id
            )
        cand = Candidate(event_class, event_id, payload_hash(doc["payload"]), doc, producer=doc["producer"])
        if doc.get("payload_hash") not in (None, cand.payload_hash):
            cand.problem = "payload_hash does not match sha256 of the canonical payload"
        elif doc["pins"].get("platform_run_id") != self.run_id:
            cand.problem = (
                f"pin_mismatch: pins.platform_run_id={doc['pins'].get('platform_run_id')!r}, "
                f"this gate admits only {self.run_id!r}"
            )
        if cand.problem:
            return cand
        topic = self._topics.get(event_class) or self._topics.setdefault(
            event_class, self.h.topic(topic_key_for(event_class))
        )
        source = doc["payload"] if topic.partition_key in doc["payload"] else doc["pins"]
        key = source.get(topic.partition_key)
        cand.topic, cand.key = topic.name, None if key is None else str(key).encode()
        cand.message = orjson.dumps({**doc, "payload_hash": cand.payload_hash, "schema_version": "v1"})
        cand.headers = record_headers(self.run_id, event_class, event_id, cand.payload_hash, self.publisher)
        size = record_bytes(cand.message, cand.key, cand.headers)
        if size > self.max_record_bytes:
            cand.problem = (
                f"record_too_large: {size} bytes > {self.max_record_bytes} (the broker's message.max.bytes"
                " less IG_RECORD_OVERHEAD_BYTES): it could never be published"
            )
        return cand

    def _unidentified(
        self, doc: Any, problem: str, event_class: str | None = None, event_id: str | None = None
    ) -> Candidate:
        """A refused event whose own ids cannot be stored as given: a digest stands in for each (the
        envelope, kept whole in quarantine, still holds the originals)."""
        raw_hash = sha256_hex(canonical_json(doc))
        return Candidate(
            stored_id(event_class, "event_class") if event_class is not None else "unknown",
            stored_id(event_id, "event_id") if event_id is not None else f"raw_{raw_hash[:32]}",
            raw_hash,
            doc,
            problem=printable(problem),
        )

    # --- admission -----------------------------------------------------------------------------
    def admit(self, docs: list[Any], received_at: datetime | None = None, scan_nul: bool = True) -> list[Receipt]:
        """Receipts in request order; returns only once every receipt is durable in Postgres.

        `received_at` is when the request arrived (the HTTP layer stamps it first thing); every receipt
        carries it, so latency measured from a receipt starts at arrival, not at the confirmed publish.
        `scan_nul=False` skips the U+0000 walk when the caller knows the body holds no `\\u0000` escape."""
        received_at = received_at or datetime.now(UTC)
        cands = [self.prepare(d, scan_nul) for d in docs]
        receipts: list[Receipt | None] = [None] * len(cands)
        first: dict[Tuple, int] = {}
        for i, c in enumerate(cands):
            if c.problem:
                receipts[i] = self._receipt(c, QUARANTINE, c.problem)
            elif c.tuple not in first:
                first[c.tuple] = i
        tuples = list(first)
        self._acquire(tuples)
        claimed: set[Tuple] = set()
        try:
            claimed, existing = self._claim([cands[i] for i in first.values()])
            published = self._publish([cands[first[t]] for t in tuples if t in claimed])
            self.mark_in_doubt(t for t, r in published.items() if r.decision == AMBIGUOUS)
            for t, i in first.items():
                c = cands[i]
                receipts[i] = published[t] if t in claimed else self._conflict(c, existing[t])
            for i, c in enumerate(cands):  # repeats of a tuple within the same request
                if receipts[i] is None:
                    lead = receipts[first[c.tuple]]
                    if c.payload_hash != lead.payload_hash:
                        receipts[i] = self._receipt(c, ANOMALY, "payload_hash differs from the first claim")
                    elif lead.decision in (ADMIT, DUPLICATE):
                        receipts[i] = self._receipt(c, DUPLICATE, "repeated within the request", lead)
                    else:
                        receipts[i] = self._receipt(c, lead.decision, lead.reason)
            done = [r for r in receipts if r is not None]
            for r in done:
                r.received_at = received_at
            self._quarantine([(c, r) for c, r in zip(cands, done, strict=True) if r.decision in (QUARANTINE, ANOMALY)])
            write_receipts(self.pool, done)
        except BaseException:
            self.mark_in_doubt(claimed)  # claimed, maybe published, not receipted: reconcile decides
            raise
        finally:
            self._release(tuples)
        for r in done:
            self.counters[r.decision] += 1
        return done

    # --- claims in doubt (read by health from other threads) --------------------------------------
    def mark_in_doubt(self, tuples: Iterable[Tuple]) -> None:
        with self._doubt_lock:
            self._in_doubt.update(tuples)

    def in_doubt(self) -> list[Tuple]:
        with self._doubt_lock:
            return sorted(self._in_doubt)

    def resolved(self, tuples: Iterable[Tuple]) -> int:
        """Drop tuples now receipted; how many stay in doubt."""
        with self._doubt_lock:
            self._in_doubt.difference_update(tuples)
            return len(self._in_doubt)

    def _receipt(
        self, c: Candidate, decision: str, reason: str | None = None, ref: Receipt | dict | None = None
    ) -> Receipt:
        reason = None if reason is None else printable(reason)
        r = Receipt(self.run_id, c.event_class, c.event_id, c.payload_hash, decision, reason, producer=c.producer)
        if isinstance(ref, Receipt):
            r.topic, r.partition, r.offset = ref.topic, ref.partition, ref.offset
        elif ref:
            r.topic, r.partition, r.offset = ref["topic"], ref["kafka_partition"], ref["kafka_offset"]
        return r

    def _conflict(self, c: Candidate, claim: dict) -> Receipt:
        if claim["payload_hash"] != c.payload_hash:
            return self._receipt(c, ANOMALY, f"payload_hash differs from the claimed {claim['payload_hash'][:16]}…")
        if claim["state"] == "ADMITTED":
            return self._receipt(c, DUPLICATE, None, claim)
        if claim["state"] == SETTLED:
            return self._receipt(c, QUARANTINE, "claimed earlier; reconcile settled it as never publishable")
        return self._receipt(c, AMBIGUOUS, "claimed earlier but delivery is unconfirmed; `fp-platform ig reconcile`")

    def _acquire(self, tuples: list[Tuple]) -> None:
        """Serialise attempts on the same tuple inside this process (a retry racing its original)."""
        while True:
            with self._lock:
                busy = {id(ev): ev for t in tuples if (ev := self._inflight.get(t)) is not None}.values()
                if not busy:
                    mine = threading.Event()
                    for t in tuples:
                        self._inflight[t] = mine
                    return
            for ev in busy:
                ev.wait(self.delivery_timeout_s + 5)

    def _release(self, tuples: list[Tuple]) -> None:
        with self._lock:
            released = {id(ev): ev for t in tuples if (ev := self._inflight.pop(t, None)) is not None}
        for ev in released.values():
            ev.set()

    def _claim(self, cands: list[Candidate]) -> tuple[set[Tuple], dict[Tuple, dict]]:
        """Insert claims; return the tuples this attempt won and the state of those already claimed."""
        if not cands:
            return set(), {}
        # claims are committed before anything is published
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS ig_claims_in (event_class text, event_id text,"
                " payload_hash text, topic text, message_key bytea, message bytea) ON COMMIT DELETE ROWS"
            )
            with conn.cursor().copy("COPY ig_claims_in FROM STDIN") as copy:
                for c in cands:
                    copy.write_row((c.event_class, c.event_id, c.payload_hash, c.topic, c.key, c.message))
            won = conn.execute(
                "INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, topic,"
                " message_key, message) SELECT %s, * FROM ig_claims_in ON CONFLICT DO NOTHING"
                " RETURNING event_class, event_id",
                (self.run_id,),
            ).fetchall()
            claimed = {(r[0], r[1]) for r in won}
            existing: dict[Tuple, dict] = {}
            if len(claimed) < len(cands):
                cur = conn.cursor(row_factory=psycopg.rows.dict_row)
                for row in cur.execute(
                    "SELECT s.* FROM ig_admission_state s JOIN ig_claims_in l ON s.event_class = l.event_class"
                    " AND s.event_id = l.event_id WHERE s.platform_run_id = %s",
                    (self.run_id,),
                ):
                    t = (row["event_class"], row["event_id"])
                    if t not in claimed:
                        existing[t] = row
        return claimed, existing

    def _publish(self, cands: list[Candidate]) -> dict[Tuple, Receipt]:
        """Produce every claimed event and wait for each delivery report (never assumed)."""
        results: dict[Tuple, Receipt] = {}
        if not cands:
            return results
        remaining = [len(cands)]
        done = threading.Event()
        lock = threading.Lock()

        def report(c: Candidate) -> Callable:
            def on_delivery(err, msg) -> None:
                if err is None:
                    results[c.tuple] = self._receipt(c, ADMIT, None)
                    results[c.tuple].topic, results[c.tuple].partition = msg.topic(), msg.partition()
                    results[c.tuple].offset = msg.offset()
                else:
                    self.last_publish_error = f"{utc_now_iso()} {err}"
                    results[c.tuple] = self._receipt(c, AMBIGUOUS, f"delivery not confirmed: {err}")
                with lock:
                    remaining[0] -= 1
                    if remaining[0] == 0:
                        done.set()

            return on_delivery

        for c in cands:
            while True:
                try:
                    self.producer.produce(c.topic, c.message, c.key, headers=c.headers, on_delivery=report(c))
                    break
                except BufferError:  # local queue full: let deliveries drain, then retry
                    self.producer.poll(0.05)
                except KafkaException as exc:  # refused locally (not produced): its claim waits for reconcile
                    report(c)(exc.args[0], None)
                    break
        if not done.wait(self.delivery_timeout_s + 5):
            for c in cands:
                results.setdefault(c.tuple, self._receipt(c, AMBIGUOUS, "no delivery report within the timeout"))
        return results

    def _quarantine(self, items: Iterable[tuple[Candidate, Receipt]]) -> None:
        """Preserve each refused envelope once (write-once object, key from the identity digest) and index it."""
        quarantine.preserve(
            self.h,
            self.store,
            self.pool,
            self.run_id,
            (
                quarantine.Refused(
                    c.event_class,
                    c.event_id,
                    c.payload_hash,
                    r.decision,
                    r.reason or "",
                    r.receipt_id,
                    r.received_at,
                    c.doc,
                )
                for c, r in items
            ),
        )

    def record_rejection(
        self, status: int, error: str, reason: str, body: bytes | None, received_at: datetime | None = None
    ) -> None:
        """Receipt a request refused before its events could be read (401, 400, 413, 429), stamped with
        when it arrived (default: now)."""
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO ig_request_rejections (required_run_id, http_status, error, reason, body_bytes,"
                " body_sha256, received_at) VALUES (%s, %s, %s, %s, %s, %s, coalesce(%s, now()))",
                (
                    self.run_id,
                    status,
                    error,
                    printable(reason),
                    None if body is None else len(body),
                    None if body is None else sha256_hex(body),
                    received_at,
                ),
            )

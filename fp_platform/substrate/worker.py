"""The worker base every bus consumer uses (DESIGN.md §5).

batch consume → run-scope gate (records of another platform_run_id are checkpoint-skipped) →
`apply` → ONE Postgres transaction holding the state and the consumed offsets → Kafka commit after
the DB commit → heartbeat row + `<component>/health/last_health.json`. What a worker publishes goes
through its outbox (written in the same transaction, sent after it; see `emit`). The offsets in Postgres are
the truth: a restart (or a kill -9 at any point) resumes from them, so nothing is lost and nothing
is applied twice. A Postgres advisory lock per consumer group keeps it to one replica.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import signal
import sys
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
import psycopg
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from fp_platform.contracts.components import Component
from fp_platform.contracts.envelope import Envelope, record_headers, topic_key_for
from fp_platform.contracts.evidence import utc_now_iso
from fp_platform.contracts.ids import check_platform_run_id
from fp_platform.handles import Handles, handles
from fp_platform.substrate import bus, db
from fp_platform.substrate.heartbeat import Beat, BeatWriter, write_beats
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.substrate.probe import write_probe
from fp_platform.substrate.settings import WorkerSettings

log = logging.getLogger("fp_platform.worker")


PUBLISH_TIMEOUT_S = 60.0  # how long an outbox send may wait for room and for the broker's confirmations
FAILPOINT_ENV = "FP_FAILPOINT"
_passes: Counter = Counter()


def failpoint(name: str) -> None:
    """Crash drills: with FP_FAILPOINT=<name>:<n>, the process kills itself (SIGKILL, no clean-up) the n-th
    time it passes the point `name`. Unset (always, outside drills and tests), it costs a dict lookup."""
    spec = os.environ.get(FAILPOINT_ENV)
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point == name:
        _passes[name] += 1
        if _passes[name] >= int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)


class WorkerError(RuntimeError):
    """The worker cannot run as configured (run scope, second replica, unreadable record)."""


@dataclass(frozen=True)
class BusRecord:
    """One record of the required run, with where it came from (every derived row keeps it)."""

    topic: str
    partition: int
    offset: int
    envelope: dict[str, Any]
    value: bytes
    bus_ts_ms: int = 0  # the record's Kafka timestamp (its producer's create time): when it went on the bus

    @property
    def ts(self) -> str:
        return self.envelope["ts_utc"]

    @property
    def payload(self) -> dict[str, Any]:
        return self.envelope["payload"]

    @property
    def origin(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)

    @property
    def origin_json(self) -> str:
        return orjson.dumps({"topic": self.topic, "partition": self.partition, "offset": self.offset}).decode()

    def derive(self, producer: str, event_id: str, event_class: str, payload: dict[str, Any]) -> Envelope:
        """The event `producer` derives from this record: the record's world time and run pins carry over."""
        return Envelope.build(
            event_id=event_id,
            event_class=event_class,
            ts_utc=self.ts,
            pins=self.envelope["pins"],
            producer=producer,
            payload=payload,
        )


@dataclass
class WorkerStats:
    started_at_utc: str = field(default_factory=utc_now_iso)
    batches: int = 0
    applied: int = 0
    skipped_other_run: int = 0
    kafka_commit_failures: int = 0
    last_batch_ms: float = 0.0
    last_applied_at_utc: str | None = None
    first_applied_mono: float = 0.0  # monotonic start of the first batch with records of the run
    last_applied_mono: float = 0.0  # monotonic end of the last one
    counters: Counter = field(default_factory=Counter)  # the worker's own (join_hits, segments, ...)
    times: Counter = field(default_factory=Counter)  # seconds spent per stage of the batches (where time goes)

    def snapshot(self) -> dict[str, Any]:
        return {
            "started_at_utc": self.started_at_utc,
            "batches": self.batches,
            "applied": self.applied,
            "skipped_other_run": self.skipped_other_run,
            "kafka_commit_failures": self.kafka_commit_failures,
            "last_batch_ms": round(self.last_batch_ms, 2),
            "last_applied_at_utc": self.last_applied_at_utc,
            "ms_per_batch": {k: round(v * 1000 / max(1, self.batches), 2) for k, v in self.times.items()},
            **dict(self.counters),
        }


def required_run_id(h: Handles, explicit: str | None = None) -> str:
    """The run scope a worker serves: explicit, else REQUIRED_PLATFORM_RUN_ID; absent → fail closed."""
    env_key = h.get("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")
    run_id = explicit or os.environ.get(env_key)
    if not run_id:
        raise WorkerError(f"no run scope: set {env_key} (workers never run unscoped)")
    check_platform_run_id(run_id)
    return run_id


def record_digest(value: bytes | None) -> str:
    return hashlib.blake2b(value or b"", digest_size=16).hexdigest()


def digest_at(probe, topic: str, partition: int, offset: int, timeout_s: float = 2.0) -> str | None:
    """Digest of the record at exactly `offset`, or None when the log has no such record (Tansu answers a
    fetch past its end with nothing at all, so silence for `timeout_s` also means absent)."""
    probe.assign([TopicPartition(topic, partition, offset)])
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for m in probe.consume(1, timeout=0.2):
                if m.error() is not None:
                    return None  # end of partition (or an error) before the record: not on this log
                return record_digest(m.value()) if m.offset() == offset else None
        return None
    finally:
        probe.unassign()


def run_intake(conn: psycopg.Connection, group_id: str, run_id: str) -> int:
    """Records of the run the group has applied so far (redeliveries included)."""
    row = conn.execute(
        "SELECT applied FROM worker_run_intake WHERE consumer_group = %s AND platform_run_id = %s", (group_id, run_id)
    ).fetchone()
    return row[0] if row else 0


def outbox_row(h: Handles, envelope: Envelope, key: str, component: str, group_id: str) -> tuple:
    """The outbox row that publishes `envelope` for the worker of `group_id` (see `Worker.emit`)."""
    topic = h.topic(topic_key_for(envelope.event_class)).name
    headers = record_headers(
        envelope.platform_run_id, envelope.event_class, envelope.event_id, envelope.payload_hash, component
    )
    return (group_id, topic, key.encode(), headers, envelope.to_bytes())


def write_outbox(conn: psycopg.Connection, rows: list[tuple]) -> int:
    """Append outbox rows inside the caller's transaction; the group's worker sends them after it. Returns
    the group's last outbox seq (one writer per group: every seq up to it is of this batch or sent before)."""
    if not rows:
        return 0
    db.copy_rows(  # binary: the values' bytes copied, not hex-escaped
        conn,
        "worker_outbox",
        ("consumer_group", "topic", "record_key", "headers", "value"),
        ((group, topic, key, db.jsonb(headers), value) for group, topic, key, headers, value in rows),
        ("text", "text", "bytea", "jsonb", "bytea"),
    )
    return conn.execute("SELECT max(seq) FROM worker_outbox WHERE consumer_group = %s", (rows[0][0],)).fetchone()[0]


def outbox_sent(conn: psycopg.Connection, group_id: str) -> int:
    """The last outbox seq of the group the broker confirmed."""
    row = conn.execute("SELECT sent_seq FROM worker_outbox_cursor WHERE consumer_group = %s", (group_id,)).fetchone()
    return row[0] if row else 0


def outbox_unsent(conn: psycopg.Connection, group_id: str) -> int:
    """Outbox rows of the group not confirmed by the broker yet (0 once everything emitted was sent)."""
    return conn.execute(
        "SELECT count(*) FROM worker_outbox WHERE consumer_group = %s AND seq > %s",
        (group_id, outbox_sent(conn, group_id)),
    ).fetchone()[0]


def run_of(headers: list[tuple[str, bytes]] | None) -> bytes | None:
    """The record's platform_run_id header, undecoded: the run-scope gate sees every record of every run."""
    if headers and headers[0][0] == "platform_run_id":  # where `record_headers` puts it
        return headers[0][1]
    for key, value in headers or ():
        if key == "platform_run_id":
            return value
    return None


class Worker(ABC):
    """A bus consumer. Subclasses name their component, pack, group and topics (handle keys) and
    implement `apply`, which writes state through `conn` inside the batch's transaction.

    Batches are sized for the decision path (WORKER_BATCH_*), where the fill wait is latency each hop adds
    to a decision. A worker whose output no decision waits on (archive, IEG, AL, DLA, the case/labels plane)
    is `off_path` in its identity and trades that latency for fewer, fuller batches (WORKER_OFFPATH_BATCH_*): fewer
    transactions, segments and per-batch queries.
    """

    identity: ClassVar[Component]  # id, pack, group, topics, phase, off_path: declared in contracts/components.py
    consumer_overrides: ClassVar[dict[str, Any]] = {"fetch.wait.max.ms": 50}
    producer_overrides: ClassVar[dict[str, Any]] = {}

    def __init__(
        self, h: Handles, platform_run_id: str, *, group_id: str | None = None, store: S3ObjectStore | None = None
    ) -> None:
        self.h = h
        self.run_id = platform_run_id
        self.component = h.get(self.identity.component_key)
        self.pack_id = h.get(self.identity.pack_key)
        self.group_id = group_id or h.get(self.identity.group_key)
        self.topics = [h.topic(k).name for k in self.identity.topic_keys]
        self.phase_id = self.identity.phase_id
        self.off_path = self.identity.off_path
        self.store = store or S3ObjectStore(h)
        self.stats = WorkerStats()
        knobs = WorkerSettings.load(h)
        self.batch_max = knobs.offpath_batch_max_records if self.off_path else knobs.batch_max_records
        self.fill_s = (knobs.offpath_batch_fill_ms if self.off_path else knobs.batch_fill_ms) / 1000
        self._outbox: list[tuple] = []
        self._producer = None
        self._conn: psycopg.Connection | None = None
        self._run_bytes = platform_run_id.encode()
        self._stop = False
        self._health = "GREEN"
        self._beat_writer: BeatWriter | None = None
        self._sent_unrecorded = 0  # the last outbox seq the broker confirmed, not yet in the cursor
        self._inflight: deque[list[int]] = deque()  # [last outbox seq, deliveries outstanding] per batch sent
        self._publish_error: str | None = None
        self.batch_next_offsets: dict[tuple[str, int], int] = {}  # the batch being applied: next offset per partition
        self.assigned: dict[tuple[str, int], int] = {}  # where the consumer started, per partition

    @abstractmethod
    def apply(self, conn: psycopg.Connection, records: list[BusRecord]) -> None:
        """Write the state these records produce (inside the batch's transaction)."""

    def on_start(self, conn: psycopg.Connection) -> None:
        """Called once the partitions are assigned, before the first batch (state the worker needs)."""
        return None

    def prepare(self, conn: psycopg.Connection, records: list[BusRecord]) -> None:
        """Called before the batch's transaction opens: waiting on other components belongs here, where
        no transaction is held and the worker keeps beating (`self.waiting`)."""
        return None

    def waiting(self) -> bool:
        """For long waits in `prepare`: a heartbeat (throttled to its interval); True once stopping."""
        if self._conn is not None:
            self._beat(self._conn)
        return self._stop

    def on_idle(self, conn: psycopg.Connection) -> None:
        """Called when a poll brought nothing (work that waits on another component, not on records)."""
        return None

    def health(self, conn: psycopg.Connection) -> tuple[str, dict[str, Any]]:
        """(AMBER problem or "", extra counters) for the heartbeat; the base knows GREEN/RED/STOPPED only."""
        return "", {}

    def emit(self, envelope: Envelope, key: str) -> bytes:
        """Publish `envelope` once this batch commits: it is written to the worker's outbox inside the
        batch's transaction and sent after it, so a crash cannot lose it; a crash before the send is
        confirmed sends the same bytes again (consumers dedupe on the event id). Returns those bytes."""
        row = outbox_row(self.h, envelope, key, self.component, self.group_id)
        self._outbox.append(row)
        return row[-1]

    def stop(self, *_: Any) -> None:
        self._stop = True

    # --- the loop ---------------------------------------------------------------------------
    def run(self, *, until_idle_s: float | None = None, install_signals: bool = True) -> WorkerStats:
        """Consume until SIGTERM (or, with `until_idle_s`, until nothing arrives for that long)."""
        if install_signals:
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        lock_conn = db.connect(self.h, autocommit=True)
        conn = db.connect(self.h, autocommit=True)  # every write is an explicit transaction block
        conn.prepare_threshold = None  # custom plans per batch: a generic plan cannot see how young the run is
        self._conn = conn
        consumer = bus.consumer(self.h, self.group_id, **self.consumer_overrides)
        try:
            self._lock(lock_conn)
            assignment = self._assignment(conn, consumer)
            consumer.assign(assignment)
            self.assigned = {(tp.topic, tp.partition): tp.offset for tp in assignment}
            log.info(
                "%s: run %s, group %s, from %s",
                self.component,
                self.run_id,
                self.group_id,
                {f"{tp.topic}[{tp.partition}]": tp.offset for tp in assignment},
            )
            self._send_outbox(conn)  # anything a previous process committed but did not get confirmed
            self.on_start(conn)
            self._beat(conn, force=True)
            self._beat_writer = BeatWriter(self.h)
            idle_since = time.monotonic()
            while not self._stop:
                msgs = self._fill(consumer)
                if msgs:
                    self._batch(conn, consumer, msgs)
                    idle_since = time.monotonic()
                elif until_idle_s is not None and time.monotonic() - idle_since > until_idle_s:
                    break
                else:
                    self._settle()
                    self._move_cursor(conn)  # idle: the cursor catches up with what was sent
                    self.on_idle(conn)
                self._settle()
                self._beat(conn)
            self._close_beat_writer()
            self._settle(wait_s=PUBLISH_TIMEOUT_S)
            self._move_cursor(conn)
            self._health = "STOPPED"
            self._beat(conn, force=True)
        except Exception:
            self._close_beat_writer()
            self._health = "RED"
            with contextlib.suppress(Exception):  # the failure may be the DB itself; the exit code tells
                self._beat(conn, force=True)
            raise
        finally:
            consumer.close()
            if self._producer is not None:
                self._producer.flush(10)
            conn.close()
            lock_conn.close()
        return self.stats

    def _close_beat_writer(self) -> None:
        if self._beat_writer is not None:
            self._beat_writer.close()
            self._beat_writer = None

    def _fill(self, consumer) -> list:
        """Up to a full batch, waiting at most WORKER_BATCH_FILL_MS for it to fill: a backlog comes back
        at once in full batches; a trickle is batched by that wait (the latency each hop adds)."""
        return [m for m in consumer.consume(self.batch_max, timeout=self.fill_s) if not self._is_eof(m)]

    def _lock(self, conn: psycopg.Connection) -> None:
        got = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (self.group_id,)).fetchone()[0]
        if not got:
            raise WorkerError(
                f"{self.component}: another replica holds consumer group {self.group_id} (one replica per worker)"
            )

    def _assignment(self, conn: psycopg.Connection, consumer) -> list[TopicPartition]:
        """Every partition of the topics, from the DB checkpoint; no checkpoint → the earliest offset.
        A checkpoint whose last record is not on the log (a bus recreated, e.g. a memory-mode
        broker restarted) is of another log: the partition is read from its start again."""
        saved = {
            (t, p): (o, d)
            for t, p, o, d in conn.execute(
                "SELECT topic, kafka_partition, next_offset, last_digest FROM worker_offsets WHERE consumer_group = %s",
                (self.group_id,),
            )
        }
        out = []
        probe = bus.scan_consumer(self.h)
        try:
            for topic in self.topics:
                for p in bus.partitions(consumer, topic):
                    low, _ = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                    nxt, digest = saved.get((topic, p), (0, None))
                    found = digest_at(probe, topic, p, nxt - 1) if nxt > 0 else None
                    if nxt > 0 and (found is None or found != (digest or found)):  # no digest: the record must exist
                        log.warning(
                            "%s: checkpoint %s[%s]@%s is not on this log; reading the partition again",
                            self.component,
                            topic,
                            p,
                            nxt,
                        )
                        with conn.transaction():
                            conn.execute(
                                "UPDATE worker_offsets SET next_offset = 0, last_digest = NULL,"
                                " updated_at = now() WHERE consumer_group = %s AND topic = %s"
                                " AND kafka_partition = %s",
                                (self.group_id, topic, p),
                            )
                        self.stats.counters["checkpoints_of_another_log"] += 1
                        nxt = 0
                    out.append(TopicPartition(topic, p, max(low, nxt)))
        finally:
            probe.close()
        return out

    @staticmethod
    def _is_eof(msg) -> bool:
        err = msg.error()
        if err is None:
            return False
        if err.code() == KafkaError._PARTITION_EOF:
            return True
        raise KafkaException(err)

    def _batch(self, conn: psycopg.Connection, consumer, msgs: list) -> None:
        t0 = time.perf_counter()
        records: list[BusRecord] = []
        ends: dict[tuple[str, int], list] = {}  # (topic, partition) -> [next_offset, applied, skipped, digest]
        for m in msgs:
            key = (m.topic(), m.partition())
            end = ends.setdefault(key, [0, 0, 0, None])
            if m.offset() + 1 > end[0]:
                end[0], end[3] = m.offset() + 1, m
            if run_of(m.headers()) != self._run_bytes:
                end[2] += 1
                continue
            try:
                env = orjson.loads(m.value())
            except orjson.JSONDecodeError as exc:
                raise WorkerError(f"{m.topic()}[{m.partition()}]@{m.offset()} is not an envelope: {exc}") from None
            end[1] += 1
            records.append(BusRecord(m.topic(), m.partition(), m.offset(), env, m.value(), m.timestamp()[1]))
        for end in ends.values():
            end[3] = record_digest(end[3].value())  # of the partition's last record: the checkpoint's proof
        self.batch_next_offsets = {k: e[0] for k, e in ends.items()}
        t_decoded = time.perf_counter()
        if records:
            self.prepare(conn, records)
        with self.unit_of_work(conn):
            if records:
                self.apply(conn, records)
            t_applied = time.perf_counter()
            parts = sorted(ends.items())
            moved = conn.execute(
                "INSERT INTO worker_offsets (consumer_group, topic, kafka_partition, next_offset, applied, skipped,"
                " last_digest) SELECT %s, * FROM unnest(%s::text[], %s::int[], %s::bigint[], %s::bigint[],"
                " %s::bigint[], %s::text[]) ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE"
                " SET next_offset = EXCLUDED.next_offset, applied = worker_offsets.applied + EXCLUDED.applied,"
                " skipped = worker_offsets.skipped + EXCLUDED.skipped, last_digest = EXCLUDED.last_digest,"
                " updated_at = now() WHERE worker_offsets.next_offset <= EXCLUDED.next_offset"
                " RETURNING topic, kafka_partition",
                (self.group_id, *[list(c) for c in zip(*((t, p, *e) for (t, p), e in parts), strict=True)]),
            ).fetchall()
            if len(moved) != len(parts):  # only a second consumer could move a checkpoint past us
                behind = sorted(set(ends) - set(moved))
                raise WorkerError(f"{self.component}: checkpoint of {behind} is past this batch")
            if records:
                conn.execute(
                    "INSERT INTO worker_run_intake (consumer_group, platform_run_id, applied)"
                    " VALUES (%s, %s, %s) ON CONFLICT (consumer_group, platform_run_id) DO UPDATE"
                    " SET applied = worker_run_intake.applied + EXCLUDED.applied, updated_at = now()",
                    (self.group_id, self.run_id, len(records)),
                )
        t_done = time.perf_counter()
        self.stats.times["decode"] += t_decoded - t0
        self.stats.times["apply"] += t_applied - t_decoded
        self.stats.times["commit_and_publish"] += t_done - t_applied
        failpoint("before_kafka_commit")
        try:  # after the DB commit, not waited for: the DB offsets are the truth, Kafka's only follow them
            consumer.commit(offsets=[TopicPartition(t, p, e[0]) for (t, p), e in ends.items()], asynchronous=True)
        except KafkaException as exc:
            self.stats.kafka_commit_failures += 1
            log.warning("%s: Kafka commit failed after the DB commit (DB offsets rule): %s", self.component, exc)
        self.stats.batches += 1
        self.stats.applied += len(records)
        self.stats.skipped_other_run += sum(e[2] for e in ends.values())
        self.stats.last_batch_ms = (time.perf_counter() - t0) * 1000
        if records:
            self.stats.last_applied_at_utc = utc_now_iso()
            self.stats.first_applied_mono = self.stats.first_applied_mono or t0
            self.stats.last_applied_mono = time.perf_counter()

    @contextlib.contextmanager
    def unit_of_work(self, conn: psycopg.Connection) -> Iterator[None]:
        """One transaction for the state, the outbox rows it emitted (and, in a batch, the offsets); the
        outbox is sent once it commits."""
        self._outbox.clear()
        with conn.transaction():
            # Workers touch a batch's keys through indexes. A young run's rows are not in the planner's
            # statistics yet, and a whole-table scan per batch would slow every batch as the tables grow.
            conn.execute("SET LOCAL enable_seqscan = off")
            if self._sent_unrecorded:  # the cursor of the last send rides in this transaction
                self._move_cursor(conn)
            yield
            last_seq = write_outbox(conn, self._outbox)
            failpoint("before_db_commit")
        failpoint("after_db_commit")
        if self._outbox:
            self._deliver([(topic, key, headers, value) for _, topic, key, headers, value in self._outbox], last_seq)
            self._outbox.clear()

    def _send_outbox(self, conn: psycopg.Connection) -> None:
        """Send the outbox past the cursor in order (what a previous process committed but did not get
        confirmed); move the cursor only over what the broker confirmed."""
        rows = conn.execute(  # a primary-key range: the outbox only grows
            "SELECT seq, topic, record_key, headers, value FROM worker_outbox WHERE consumer_group = %s AND seq > %s"
            " ORDER BY seq",
            (self.group_id, outbox_sent(conn, self.group_id)),
        ).fetchall()
        if rows:
            self._deliver([(t, k, hs, v) for _, t, k, hs, v in rows], rows[-1][0])
            self._settle(wait_s=PUBLISH_TIMEOUT_S)
        self._move_cursor(conn)

    def _deliver(self, rows: list[tuple], last_seq: int) -> None:
        """Produce (topic, key, headers, value) rows in order without waiting for the broker: the outbox up to
        `last_seq` counts as sent once every row's delivery is confirmed (`_settle`, from the loop's polls),
        while the next batch is already being processed. The cursor moves in a later transaction (or when
        idle, or at stop): a crash before that sends them again, byte for byte, and consumers dedupe on the
        event id. An unconfirmed delivery stops the worker; the outbox keeps the rows for its successor."""
        if self._producer is None:
            self._producer = bus.producer(self.h, **self.producer_overrides)
        records = [
            (
                t,
                bytes(v),
                bytes(k) if k is not None else None,
                [tuple(x) for x in (orjson.loads(hs) if isinstance(hs, str) else hs)],
            )
            for t, k, hs, v in rows
        ]
        pending = [last_seq, len(records)]
        self._inflight.append(pending)

        def report(_: int):
            def on_delivery(err, _msg) -> None:
                if err is not None:
                    self._publish_error = str(err)
                pending[1] -= 1

            return on_delivery

        produced = bus.produce_all(self._producer, records, report, time.monotonic() + PUBLISH_TIMEOUT_S)
        if produced < len(records):
            raise WorkerError(f"{self.component}: the producer's queue stayed full; the outbox keeps the rest")
        self._producer.poll(0)
        self._settle()
        self.stats.counters["published"] += len(records)

    def _settle(self, wait_s: float = 0.0) -> None:
        """Serve delivery reports (waiting up to `wait_s` for all of them); move the sent mark over the
        batches whose every record the broker confirmed, in order."""
        if self._producer is None:
            return
        if wait_s:
            self._producer.flush(wait_s)
        else:
            self._producer.poll(0)
        if self._publish_error:
            raise WorkerError(f"{self.component}: publish not confirmed ({self._publish_error}); the outbox keeps it")
        while self._inflight and self._inflight[0][1] <= 0:
            self._sent_unrecorded = max(self._sent_unrecorded, self._inflight.popleft()[0])

    def _move_cursor(self, conn: psycopg.Connection) -> None:
        if self._sent_unrecorded:
            conn.execute(
                "INSERT INTO worker_outbox_cursor (consumer_group, sent_seq) VALUES (%s, %s)"
                " ON CONFLICT (consumer_group) DO UPDATE SET sent_seq = EXCLUDED.sent_seq,"
                " updated_at = now() WHERE worker_outbox_cursor.sent_seq < EXCLUDED.sent_seq",
                (self.group_id, self._sent_unrecorded),
            )
            self._sent_unrecorded = 0

    # --- health -------------------------------------------------------------------------------
    _last_beat: float = 0.0

    def beats(self, conn: psycopg.Connection) -> list[Beat]:
        """This process's heartbeats (one per component it runs: a chaining worker hosts several)."""
        counters = self.stats.snapshot()
        state = self._health
        if state == "GREEN":
            problem, extra = self.health(conn)
            counters.update(extra)
            if problem:
                state, counters["amber_reason"] = "AMBER", problem
        return [
            Beat(
                self.component,
                self.pack_id,
                self.phase_id,
                self.run_id,
                self.group_id,
                state,
                counters,
                self.stats.started_at_utc,
            )
        ]

    def _beat(self, conn: psycopg.Connection, force: bool = False) -> None:
        """Heartbeat rows and health/metrics files every interval: handed to the writer thread while the
        worker runs; written here, synchronously, when forced (the first beat and the last)."""
        now = time.monotonic()
        if not force and now - self._last_beat < WorkerSettings.load(self.h).heartbeat_interval_seconds:
            return
        self._last_beat = now
        beats = self.beats(conn)
        self._write_probe(beats)
        if force or self._beat_writer is None:
            write_beats(self.h, conn, self.store, beats)
        else:
            self._beat_writer.submit(beats)

    def _write_probe(self, beats: list[Beat]) -> None:
        """The local probe file the Kubernetes exec probe reads (`probe.py`); a failed write is logged, since
        a probe that sees a stale file restarts the pod, which is the right outcome for a full disk too."""
        state = next((b.state for b in beats if b.component == self.component), self._health)
        try:
            write_probe(self.component, self.run_id, state)
        except OSError as exc:
            log.warning("probe file not written: %s", exc)


def worker_main(workers: tuple[type[Worker], ...], prog: str, argv: list[str] | None = None) -> int:
    """`python -m <plane> <component>`: run one worker of `workers` for the run in REQUIRED_PLATFORM_RUN_ID
    (what the supervisor starts; a K8s Deployment runs the same command)."""
    h = handles()
    by_component = {h.get(c.identity.component_key): c for c in workers}
    env_key = h.get("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")
    parser = argparse.ArgumentParser(prog=prog, description="Run one worker.")
    parser.add_argument("component", choices=list(by_component))
    parser.add_argument("--run-id", help=f"the run this worker serves (default: ${env_key}; required)")
    parser.add_argument("--group", help="consumer group override (benchmarks; default: the worker's handle)")
    parser.add_argument(
        "--until-idle",
        type=float,
        metavar="SECONDS",
        help="exit after SECONDS with nothing to read (default: run until SIGTERM)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        worker = by_component[args.component](h, required_run_id(h, args.run_id), group_id=args.group)
        stats = worker.run(until_idle_s=args.until_idle)
    except WorkerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log.info("%s stopped: %s", args.component, stats.snapshot())
    return 0

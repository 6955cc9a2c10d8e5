"""The decision processor: CSFB → OFP → DL → DF chained in one process over the traffic, context and label
topics (the operator chaining of Kafka Streams and Flink).

Why: a decision used to wait for four consumer groups, each polling Postgres for the others' checkpoints;
here the hand-off between the components is a function call over keyed state in memory
(`keyed_state.py`), and a decision is on the bus milliseconds after its payment is.

A micro-batch closes `batch_linger_ms` after its first record or at `batch_max_records`. For each batch:
CSFB updates the join frames and bindings, OFP the windows (recomputing the vectors a late record
touches), then the traffic events whose flow context is complete are judged — DL sets the posture from
them, DF decides under it. An event whose context has not arrived is parked (not its batch) until it
arrives, or every context topic has moved past the event's time by `context_slack_ms`, or `park_max_ms`
of wall time pass; then it is decided without it, with the reason.

The laws hold as in every worker (substrate/worker.py): one Postgres transaction per micro-batch holds
the decisions (with their vector and the watermark of applied offsets, for P13's parity), the vectors
and bindings P8/P9 judge, the posture events, the outbox rows and the consumed offsets; the Kafka commit
follows it; a replayed event re-sends its stored decision. The state is a pure function of the applied
records, so the input topics are its changelog: a restart rebuilds it from the newest snapshot (taken
every `snapshot_interval_s` by a forked child, with the offsets it covers) and the records between the
snapshot and the checkpoint — or from the log start when there is no usable snapshot. A kill -9 at any
point loses nothing and decides nothing twice. Each hosted component keeps its identity: its own
heartbeat, health file and counters.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import zlib
from bisect import insort
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from confluent_kafka import KafkaException, TopicPartition

from fp_platform.contracts import components
from fp_platform.contracts.features import FEATURE_VERSION
from fp_platform.handles import Handles
from fp_platform.rtdl import bundles
from fp_platform.rtdl.context_binding import Csfb
from fp_platform.rtdl.decision_context import EventContext
from fp_platform.rtdl.decision_fabric import DecisionFabric
from fp_platform.rtdl.degrade_ladder import DegradeLadder
from fp_platform.rtdl.keyed_state import PARTS, KeyedState, Tx, ts_us
from fp_platform.rtdl.online_features import Ofp
from fp_platform.rtdl.policy import load_policy
from fp_platform.substrate import bus
from fp_platform.substrate.heartbeat import Beat
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.substrate.worker import BusRecord, Worker, WorkerError, failpoint, run_of

log = logging.getLogger("fp_platform.rtdl.processor")

TRAFFIC, ENTITIES, LABEL = "traffic.fraud", "context.arrival_entities", "labels.assertion"
SNAPSHOT_FORMAT = "fp.decision_processor.snapshot.v1"
SNAPSHOT_INTERVAL_ENV = "FP_DECISION_PROCESSOR_SNAPSHOT_INTERVAL_S"  # overrides the policy's (drills, benches)
SNAPSHOT_CHILD_MAX_S = 300  # a snapshot child still writing after this is killed (the previous snapshot stays)


def _part_values(r: BusRecord, ts: int, cols: dict[str, str]) -> dict[str, Any]:
    out = {}
    for col, src in cols.items():
        out[col] = r.envelope["event_id"] if src == "@event_id" else ts if src == "@ts" else r.payload[src]
    return out


def _tx(r: BusRecord, ts: int) -> Tx:
    p = r.payload
    return Tx(
        r.envelope["event_id"],
        p["transaction_id"],
        p["flow_id"],
        p["customer_id"],
        p["terminal_id"],
        float(p["amount"]),
        ts,
        r.origin,
    )


class DecisionProcessor(Worker):
    identity = components.DECISION_PROCESSOR
    consumer_overrides = {"fetch.wait.max.ms": 5}  # a record waits on the broker at most this long
    producer_overrides = {"linger.ms": 1}  # decisions leave within a millisecond of their batch's commit

    def __init__(
        self, h: Handles, platform_run_id: str, *, group_id: str | None = None, store: S3ObjectStore | None = None
    ) -> None:
        super().__init__(h, platform_run_id, group_id=group_id, store=store)
        self.policy = load_policy(h)
        cfg = self.policy.processor
        self.batch_max = int(cfg["batch_max_records"])
        self.linger_s = cfg["batch_linger_ms"] / 1000
        self.park_max_s = cfg["park_max_ms"] / 1000
        self.slack_us = int(cfg["context_slack_ms"] * 1000)
        self.grace_s = cfg["context_grace_ms"] / 1000
        self.snapshot_every_s = float(os.environ.get(SNAPSHOT_INTERVAL_ENV, cfg["snapshot_interval_s"]))
        self.state = KeyedState()
        self.csfb, self.ofp = Csfb(platform_run_id), Ofp(platform_run_id)
        self.dl = DegradeLadder(platform_run_id, self.policy)
        self.df = DecisionFabric(h, platform_run_id, self.policy, self.store)
        self.decided: set[str] = set()
        # Pending events: event -> (record, intake wall time), in intake order, and (ts, event) sorted by time.
        self.pending: dict[str, tuple[BusRecord, float]] = {}
        self._by_ts: list[tuple[int, str]] = []
        self.applied: dict[tuple[str, int], int] = {}  # next offset per partition the state covers
        self.part_ts: dict[tuple[str, int], int] = {}  # latest event time of the run seen per partition
        self.part_bus_ms: dict[tuple[str, int], int] = {}  # latest bus time (Kafka timestamp) seen per partition
        self._part_seen: dict[tuple[str, int], float] = {}  # when a partition last delivered (monotonic)
        self._wm_partitions: set[tuple[str, int]] = set()  # traffic and context partitions
        self._started = time.monotonic()
        self._consumer = None  # the worker's consumer: its positions and cached high watermarks tell idle from behind
        self._ofp_topics = {h.topic(k).name for k in Ofp.identity.topic_keys}
        self._wm_topics = {
            h.topic(k).name
            for k in (
                "FP_BUS_TRAFFIC_FRAUD_V1",
                "FP_BUS_CONTEXT_ARRIVAL_EVENTS_V1",
                "FP_BUS_CONTEXT_ARRIVAL_ENTITIES_V1",
                "FP_BUS_CONTEXT_FLOW_ANCHOR_FRAUD_V1",
            )
        }
        self._intake_wall = time.time()
        self._snapshot_at = time.monotonic()
        self._snapshot_child: int | None = None

    # --- the micro-batch ------------------------------------------------------------------------------
    def _fill(self, consumer) -> list:
        """The first record (waiting at most until the next parked deadline), then whatever arrives within the
        linger, up to the size cap: a batch closes a few milliseconds after its first record."""
        self._consumer = consumer
        first = consumer.poll(min(0.1, self.grace_s) if self.pending else 0.1)
        if first is None:
            return []
        self._intake_wall = time.time()
        msgs = [m for m in (first, *consumer.consume(self.batch_max - 1, timeout=self.linger_s)) if not self._is_eof(m)]
        now = time.monotonic()
        for m in msgs:
            self._part_seen[(m.topic(), m.partition())] = now
        return msgs

    def apply(self, conn: psycopg.Connection, records: list[BusRecord]) -> None:
        for key, nxt in self.batch_next_offsets.items():
            self.applied[key] = max(self.applied.get(key, 0), nxt)
        t0 = time.perf_counter()
        replayed = []
        for r in records:
            if self._take(r, live=True):
                replayed.append(r.envelope["event_id"])
        if replayed:
            self.df.resend(conn, replayed, self.emit)
        self.stats.times["keyed_state"] += time.perf_counter() - t0
        self._judge(conn, self._due())

    def _take(self, r: BusRecord, live: bool) -> bool:
        """Apply one record to the keyed state (and, live, to the components' pending writes). True for a
        traffic event decided before (a replay: its stored decision is sent again)."""
        cls = r.envelope["event_class"]
        key, ts = (r.topic, r.partition), ts_us(r.ts)
        if key in self._wm_partitions:
            self.part_ts[key] = max(self.part_ts.get(key, 0), ts)
            self.part_bus_ms[key] = max(self.part_bus_ms.get(key, 0), r.bus_ts_ms)
        if cls == TRAFFIC:
            tx = _tx(r, ts)
            known = tx.event_id in self.state.events
            dirty = self.state.add_traffic(tx)
            if live:  # the windows it reaches, whether or not its own event was decided before (a replay)
                self.ofp.dirty.update(dirty)
            if tx.event_id in self.decided:
                return live
            if not known:
                self._park(r, tx)
                if live:
                    self.ofp.new.add(tx.event_id)
                    self.csfb.on_traffic(tx)
        elif cls in PARTS:
            values = _part_values(r, ts, PARTS[cls])
            flow = r.payload["flow_id"]
            if cls == ENTITIES:
                dirty = self.state.add_sighting(
                    flow, values["card_id"], values["device_id"], values["ip"], values["entities_ts"]
                )
                if live:
                    self.ofp.dirty.update(dirty)
            events = self.state.add_part(cls, flow, values)
            if live:
                self.csfb.on_part(self.state, events)
        elif cls == LABEL:
            p = r.payload
            dirty = self.state.add_label(p["transaction_id"], p["label"] == "FRAUD", ts_us(p["observed_at"]))
            if live:
                self.ofp.dirty.update(dirty)
                self.ofp.on_label(
                    p["transaction_id"], p["label"] == "FRAUD", p["effective_at"], p["observed_at"], r.origin
                )
        return False

    def _park(self, r: BusRecord, tx: Tx) -> None:
        self.pending[tx.event_id] = (r, self._intake_wall)
        insort(self._by_ts, (tx.ts, tx.event_id))

    def watermarks(self) -> tuple[float, float]:
        """(event time, bus time in ms) every live traffic and context partition has passed: Flink's watermark
        with idleness. A partition that has delivered nothing for park_max_ms and has nothing more on the broker
        is idle and holds nothing back (one merely not fetched yet while the processor works through a backlog
        is behind, not idle: counting it idle would decide events before their context); with every partition
        idle, everything has arrived that will."""
        now = time.monotonic()
        quiet = {k for k in self._wm_partitions if now - self._part_seen.get(k, self._started) >= self.park_max_s}
        live = (self._wm_partitions - quiet) | self._behind(quiet)
        if not live:
            return float("inf"), float("inf")
        return min(self.part_ts.get(k, -1) for k in live), min(self.part_bus_ms.get(k, -1) for k in live)

    def _behind(self, keys: set[tuple[str, int]]) -> set[tuple[str, int]]:
        """The partitions among `keys` that hold records the consumer has not delivered yet: its position (where
        it started, before it delivered any) short of the high watermark — the one its last fetch reported, or
        the broker's when no fetch has reported one yet. Records of any run count: the position passes other
        runs' records too. A partition the broker cannot answer for is not behind (idleness by time decides)."""
        if not keys or self._consumer is None:
            return set()
        out = set()
        for tp in self._consumer.position([TopicPartition(t, p) for t, p in keys]):
            key = (tp.topic, tp.partition)
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:
                try:
                    _, high = self._consumer.get_watermark_offsets(tp, timeout=1.0)
                except KafkaException:
                    continue
            if (tp.offset if tp.offset >= 0 else self.assigned.get(key, 0)) < high:
                out.add(key)
        return out

    def _due(self) -> list[str]:
        """Pending events to judge now, in event time: every partition has passed the event's time (so the
        vector sees every record before it, whatever order the partitions were read in) and its flow's
        context is complete; or the partitions have passed it by context_slack_ms in event time and by
        context_grace_ms in bus time (IG's concurrent requests reach the bus out of order, by less than that):
        its context is not coming."""
        wm, bus_wm = self.watermarks()
        grace_ms = self.grace_s * 1000
        due, keep = [], []
        i = 0
        while i < len(self._by_ts) and self._by_ts[i][0] < wm:
            ts, e = self._by_ts[i]
            if self.state.frame_complete(self.state.events[e].flow_id) or (
                ts + self.slack_us < wm and self.pending[e][0].bus_ts_ms + grace_ms < bus_wm
            ):
                due.append(e)
            else:
                keep.append((ts, e))
            i += 1
        if due:
            self._by_ts[:i] = keep
        return list(dict.fromkeys(due))

    def _judge(self, conn: psycopg.Connection, due_ids: list[str]) -> None:
        """CSFB and OFP have applied the batch (their writes go first); DL and DF judge the due events."""
        if self.df.resolve(conn):
            self.dl.set_static(self.df.bundle, self.df.model_problem)
        due = [self.pending[e] for e in due_ids]
        t0 = time.perf_counter()
        self.csfb.write(conn, self.state)
        t1 = time.perf_counter()
        vectors = self.ofp.write(conn, self.state) if self.ofp.holds_writes() else {}
        t2 = time.perf_counter()
        self.stats.times["csfb_write"] += t1 - t0
        self.stats.times["ofp_write"] += t2 - t1
        if not due:
            return
        due.sort(key=lambda x: (x[0].ts, x[0].origin))
        watermark = {}
        for (topic, part), nxt in self.applied.items():
            if topic in self._ofp_topics:
                watermark.setdefault(topic, {})[str(part)] = nxt
        judged = []
        for r, _ in due:
            e = r.envelope["event_id"]
            status, reasons = self.csfb.bindings[e]
            vector = vectors.get(e) or self.state.vector(e)
            judged.append((r, EventContext(status, tuple(reasons), FEATURE_VERSION, vector, watermark)))
        self.dl.observe(conn, [(ctx, r.origin) for r, ctx in judged])
        now_wall = time.time()
        timing = {
            r.envelope["event_id"]: (
                datetime.fromtimestamp(r.bus_ts_ms / 1000, UTC) if r.bus_ts_ms > 0 else None,
                datetime.fromtimestamp(intake, UTC),
                0.0 if intake == self._intake_wall else (now_wall - intake) * 1000,
            )
            for r, intake in due
        }  # parked: taken in by an earlier batch than this one
        t3 = time.perf_counter()
        self.df.decide(
            judged, self.dl.posture, self.dl.posture_seq, self.emit, datetime.fromtimestamp(now_wall, UTC), timing
        )
        t4 = time.perf_counter()
        self.df.write(conn)
        self.stats.times["judge_vectors_dl"] += t3 - t2
        self.stats.times["df_decide"] += t4 - t3
        self.stats.times["df_write"] += time.perf_counter() - t4
        for r, _ in due:
            e = r.envelope["event_id"]
            del self.pending[e]
            self.decided.add(e)
        self.stats.counters["decided_after_park"] += sum(1 for *_, ms in timing.values() if ms > 0)

    # --- start: the state from the newest snapshot and the log ----------------------------------------
    def on_start(self, conn: psycopg.Connection) -> None:
        t0 = time.monotonic()
        bundles.ensure_bootstrap(conn, self.h, self.policy)
        saved = {
            (t, p): n
            for t, p, n in conn.execute(
                "SELECT topic, kafka_partition, next_offset FROM worker_offsets WHERE consumer_group = %s",
                (self.group_id,),
            )
            if t in self.topics
        }
        self.decided = {
            e for (e,) in conn.execute("SELECT event_id FROM df_decisions WHERE platform_run_id = %s", (self.run_id,))
        }
        start = self._restore_snapshot(saved)
        replayed = self._replay(start, saved)
        self.applied = dict(saved)
        restored, self.pending, self._by_ts = self.pending, {}, []
        for e, (r, _) in restored.items():  # from the snapshot and the replay: those not decided since
            if e not in self.decided:
                self._park(r, self.state.events[e])
        self.csfb.restore(self.state)
        self.dl.restore(conn)
        self.df.resolve(conn)
        self.dl.set_static(self.df.bundle, self.df.model_problem)
        with conn.transaction():
            self.dl.judge(conn, None, force=self.dl.posture is None)
        self.stats.counters.update(
            {
                "restore_s": round(time.monotonic() - t0, 3),
                "restore_replayed": replayed,
                "restore_pending": len(self.pending),
                "restore_events": len(self.state.events),
            }
        )
        log.info(
            "%s: state of %s traffic events restored in %.2fs (%s records replayed, %s pending)",
            self.component,
            len(self.state.events),
            time.monotonic() - t0,
            replayed,
            len(self.pending),
        )

    def _replay(
        self, start: dict[tuple[str, int], int], end: dict[tuple[str, int], int], idle_timeout_s: float = 30.0
    ) -> int:
        """Apply the run's records in [start, end) of every partition to the state (no writes: their effects are
        in the database already). One assignment over every partition, read until each reaches its end."""
        run = self.run_id.encode()
        n = 0
        scan = bus.scan_consumer(self.h)
        try:
            self._wm_partitions = {(t, p) for t in self._wm_topics for p in bus.partitions(scan, t)}
            todo = {k: stop for k, stop in end.items() if start.get(k, 0) < stop}
            if not todo:
                return 0
            scan.assign([TopicPartition(t, p, start.get((t, p), 0)) for t, p in todo])
            idle_since = time.monotonic()
            while todo:
                msgs = scan.consume(1000, timeout=0.05)
                if not msgs and time.monotonic() - idle_since > idle_timeout_s:
                    raise WorkerError(f"{self.component}: replay stalled short of the checkpoint on {sorted(todo)}")
                for m in msgs:
                    if m.error() is not None:
                        continue  # partition EOF: the checkpoint says more is there; keep reading
                    idle_since = time.monotonic()
                    key = (m.topic(), m.partition())
                    stop = todo.get(key)
                    if stop is None or m.offset() >= stop:
                        continue
                    if m.offset() >= stop - 1:
                        del todo[key]
                    if run_of(m.headers()) == run:
                        record = BusRecord(
                            key[0], key[1], m.offset(), orjson.loads(m.value()), m.value(), m.timestamp()[1]
                        )
                        self._take(record, live=False)
                        n += 1
        finally:
            scan.close()
        return n

    def _restore_snapshot(self, saved: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        """Load the newest snapshot when it is of this run and no checkpoint is behind it; the offsets it covers
        ({} without one: the state is rebuilt from the log start)."""
        bucket = self.h.get("S3_ARCHIVE_BUCKET")
        latest = self.h.pattern("DECISION_PROCESSOR_SNAPSHOT_LATEST_PATTERN", platform_run_id=self.run_id)
        if not self.store.exists(bucket, latest):
            return {}
        manifest = orjson.loads(self.store.get(bucket, latest))
        offsets = {(t, p): n for t, p, n in manifest["offsets"]}
        behind = [k for k, n in offsets.items() if saved.get(k, 0) < n]
        if manifest.get("format") != SNAPSHOT_FORMAT or manifest.get("consumer_group") != self.group_id or behind:
            log.warning(
                "%s: snapshot %s not usable (checkpoint behind it on %s); rebuilding from the log",
                self.component,
                manifest.get("key"),
                behind,
            )
            self.stats.counters["snapshots_refused"] += 1
            return {}
        doc = orjson.loads(zlib.decompress(self.store.get(bucket, manifest["key"])))
        self.state = KeyedState.from_doc(doc["state"])
        self.part_ts = {(t, p): ts for t, p, ts in doc["part_ts"]}
        self.part_bus_ms = {(t, p): ms for t, p, ms in doc["part_bus_ms"]}
        for topic, part, offset, value, bus_ts in doc["pending"]:
            r = BusRecord(topic, part, offset, orjson.loads(value), value.encode(), bus_ts)
            self.pending[r.envelope["event_id"]] = (r, time.time())
        self.stats.counters["snapshot_restored_seq"] = manifest["seq"]
        return offsets

    # --- snapshots ------------------------------------------------------------------------------------
    def _batch(self, conn: psycopg.Connection, consumer, msgs: list) -> None:
        super()._batch(conn, consumer, msgs)
        self._maybe_snapshot()

    def on_idle(self, conn: psycopg.Connection) -> None:
        """Parked events whose deadline passed while nothing arrived are decided without their context."""
        self._intake_wall = time.time()  # nothing is taken in now: every event decided here was parked
        due = self._due() if self.pending else []
        if due:
            with self.unit_of_work(conn):
                self._judge(conn, due)
        self._maybe_snapshot()

    def _maybe_snapshot(self) -> None:
        """Every snapshot_interval_s, a forked child writes the state as of the last committed batch (the
        parent goes on deciding; the child's memory is a copy-on-write image of that moment)."""
        if self._snapshot_child is not None:
            pid, status = os.waitpid(self._snapshot_child, os.WNOHANG)
            if pid == 0:
                return
            self._snapshot_child = None
            self.stats.counters["snapshots_written" if status == 0 else "snapshots_failed"] += 1
        if time.monotonic() - self._snapshot_at < self.snapshot_every_s or not self.state.events:
            return
        self._snapshot_at = time.monotonic()
        seq = int(time.time() * 1000)
        pid = os.fork()
        if pid == 0:  # the child: no logging, no shared clients; it leaves by os._exit
            signal.alarm(SNAPSHOT_CHILD_MAX_S)  # a child stuck on a lock another thread held at the fork ends
            code = 1
            try:
                self.write_snapshot(S3ObjectStore(self.h), seq)
                code = 0
            finally:
                os._exit(code)
        self._snapshot_child = pid
        failpoint("snapshot_forked")  # a crash while the child writes: the snapshot before it stays the newest

    def write_snapshot(self, store: S3ObjectStore, seq: int) -> str:
        """The state, the pending events and the offsets they cover; then `latest` names it (a snapshot
        is visible only once complete)."""
        bucket = self.h.get("S3_ARCHIVE_BUCKET")
        key = self.h.pattern(
            "DECISION_PROCESSOR_SNAPSHOT_PATTERN", platform_run_id=self.run_id, snapshot_id=f"{seq:015d}"
        )
        doc = {
            "state": self.state.to_doc(),
            "part_ts": [[t, p, ts] for (t, p), ts in self.part_ts.items()],
            "part_bus_ms": [[t, p, ms] for (t, p), ms in self.part_bus_ms.items()],
            "pending": [
                [r.topic, r.partition, r.offset, r.value.decode(), r.bus_ts_ms] for r, _ in self.pending.values()
            ],
        }
        store.put(bucket, key, zlib.compress(orjson.dumps(doc), 1), write_once=False)
        manifest = {
            "format": SNAPSHOT_FORMAT,
            "seq": seq,
            "key": key,
            "consumer_group": self.group_id,
            "platform_run_id": self.run_id,
            "traffic_events": len(self.state.events),
            "offsets": [[t, p, n] for (t, p), n in sorted(self.applied.items())],
        }
        store.put(
            bucket,
            self.h.pattern("DECISION_PROCESSOR_SNAPSHOT_LATEST_PATTERN", platform_run_id=self.run_id),
            orjson.dumps(manifest),
            write_once=False,
        )
        return key

    # --- identity -------------------------------------------------------------------------------------
    def beats(self, conn: psycopg.Connection) -> list[Beat]:
        """The processor's heartbeat and one per hosted component (its own counters and health file)."""
        own = super().beats(conn)
        self.stats.counters["pending"] = len(self.pending)
        base = own[0]
        hosted = []
        for comp in (self.csfb, self.ofp, self.dl, self.df):
            counters = {**dict(comp.counters), "hosted_by": self.component, "pid": os.getpid()}
            if comp is self.dl:
                counters.update(self.dl.health())
            hosted.append(
                Beat(
                    self.h.get(comp.identity.component_key),
                    self.h.get(comp.identity.pack_key),
                    comp.identity.phase_id,
                    self.run_id,
                    self.group_id,
                    base.state,
                    counters,
                    base.started_at_utc,
                )
            )
        return own + hosted

"""World Stream Producer (P6): READY → stream view → IG, in world-time order, resumable.

WSP reads only the stream view the READY points at, merges the outputs by (ts_utc, context before
traffic), and posts batches to IG with bounded in-flight requests. Transient failures (connection,
timeout, 5xx, 429) are retried with the same event ids and backoff; a non-retryable answer (4xx or
a quarantined event) stops the stream and is recorded. Progress is checkpointed in Postgres as the
contiguous prefix of acknowledged batches, so a crashed stream resumes where it was.
"""

from __future__ import annotations

import hashlib
import heapq
import io
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import numpy as np
import orjson
import psycopg
import pyarrow.parquet as pq
from confluent_kafka import Consumer

from fp_platform.contracts.canonical import digest
from fp_platform.contracts.envelope import OUTPUT_EVENT_CLASSES, topic_key_for
from fp_platform.contracts.evidence import EvidenceWriter, utc_now_iso
from fp_platform.contracts.phases import P6
from fp_platform.control.settings import WspSettings
from fp_platform.handles import Handles
from fp_platform.substrate import bus
from fp_platform.substrate.job_channel import Log
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.substrate.secrets import get_secret

READY_CLASS = "control.ready"
NOT_PAYLOAD = ("event_id", "ts_utc", "source_file", "source_row")
# Within one instant, context precedes the transaction it belongs to.
OUTPUT_RANK = {
    "arrival_events": 0,
    "arrival_entities": 1,
    "flow_anchor_fraud": 2,
    "flow_anchor_baseline": 2,
    "traffic_fraud": 3,
    "traffic_baseline": 3,
}
DRILL_DELAY_EVENTS = 1000  # a drill's extra copy is sent this many events later, in another request


class WspStopped(RuntimeError):
    """A non-retryable failure stopped the stream (recorded in the summary)."""


@dataclass(frozen=True)
class WspOptions:
    max_events_per_output: int | None = None
    speedup: float | None = None  # world seconds per wall second; None = as fast as IG admits
    drill_duplicates: float = 0.0
    drill_mismatch: float = 0.0
    drill_drop_context: float = 0.0
    restart: bool = False  # ignore an unfinished session's checkpoint

    def stream_digest(self, run_id: str, scenario_run_id: str) -> str:
        shape = {k: v for k, v in asdict(self).items() if k not in ("speedup", "restart")}
        return digest([run_id, scenario_run_id, shape])


def _share(ident: str, salt: str) -> float:
    """Deterministic [0, 1) draw per id, so a drill selects the same events on every run."""
    return int.from_bytes(hashlib.sha256(f"{salt}|{ident}".encode()).digest()[:4], "big") / 2**32


# --- READY ---------------------------------------------------------------------------------------
def find_ready(h: Handles, consumer: Consumer, run_id: str, log: Log) -> dict[str, Any]:
    """The READY for `run_id` on the control topic; READYs of other runs and repeats are skipped."""
    topic = h.topic(topic_key_for(READY_CLASS)).name
    ready, skipped = None, Counter()
    for p in bus.partitions(consumer, topic):
        for msg in bus.read_partition(consumer, topic, p):
            doc = orjson.loads(msg.value())
            if doc.get("event_class") != READY_CLASS:
                continue
            if doc["pins"].get("platform_run_id") != run_id:
                skipped["other_run"] += 1
            elif ready is not None:
                skipped["duplicate"] += 1
                log(f"WSP READY duplicate skipped at {topic}[{p}]@{msg.offset()}")
            else:
                ready = {"envelope": doc, "topic": topic, "partition": p, "offset": msg.offset()}
    if ready is None:
        raise WspStopped(f"no READY for {run_id} on {topic}: SR must pass first (no READY, no stream)")
    return {**ready, "skipped": dict(skipped)}


def record_ready(conn: psycopg.Connection, ready: dict[str, Any]) -> None:
    env = ready["envelope"]
    conn.execute(
        "INSERT INTO wsp_ready_consumed (platform_run_id, scenario_run_id, kafka_partition, kafka_offset)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (env["pins"]["platform_run_id"], env["pins"]["scenario_run_id"], ready["partition"], ready["offset"]),
    )


# --- the stream ----------------------------------------------------------------------------------
@dataclass
class Source:
    output_id: str
    keys: list[str]
    rows: int


def stream_sources(h: Handles, store: S3ObjectStore, ready: dict[str, Any]) -> dict[str, Source]:
    """Each output's stream-view shards, from its receipt, checked against READY's fingerprints."""
    env = ready["envelope"]
    run_id = env["pins"]["platform_run_id"]
    bucket = h.get("S3_ORACLE_BUCKET")
    sources = {}
    for output_id in env["payload"]["output_ids"]:
        prefix = h.pattern("S3_STREAM_VIEW_PREFIX_PATTERN", platform_run_id=run_id, output_id=output_id)
        receipt = orjson.loads(
            store.get(bucket, h.pattern("S3_STREAM_SORT_RECEIPT_PATTERN", platform_run_id=run_id, output_id=output_id))
        )
        if receipt["output_fingerprint"] != env["payload"]["stream_view_fingerprints"][output_id]:
            raise WspStopped(f"{output_id}: stream view changed since READY (fingerprint differs)")
        sources[output_id] = Source(
            output_id, [prefix + p["file"] for p in receipt["parts"]], receipt["counts"]["output_rows"]
        )
    return sources


def _rows(store: S3ObjectStore, bucket: str, source: Source, limit: int | None) -> Iterator[tuple]:
    """(ts_ms, rank, ts_iso, event_id, payload) of one output in stream-view order."""
    rank, sent = OUTPUT_RANK[source.output_id], 0
    for key in source.keys:
        table = pq.read_table(io.BytesIO(store.get(bucket, key)))
        if limit is not None:
            table = table.slice(0, limit - sent)
        ts = table.column("ts_utc").to_numpy().astype("datetime64[ms]")
        iso = np.char.add(np.datetime_as_string(ts, unit="ms"), "Z").tolist()
        ms = ts.astype(np.int64).tolist()
        ids = table.column("event_id").to_pylist()
        payloads = table.drop_columns([c for c in NOT_PAYLOAD if c in table.column_names]).to_pylist()
        for i in range(table.num_rows):
            yield ms[i], rank, iso[i], ids[i], payloads[i]
        sent += table.num_rows
        if limit is not None and sent >= limit:
            return


def _tagged(output_id: str, rows: Iterator[tuple]) -> Iterator[tuple]:
    for row in rows:
        yield row[0], row[1], output_id, row


@dataclass
class DrillLog:
    """What the stream drills injected, by event: what the reporter (P11) checks the outcome against."""

    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (event_class, event_id) sent twice
    mismatched: list[tuple[str, str]] = field(default_factory=list)  # re-sent with a changed payload
    dropped_flows: set[str] = field(default_factory=set)  # flows whose context events were withheld
    by_output: dict[str, Counter] = field(default_factory=dict)  # copies sent / context withheld, per output

    def count(self, output_id: str, what: str) -> None:
        self.by_output.setdefault(output_id, Counter())[what] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "duplicates": {"injected": len(self.duplicates), "events": [list(e) for e in self.duplicates]},
            "payload_mismatch": {"injected": len(self.mismatched), "events": [list(e) for e in self.mismatched]},
            "missing_context": {"injected": len(self.dropped_flows), "flows": sorted(self.dropped_flows)},
            "by_output": {o: dict(c) for o, c in sorted(self.by_output.items())},
        }


def merged_events(
    h: Handles,
    store: S3ObjectStore,
    sources: dict[str, Source],
    pins: dict[str, str],
    options: WspOptions,
    injected: DrillLog | None = None,
) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(output_id, ts_ms, envelope) for every event, in world-time order, with drills applied (and logged)."""
    injected = injected if injected is not None else DrillLog()
    bucket = h.get("S3_ORACLE_BUCKET")
    streams = [_tagged(o, _rows(store, bucket, s, options.max_events_per_output)) for o, s in sorted(sources.items())]
    delayed: deque[tuple[int, str, int, dict]] = deque()
    producer = h.get("COMPONENT_ID_WSP")
    for n, (ts_ms, _, output_id, row) in enumerate(heapq.merge(*streams, key=lambda x: (x[0], x[1]))):
        while delayed and delayed[0][0] <= n:
            _, o, t, env = delayed.popleft()
            yield o, t, env
        _, rank, iso, event_id, payload = row
        if rank < 3 and options.drill_drop_context and _share(payload["flow_id"], "drop") < options.drill_drop_context:
            injected.dropped_flows.add(payload["flow_id"])
            injected.count(output_id, "context_withheld")
            continue
        event_class = OUTPUT_EVENT_CLASSES[output_id]
        env = {
            "event_id": event_id,
            "event_class": event_class,
            "schema_version": "v1",
            "ts_utc": iso,
            "pins": pins,
            "producer": producer,
            "payload": payload,
        }
        yield output_id, ts_ms, env
        if options.drill_duplicates and _share(event_id, "dup") < options.drill_duplicates:
            injected.duplicates.append((event_class, event_id))
            injected.count(output_id, "duplicate_copies")
            delayed.append((n + DRILL_DELAY_EVENTS, output_id, ts_ms, env))
        if options.drill_mismatch and _share(event_id, "mismatch") < options.drill_mismatch:
            injected.mismatched.append((event_class, event_id))
            injected.count(output_id, "mismatch_copies")
            delayed.append((n + DRILL_DELAY_EVENTS, output_id, ts_ms, {**env, "payload": _mutated(payload)}))
    yield from ((o, t, env) for _, o, t, env in delayed)


def _mutated(payload: dict[str, Any]) -> dict[str, Any]:
    """Same event id, different content: the payload-mismatch drill."""
    if isinstance(payload.get("amount"), float):
        return {**payload, "amount": round(payload["amount"] + 0.01, 2)}
    return {**payload, "flow_id": payload["flow_id"] + "~"}


# --- sending -------------------------------------------------------------------------------------
@dataclass
class SendStats:
    attempted_requests: int = 0
    retries: int = 0
    retried_events: int = 0  # events in re-sent requests: IG may have receipted an attempt WSP timed out on
    nonretryable: list[dict[str, Any]] = field(default_factory=list)
    by_output: dict[str, Counter] = field(default_factory=dict)


class IgClient:
    """Posts batches to IG with retries; the same envelopes (same event ids) on every attempt."""

    def __init__(self, h: Handles, base_url: str | None = None) -> None:
        self.url = (base_url or h.get("IG_BASE_URL")) + h.get("IG_INGEST_PATH")
        self.headers = {
            h.get("IG_AUTH_HEADER_NAME"): get_secret(h, "SSM_IG_API_KEY_PATH"),
            "content-type": "application/json",
        }
        knobs = WspSettings.load(h)
        self.attempts = knobs.retry_max_attempts
        self.backoff_s = knobs.retry_backoff_ms / 1000
        self.backoff_max_s = knobs.retry_backoff_max_ms / 1000
        self.http = httpx.Client(
            timeout=knobs.request_timeout_seconds, limits=httpx.Limits(max_connections=knobs.max_inflight * 2)
        )

    def close(self) -> None:
        self.http.close()

    def send(self, envelopes: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        """(receipts, retries); raises WspStopped on a non-retryable answer or exhausted retries."""
        body = orjson.dumps(envelopes)
        delay, last = self.backoff_s, ""
        for attempt in range(self.attempts):
            try:
                resp = self.http.post(self.url, content=body, headers=self.headers)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 200:
                    return resp.json()["receipts"], attempt
                last = f"HTTP {resp.status_code}: {resp.text[:300]}"
                if resp.status_code == 429:
                    delay = max(delay, float(resp.headers.get("retry-after", delay)))
                elif resp.status_code < 500 and resp.status_code != 408:
                    raise WspStopped(f"non-retryable {last}")
            time.sleep(delay)
            delay = min(delay * 2, self.backoff_max_s)
        raise WspStopped(f"gave up after {self.attempts} attempts: {last}")


# --- checkpoints ---------------------------------------------------------------------------------
def resume_point(conn: psycopg.Connection, run_id: str, stream_digest: str) -> tuple[str, int]:
    """(session_id, position): an unfinished session of the same stream resumes, else a new one."""
    row = conn.execute(
        "SELECT session_id, max(position), bool_or(complete) FROM wsp_checkpoints"
        " WHERE platform_run_id = %s AND stream_digest = %s GROUP BY session_id"
        " ORDER BY max(written_at) DESC LIMIT 1",
        (run_id, stream_digest),
    ).fetchone()
    if row and not row[2]:
        return row[0], row[1]
    return f"wsp_{uuid.uuid4().hex[:16]}", 0


def checkpoint(
    conn: psycopg.Connection, session_id: str, run_id: str, stream_digest: str, position: int, complete: bool = False
) -> None:
    conn.execute(
        "INSERT INTO wsp_checkpoints (session_id, platform_run_id, stream_digest, position, complete)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (session_id, run_id, stream_digest, position, complete),
    )


# --- the whole invocation ------------------------------------------------------------------------
def run_wsp(
    h: Handles,
    store: S3ObjectStore,
    writer: EvidenceWriter,
    conn: psycopg.Connection,
    consumer: Consumer,
    options: WspOptions,
    log: Log,
    ig_url: str | None = None,
) -> dict[str, Any]:
    run_id = writer.platform_run_id
    started = utc_now_iso()
    ready = find_ready(h, consumer, run_id, log)
    record_ready(conn, ready)
    env = ready["envelope"]
    scenario_run_id = env["pins"]["scenario_run_id"]
    log(f"READY found for {run_id} ({scenario_run_id}) at {ready['topic']}[{ready['partition']}]@{ready['offset']}")
    sources = stream_sources(h, store, ready)
    stream_digest = options.stream_digest(run_id, scenario_run_id)
    session_id, resume_at = (
        (f"wsp_{uuid.uuid4().hex[:16]}", 0) if options.restart else resume_point(conn, run_id, stream_digest)
    )
    ready_ref = {k: ready[k] for k in ("topic", "partition", "offset")} | {"offset_kind": "kafka_offset"}
    writer.write_summary(
        h.get("WSP_START_PATH_PATTERN"),
        {
            "scenario_run_id": scenario_run_id,
            "ready": ready_ref,
            "ready_skipped": ready["skipped"],
            "session_id": session_id,
            "resume_at_event": resume_at,
            "options": asdict(options),
            "stream_view": {o: {"shards": s.keys, "rows": s.rows} for o, s in sources.items()},
            "started_at_utc": started,
        },
        phase_id=P6,
    )
    if resume_at:
        log(f"resuming session {session_id} at event {resume_at}")
    pins = {
        "platform_run_id": run_id,
        "scenario_run_id": scenario_run_id,
        "engine_run_id": env["pins"]["engine_run_id"],
    }
    injected = DrillLog()
    stats, stopped = _stream(
        h, conn, sources, pins, options, session_id, stream_digest, resume_at, log, store, ig_url, injected
    )
    summary = {
        "scenario_run_id": scenario_run_id,
        "ready": ready_ref,
        "session_id": session_id,
        "resumed_from_event": resume_at,
        "stream_view_only": True,
        "sources": {o: s.keys for o, s in sources.items()},
        "outputs": {o: dict(c) for o, c in sorted(stats.by_output.items())},
        "totals": {
            "requests": stats.attempted_requests,
            "retries": stats.retries,
            "retried_events": stats.retried_events,
            "nonretryable": len(stats.nonretryable),
            "sent": sum(c["sent"] for c in stats.by_output.values()),
        },
        "nonretryable": stats.nonretryable[:20],
        "stopped": stopped,
        "options": asdict(options),
        "drills_injected": injected.to_dict(),
        "completed": stopped is None,
        "started_at_utc": started,
        "ended_at_utc": utc_now_iso(),
    }
    writer.write_summary(h.get("WSP_SUMMARY_PATH_PATTERN"), summary, phase_id=P6)
    return summary


def _stream(
    h: Handles,
    conn: psycopg.Connection,
    sources: dict[str, Source],
    pins: dict[str, str],
    options: WspOptions,
    session_id: str,
    stream_digest: str,
    resume_at: int,
    log: Log,
    store: S3ObjectStore,
    ig_url: str | None,
    injected: DrillLog,
) -> tuple[SendStats, str | None]:
    knobs = WspSettings.load(h)
    batch_size, inflight, stop_on_nonretryable = knobs.batch_size, knobs.max_inflight, knobs.stop_on_nonretryable
    stats = SendStats(by_output={o: Counter() for o in sources})
    client = IgClient(h, ig_url)
    pending: dict[Future, tuple[int, list[str]]] = {}
    acked: dict[int, int] = {}  # batch start position -> size, until the prefix is contiguous
    position, next_batch, stopped, t0, first_ts = resume_at, resume_at, None, time.monotonic(), None
    total = sum(min(s.rows, options.max_events_per_output or s.rows) for s in sources.values())

    def settle(done: set[Future]) -> None:
        nonlocal position, stopped
        for fut in done:
            start, outputs = pending.pop(fut)
            try:
                receipts, retries = fut.result()
            except WspStopped as exc:
                stats.nonretryable.append({"at_event": start, "error": str(exc)})
                stopped = stopped or str(exc)
                continue
            stats.retries += retries
            stats.retried_events += retries * len(outputs)
            for output_id, r in zip(outputs, receipts, strict=True):
                stats.by_output[output_id][r["decision"]] += 1
                bad = r["decision"] == "QUARANTINE" or (r["decision"] == "ANOMALY" and not options.drill_mismatch)
                if bad:
                    stats.nonretryable.append(
                        {"at_event": start, "event_id": r["event_id"], "decision": r["decision"], "reason": r["reason"]}
                    )
                    if stop_on_nonretryable:
                        stopped = stopped or f"{r['decision']} {r['event_id']}: {r['reason']}"
            acked[start] = len(outputs)
        advanced = position
        while position in acked:
            position += acked.pop(position)
        if position != advanced:
            checkpoint(conn, session_id, pins["platform_run_id"], stream_digest, position)

    with ThreadPoolExecutor(max_workers=inflight, thread_name_prefix="wsp-send") as pool:
        batch: list[tuple[str, int, dict]] = []
        events = merged_events(h, store, sources, pins, options, injected)
        for n, item in enumerate(events):
            if n < resume_at:
                continue
            batch.append(item)
            if len(batch) == batch_size:
                next_batch = _submit(pool, client, pending, batch, next_batch, stats, options, t0, first_ts)
                first_ts = first_ts or batch[0][1]
                batch = []
                while len(pending) >= inflight:
                    settle(wait(pending, return_when=FIRST_COMPLETED).done)
                if stopped:
                    break
                if stats.attempted_requests % 20 == 0:
                    log(f"sent {next_batch}/{total} events")
        if batch and not stopped:
            _submit(pool, client, pending, batch, next_batch, stats, options, t0, first_ts)
        while pending:
            settle(wait(pending, return_when=FIRST_COMPLETED).done)
    client.close()
    checkpoint(conn, session_id, pins["platform_run_id"], stream_digest, position, complete=stopped is None)
    log(f"stream {'complete' if stopped is None else 'STOPPED: ' + stopped}: {position} events acknowledged")
    return stats, stopped


def _submit(
    pool: ThreadPoolExecutor,
    client: IgClient,
    pending: dict,
    batch: list,
    start: int,
    stats: SendStats,
    options: WspOptions,
    t0: float,
    first_ts: int | None,
) -> int:
    if options.speedup and first_ts is not None:
        due = (batch[0][1] - first_ts) / 1000 / options.speedup
        time.sleep(max(0.0, due - (time.monotonic() - t0)))
    envelopes = [env for _, _, env in batch]
    for output_id, _, _ in batch:
        stats.by_output[output_id]["sent"] += 1
    pending[pool.submit(client.send, envelopes)] = (start, [o for o, _, _ in batch])
    stats.attempted_requests += 1
    return start + len(batch)

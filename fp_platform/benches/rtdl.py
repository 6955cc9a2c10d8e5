"""`fp-platform bench rtdl`: events/s each core worker sustains on a world's admitted records, and the
OFP feature lookup latency as DF sees it (DESIGN.md §9).

The world's records are put on the admitted topics directly, with IG's headers and keys (what IG
would publish), so the figure is the worker's alone; tests feed workers the same way.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa

from fp_platform.contracts.bench_line import bench_line
from fp_platform.contracts.canonical import payload_hash
from fp_platform.contracts.envelope import OUTPUT_EVENT_CLASSES, record_headers, topic_key_for
from fp_platform.contracts.ids import new_platform_run_id
from fp_platform.handles import Handles
from fp_platform.rtdl import online_features
from fp_platform.rtdl.caught_up import CORE_WORKERS
from fp_platform.rtdl.processor import DecisionProcessor
from fp_platform.substrate import bus, db
from fp_platform.substrate.settings import WorkerSettings

Log = Callable[[str], None]
STREAM_ORDER = ("arrival_events", "arrival_entities", "flow_anchor_fraud", "traffic_fraud")  # context first on ties


@dataclass
class Published:
    run_id: str
    ends: dict[tuple[str, int], int]  # (topic, partition) -> next offset after the last record
    event_ids: dict[str, list[str]]  # event class -> ids, in publish order


def world_envelopes(h: Handles, run_id: str, outputs: dict[str, pa.Table]) -> list[tuple[str, dict]]:
    """(topic, envelope) for every streamed record, in WSP's order: ts, then context before traffic."""
    out = []
    for rank, output_id in enumerate(STREAM_ORDER):
        table = outputs[output_id]
        cls = OUTPUT_EVENT_CLASSES[output_id]
        topic = h.topic(topic_key_for(cls)).name
        ts = table.column("ts_utc").to_numpy().astype("datetime64[ms]")
        iso = [s + "Z" for s in np.datetime_as_string(ts, unit="ms")]
        ids = table.column("event_id").to_pylist()
        for i, payload in enumerate(table.drop_columns(["event_id", "ts_utc"]).to_pylist()):
            env = {
                "event_id": ids[i],
                "event_class": cls,
                "schema_version": "v1",
                "ts_utc": iso[i],
                "pins": {"platform_run_id": run_id},
                "producer": "bench",
                "payload": payload,
                "payload_hash": payload_hash(payload),
            }
            out.append((ts[i], rank, topic, env))
    out.sort(key=lambda r: (r[0], r[1]))
    return [(topic, env) for _, _, topic, env in out]


def rebind(items: list[tuple[str, dict]], run_id: str) -> list[tuple[str, dict]]:
    return [(t, {**env, "pins": {"platform_run_id": run_id}}) for t, env in items]


def publish_admitted(
    h: Handles,
    run_id: str,
    items: list[tuple[str, dict]],
    shuffle_seed: int | None = None,
    chunks: int = 1,
    pause_s: float = 0.0,
    receipts: bool = False,
) -> Published:
    """Produce the envelopes (optionally shuffled, in chunks) with IG's headers, keyed by merchant; with
    `receipts`, also the ADMIT receipts IG would append (the decision lane's audit resolves them)."""
    items = list(items)
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(items)
    producer = bus.producer(h)
    ends: dict[tuple[str, int], int] = {}
    ids: dict[str, list[str]] = {}
    size = max(1, -(-len(items) // chunks))
    for start in range(0, len(items), size):
        records = []
        for topic, env in items[start : start + size]:
            headers = record_headers(
                run_id, env["event_class"], env["event_id"], env["payload_hash"], h.get("COMPONENT_ID_IG")
            )
            records.append((topic, orjson.dumps(env), env["payload"]["merchant_id"].encode(), headers))
            ids.setdefault(env["event_class"], []).append(env["event_id"])
        admitted = []
        for (topic, *_), (_, env), res in zip(
            records, items[start : start + size], bus.deliver(producer, records), strict=True
        ):
            if isinstance(res, str):
                raise RuntimeError(f"publish to {topic} unconfirmed: {res}")
            ends[(topic, res[0])] = max(ends.get((topic, res[0]), 0), res[1] + 1)
            admitted.append(
                (
                    f"rcpt_bench_{run_id}_{env['event_id']}",
                    run_id,
                    env["event_class"],
                    env["event_id"],
                    env["payload_hash"],
                    "ADMIT",
                    "ingest",
                    topic,
                    res[0],
                    res[1],
                    "bench",
                )
            )
        if receipts:
            with (
                db.connect(h, autocommit=True) as conn,
                conn.cursor().copy(
                    "COPY ig_receipts (receipt_id, platform_run_id, event_class, event_id, payload_hash, decision,"
                    " source, topic, kafka_partition, kafka_offset, producer) FROM STDIN"
                ) as copy,
            ):
                for row in admitted:
                    copy.write_row(row)
        if pause_s:
            time.sleep(pause_s)
    return Published(run_id, ends, ids)


def run(h: Handles, scale: str, lookups: int, log: Log) -> list[dict]:
    from fp_platform.world.engine import build_outputs, params_for

    t0 = time.perf_counter()
    outputs = build_outputs(params_for(scale))
    run_id = new_platform_run_id()
    items = world_envelopes(h, run_id, outputs)
    log(f"world {scale}: {len(items):,} records in {time.perf_counter() - t0:.1f}s; publishing for {run_id}")
    pub = publish_admitted(h, run_id, items)
    lines = []
    params = {"scale": scale, "records": len(items), "batch_max": WorkerSettings.load(h).batch_max_records}
    for cls in CORE_WORKERS:
        component = h.get(cls.identity.component_key)
        worker = cls(h, run_id, group_id=f"bench.{component}.{run_id}")
        log(f"{component}: consuming …")
        stats = worker.run(until_idle_s=3.0, install_signals=False)
        busy = stats.last_applied_mono - stats.first_applied_mono  # the run's records only, not older skips
        rate = round(stats.applied / busy, 1) if busy > 0 else 0.0
        log(f"{component}: {stats.applied:,} records in {busy:.1f}s = {rate:,.0f}/s")
        lines.append(
            bench_line(
                "rtdl",
                f"{component}_events_per_s",
                rate,
                "events/s",
                {**params, "applied": stats.applied, "seconds": round(busy, 2)},
            )
        )
        if isinstance(worker, DecisionProcessor):
            lines += _restart(h, worker, params, log)
    lines += _lookup_latency(h, run_id, pub.event_ids["traffic.fraud"], lookups, params, log)
    return lines


def _restart(h: Handles, done: DecisionProcessor, params: dict, log: Log) -> list[dict]:
    """Seconds for the decision processor to resume: from a snapshot of its state, and from the log start;
    the two states must be equal (a snapshot is an optimisation, never a different state)."""
    done.write_snapshot(done.store, int(time.time() * 1000))
    out = {}
    with db.connect(h, autocommit=True) as conn:
        for how in ("snapshot", "log"):
            p = DecisionProcessor(h, done.run_id, group_id=done.group_id)
            if how == "log":
                p._restore_snapshot = lambda saved: {}  # noqa: SLF001 - the same restart, without the snapshot
            t = time.perf_counter()
            p.on_start(conn)
            out[how] = (round(time.perf_counter() - t, 2), p.state.to_doc())
    equal = out["snapshot"][1] == out["log"][1]
    log(
        f"decision processor restart: from a snapshot {out['snapshot'][0]}s, from the log {out['log'][0]}s,"
        f" states equal: {equal}"
    )
    if not equal:
        raise RuntimeError("the state restored from the snapshot differs from the one rebuilt from the log")
    rp = {**params, "traffic_events": len(done.state.events), "states_equal": equal}
    return [
        bench_line(
            "rtdl",
            "decision_processor_restart_from_snapshot_s",
            out["snapshot"][0],
            "s",
            rp,
            "restart from the log start",
            out["log"][0],
            higher_is_better=False,
        ),
        bench_line("rtdl", "decision_processor_restart_from_log_s", out["log"][0], "s", rp, higher_is_better=False),
    ]


def _lookup_latency(h: Handles, run_id: str, event_ids: list[str], n: int, params: dict, log: Log) -> list[dict]:
    sample = random.Random(1).sample(event_ids, min(n, len(event_ids)))
    times = []
    with db.connect(h, autocommit=True) as conn:
        for i, event_id in enumerate(sample * 2):
            t = time.perf_counter()
            vec = online_features.lookup(conn, run_id, event_id)
            if i >= len(sample):  # the first pass warms the connection and the prepared statement
                times.append((time.perf_counter() - t) * 1000)
            if vec is None:
                raise RuntimeError(f"OFP has no vector for {event_id}")
    p50, p99 = (round(float(np.percentile(times, q)), 3) for q in (50, 99))
    log(f"ofp lookup: p50 {p50} ms, p99 {p99} ms over {len(times)} lookups")
    lp = {**params, "lookups": len(times)}
    return [
        bench_line("rtdl", "ofp_lookup_p50_ms", p50, "ms", lp, higher_is_better=False),
        bench_line(
            "rtdl", "ofp_lookup_p99_ms", p99, "ms", lp, "feast_python_server_p99_ms", 4.6, higher_is_better=False
        ),
    ]

"""`fp-platform bench ig`: admitted events/s through a running IG (HTTP, validation, dedupe claim,
Kafka publish with confirmed delivery, durable receipts) per batch size, with request latency, next
to a raw confluent-kafka produce of the same records in the same run (DESIGN.md §9)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import numpy as np
import orjson

from fp_platform.contracts.bench_line import bench_line
from fp_platform.contracts.envelope import Envelope
from fp_platform.contracts.ids import new_platform_run_id
from fp_platform.control.settings import WspSettings
from fp_platform.control.world_streamer import IgClient
from fp_platform.handles import Handles
from fp_platform.substrate import bus

Log = Callable[[str], None]


def envelopes(run_id: str, n: int, tag: str) -> list[dict]:
    """`n` valid traffic envelopes with distinct ids and merchants spread over partitions."""
    return [
        Envelope.build(
            event_id=f"evt_bench_{tag}_{i:08d}",
            event_class="traffic.fraud",
            pins={"platform_run_id": run_id},
            producer="bench",
            ts_utc="2018-04-01T10:00:00.000Z",
            payload={
                "flow_id": f"flow_{i}",
                "merchant_id": f"merchant_{i % 997}",
                "customer_id": f"cust_{i % 4999}",
                "transaction_id": i,
                "card_id": f"card_{i}",
                "terminal_id": i % 997,
                "amount": round(5 + (i % 9500) / 100, 2),
                "tx_time_seconds": 36000 + i,
                "tx_time_days": 0,
            },
        ).to_dict()
        for i in range(n)
    ]


@contextmanager
def bench_gate(h: Handles, run_id: str, port: int, log: Log) -> Iterator[str]:
    """A dedicated IG for the bench run (limits raised: the bench measures admission, not the limiter)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fp_platform.control.ig",
            "--run-id",
            run_id,
            "--port",
            str(port),
            "--rate-limit-rps",
            "1000000",
            "--rate-limit-burst",
            "1000000",
        ]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + h.get("IG_READY_PATH"), timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("bench IG not ready within 60 s")
        log(f"bench IG for {run_id} on {url}")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def through_ig(client: IgClient, events: list[dict], batch: int, inflight: int) -> tuple[float, list[float], int]:
    """(wall seconds, per-request latencies in ms, admitted count)."""
    latencies: list[float] = []
    admitted = [0]
    lock = threading.Lock()

    def send(chunk: list[dict]) -> None:
        t0 = time.perf_counter()
        receipts, _ = client.send(chunk)
        with lock:
            latencies.append((time.perf_counter() - t0) * 1000)
            admitted[0] += sum(r["decision"] == "ADMIT" for r in receipts)

    chunks = [events[i : i + batch] for i in range(0, len(events), batch)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=inflight) as pool:
        list(pool.map(send, chunks))
    return time.perf_counter() - t0, latencies, admitted[0]


def raw_produce(h: Handles, events: list[dict]) -> float:
    """Seconds for an idempotent acks=all producer to deliver the same records (the baseline)."""
    topic = h.topic("FP_BUS_TRAFFIC_FRAUD_V1").name
    producer = bus.producer(h)
    records = [(orjson.dumps(e), e["payload"]["merchant_id"].encode()) for e in events]
    failed = []
    t0 = time.perf_counter()
    for value, key in records:
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=lambda err, _m: err and failed.append(err))
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)
    elapsed = time.perf_counter() - t0
    if failed:
        raise RuntimeError(f"raw produce: {len(failed)} deliveries failed: {failed[0]}")
    return elapsed


def run(h: Handles, sizes: dict[int, int], port: int, log: Log) -> Iterator[dict]:
    run_id = new_platform_run_id()
    inflight = WspSettings.load(h).max_inflight
    with bench_gate(h, run_id, port, log) as url:
        client = IgClient(h, url)
        try:
            for batch, n in sizes.items():
                events = envelopes(run_id, n, f"b{batch}")
                wall, latencies, admitted = through_ig(client, events, batch, inflight)
                if admitted != n:
                    raise RuntimeError(f"batch {batch}: {admitted} of {n} admitted")
                baseline_s = raw_produce(h, envelopes(run_id, n, f"raw{batch}"))
                rate, raw_rate = n / wall, n / baseline_s
                params = {"batch_size": batch, "events": n, "inflight": inflight, "platform_run_id": run_id}
                log(f"batch {batch}: {rate:,.0f} admitted/s (raw produce {raw_rate:,.0f}/s)")
                yield bench_line(
                    "ig",
                    "ig_admitted_events_per_s",
                    round(rate, 1),
                    "events/s",
                    params,
                    "raw confluent-kafka produce (idempotent, acks=all)",
                    round(raw_rate, 1),
                )
                for q in (50, 99):
                    yield bench_line(
                        "ig", f"ig_request_p{q}_ms", round(float(np.percentile(latencies, q)), 2), "ms", params
                    )
        finally:
            client.close()

"""`fp-platform bench ig-health`: IG's health and readiness stay O(1) as a run's history grows.

Two runs are measured in the same invocation: a run with no claims (the baseline) and a run holding
`claims` admitted claims with their ADMIT receipts (inserted in bulk, as the owner role: the bench
measures IG's queries, not admission). For each, IG starts for the run (its start-up reconcile reads
only its own run) and the authenticated health and the unauthenticated readiness endpoints are called
`calls` times. The ratio of the large run's p50 to the empty run's says whether a call's cost grows
with history. Before its gate starts, the large run gets the resolved mark a live gate would have left
(`reconcile.advance_mark`; bulk-inserted claims have none), so its start-up is a restart's. The claims
stay in the database afterwards (the tables are append-only):
`fp-platform stack down --purge` clears them.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta

import httpx
from psycopg_pool import ConnectionPool

from fp_platform.benches.ingest import bench_gate
from fp_platform.contracts.bench_line import bench_line
from fp_platform.contracts.ids import new_platform_run_id
from fp_platform.control.ig import reconcile
from fp_platform.handles import Handles
from fp_platform.substrate import db
from fp_platform.substrate.job_channel import Log
from fp_platform.substrate.secrets import get_secret


def _bench_run_id(offset_s: int) -> str:
    """A run id of the bench's own (dated 1700 so it never meets a real run's)."""
    return new_platform_run_id(datetime(1700, 1, 1, tzinfo=UTC) + timedelta(seconds=time.time_ns() % 10**9 + offset_s))


def _fill(h: Handles, run_id: str, claims: int) -> float:
    """`claims` admitted claims and their ADMIT receipts for `run_id`; the seconds it took."""
    topic = h.topic("FP_BUS_TRAFFIC_FRAUD_V1").name
    t0 = time.perf_counter()
    with db.connect(h, role=db.OWNER, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, topic, message_key,"
            " message) SELECT %s, 'traffic.fraud', 'evt_' || g, 'h', %s, NULL, '\\x7b7d'::bytea"
            " FROM generate_series(1, %s) g",
            (run_id, topic, claims),
        )
        conn.execute(
            "INSERT INTO ig_receipts (receipt_id, platform_run_id, event_class, event_id, payload_hash, decision,"
            " source, topic, kafka_partition, kafka_offset) SELECT 'rcpt_bench_' || %s || '_' || g, %s,"
            " 'traffic.fraud', 'evt_' || g, 'h', 'ADMIT', 'ingest', %s, 0, g FROM generate_series(1, %s) g",
            (run_id, run_id, topic, claims),
        )
    return time.perf_counter() - t0


def _latencies(client: httpx.Client, url: str, headers: dict[str, str], calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        response = client.get(url, headers=headers)
        out.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
    return sorted(out)


def _measure(h: Handles, run_id: str, port: int, calls: int, log: Log) -> dict[str, float]:
    auth = {h.get("IG_AUTH_HEADER_NAME"): get_secret(h, "SSM_IG_API_KEY_PATH")}
    t0 = time.perf_counter()
    with bench_gate(h, run_id, port, log) as url, httpx.Client(timeout=30) as client:
        startup_s = time.perf_counter() - t0
        health = _latencies(client, url + h.get("IG_HEALTHCHECK_PATH"), auth, calls)
        ready = _latencies(client, url + h.get("IG_READY_PATH"), {}, calls)
    pick = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
    return {
        "startup_s": startup_s,
        "health_p50": statistics.median(health),
        "health_p99": pick(health, 0.99),
        "ready_p50": statistics.median(ready),
        "ready_p99": pick(ready, 0.99),
    }


def run(h: Handles, claims: int, calls: int, port: int, log: Log) -> list[dict]:
    empty_run, full_run = _bench_run_id(0), _bench_run_id(1)
    log(f"baseline: IG for {empty_run} (no claims)")
    empty = _measure(h, empty_run, port, calls, log)
    log(f"filling {full_run} with {claims:,} claims and receipts")
    fill_s = _fill(h, full_run, claims)
    t0 = time.perf_counter()
    with ConnectionPool(db.dsn(h), min_size=1, max_size=1, kwargs={"autocommit": True}) as pool:
        reconcile.advance_mark(pool, full_run)
    mark_s = time.perf_counter() - t0
    log(f"filled in {fill_s:.1f}s, marked in {mark_s:.1f}s; IG for {full_run}")
    full = _measure(h, full_run, port, calls, log)
    params = {
        "claims": claims,
        "calls": calls,
        "fill_s": round(fill_s, 1),
        "mark_s": round(mark_s, 1),
        "empty_run": empty,
    }
    baseline = "the same call on a run with no claims"

    def line(metric: str, key: str, unit: str) -> dict:
        return bench_line(
            "ig-health",
            metric,
            round(full[key], 3),
            unit,
            params,
            baseline,
            round(empty[key], 3),
            higher_is_better=False,
        )

    return [
        line("ig_startup_s", "startup_s", "s"),
        line("health_p50_ms", "health_p50", "ms"),
        line("health_p99_ms", "health_p99", "ms"),
        line("ready_p50_ms", "ready_p50", "ms"),
        line("ready_p99_ms", "ready_p99", "ms"),
    ]

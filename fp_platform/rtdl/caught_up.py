"""P8 RTDL_CAUGHT_UP: how far each core worker has durably consumed the run's admitted records, the
archive closure, and the degrade counts — what `rtdl_caught_up` waits for and judges.

Lag is measured against what IG admitted for the run (its receipts hold each record's offset), not
against ListOffsets (Tansu under-reports the log end), and against the offsets in Postgres that the
workers write with their state (the Kafka commit only follows them).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import psycopg
from confluent_kafka import TopicPartition

from fp_platform.handles import Handles
from fp_platform.rtdl import context_binding
from fp_platform.rtdl.archive import ArchiveWriter
from fp_platform.rtdl.context_binding import Csfb
from fp_platform.rtdl.entity_graph import IegProjector
from fp_platform.rtdl.online_features import Ofp
from fp_platform.rtdl.processor import DecisionProcessor
from fp_platform.substrate import bus
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.substrate.worker import Worker

CORE_WORKERS: tuple[type[Worker], ...] = (ArchiveWriter, IegProjector, DecisionProcessor)
# Whose lag P8 judges: each core component over its own topics, by the offsets its state covers (OFP and CSFB
# by their host's, the decision processor's).
CORE_CONSUMERS = (ArchiveWriter, IegProjector, Ofp, Csfb)
Ranges = dict[tuple[str, int], tuple[int, int, int]]  # (topic, partition) -> (first, last, admitted)


def admitted_ranges(conn: psycopg.Connection, run_id: str) -> Ranges:
    return {
        (t, p): (lo, hi, n)
        for t, p, lo, hi, n in conn.execute(
            "SELECT topic, kafka_partition, min(kafka_offset), max(kafka_offset), count(*) FROM ig_receipts"
            " WHERE platform_run_id = %s AND decision = 'ADMIT' GROUP BY 1, 2",
            (run_id,),
        )
    }


def lag_report(h: Handles, conn: psycopg.Connection, run_id: str, ranges: Ranges | None = None) -> dict[str, Any]:
    """Per core worker: every partition of its topics holding admitted records, with its lag."""
    ranges = admitted_ranges(conn, run_id) if ranges is None else ranges
    workers = {}
    for cls in CORE_CONSUMERS:
        group = h.get(cls.identity.group_key)
        saved = {
            (t, p): o
            for t, p, o in conn.execute(
                "SELECT topic, kafka_partition, next_offset FROM worker_offsets WHERE consumer_group = %s", (group,)
            )
        }
        topics = {h.topic(k).name for k in cls.identity.topic_keys}
        parts = []
        for (topic, part), (lo, hi, n) in sorted(ranges.items()):
            if topic in topics:
                nxt = saved.get((topic, part))
                start = lo if nxt is None else max(nxt, lo)
                parts.append(
                    {
                        "topic": topic,
                        "partition": part,
                        "run_first_offset": lo,
                        "run_last_offset": hi,
                        "admitted": n,
                        "db_next_offset": nxt,
                        "lag": max(0, hi + 1 - start),
                    }
                )
        workers[h.get(cls.identity.component_key)] = {
            "consumer_group": group,
            "partitions": parts,
            "max_lag": max((p["lag"] for p in parts), default=0),
        }
    return {
        "workers": workers,
        "max_lag": max((w["max_lag"] for w in workers.values()), default=0),
        "partitions_covered": len(ranges),
    }


def kafka_committed(h: Handles, report: dict[str, Any]) -> dict[str, Any]:
    """The Kafka-committed offset of each (group, partition) next to the DB offset: Kafka may trail
    the DB (its commit follows the durable write) but must never lead it."""
    out, ahead = {}, []
    for component, w in report["workers"].items():
        consumer = bus.consumer(h, w["consumer_group"])
        try:
            tps = consumer.committed([TopicPartition(p["topic"], p["partition"]) for p in w["partitions"]], timeout=10)
        finally:
            consumer.close()
        committed = {(tp.topic, tp.partition): tp.offset if tp.offset >= 0 else None for tp in tps}
        rows = []
        for p in w["partitions"]:
            k = committed.get((p["topic"], p["partition"]))
            rows.append(
                {
                    "topic": p["topic"],
                    "partition": p["partition"],
                    "kafka_committed": k,
                    "db_next_offset": p["db_next_offset"],
                }
            )
            if k is not None and (p["db_next_offset"] is None or k > p["db_next_offset"]):
                ahead.append(f"{component} {p['topic']}[{p['partition']}]: kafka {k} > db {p['db_next_offset']}")
        out[component] = rows
    return {"groups": out, "kafka_ahead_of_db": ahead}


def archive_closure(
    h: Handles, conn: psycopg.Connection, store: S3ObjectStore, run_id: str, ranges: Ranges
) -> dict[str, Any]:
    """The run's archive manifest and whether it covers every admitted record exactly once."""
    rows = conn.execute(
        "SELECT topic, kafka_partition, first_offset, last_offset, records, object_key, sha256, bytes"
        " FROM archive_segments WHERE platform_run_id = %s ORDER BY 1, 2, 3",
        (run_id,),
    ).fetchall()
    segments = [
        dict(
            zip(
                ("topic", "partition", "first_offset", "last_offset", "records", "object_key", "sha256", "bytes"),
                r,
                strict=True,
            )
        )
        for r in rows
    ]
    problems, per_part = [], {}
    for s in segments:
        key = (s["topic"], s["partition"])
        prev = per_part.get(key)
        if prev and s["first_offset"] <= prev["last"]:
            problems.append(f"{key}: segment at {s['first_offset']} overlaps the one ending {prev['last']}")
        per_part[key] = {"last": s["last_offset"], "records": (prev["records"] if prev else 0) + s["records"]}
    for (topic, part), (_, hi, n) in sorted(ranges.items()):
        got = per_part.get((topic, part))
        if topic not in {h.topic(k).name for k in ArchiveWriter.identity.topic_keys}:
            continue
        if got is None or got["last"] < hi or got["records"] < n:
            problems.append(
                f"{topic}[{part}]: admitted {n} up to offset {hi}, archived "
                f"{got['records'] if got else 0} up to {got['last'] if got else None}"
            )
    bucket = h.get("S3_ARCHIVE_BUCKET")
    named = {s["object_key"] for s in segments}
    prefix = h.pattern("S3_ARCHIVE_PREFIX_PATTERN", platform_run_id=run_id)
    orphans = [k for k in store.iter_keys(bucket, prefix) if k not in named]
    manifest_digest = hashlib.sha256(orjson.dumps(segments)).hexdigest()
    return {
        "bucket": bucket,
        "segments": segments,
        "segment_count": len(segments),
        "records": sum(s["records"] for s in segments),
        "bytes": sum(s["bytes"] for s in segments),
        "manifest_sha256": manifest_digest,
        "coverage_problems": problems,
        "orphan_segments": orphans,
        "closed": not problems and bool(segments),
    }


def degrade_counts(conn: psycopg.Connection, run_id: str) -> dict[str, Any]:
    """Explicit degrades: bindings short of READY (with their reasons) and feature vectors that could
    not see their context or any label."""
    bindings = context_binding.binding_counts(conn, run_id)
    unexplained = conn.execute(
        "SELECT count(*) FROM csfb_flow_bindings WHERE platform_run_id = %s"
        " AND status <> 'READY' AND cardinality(reasons) = 0",
        (run_id,),
    ).fetchone()[0]
    reasons = dict(
        conn.execute(
            "SELECT r, count(*) FROM csfb_flow_bindings, unnest(reasons) r WHERE platform_run_id = %s GROUP BY r"
            " ORDER BY 2 DESC LIMIT 20",
            (run_id,),
        ).fetchall()
    )
    vectors, no_context, no_labels = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE NOT (features->>'context_complete')::boolean),"
        " count(*) FILTER (WHERE (features->>'terminal_labels_visible')::int = 0) FROM ofp_features"
        " WHERE platform_run_id = %s",
        (run_id,),
    ).fetchone()
    return {
        "csfb_bindings": bindings,
        "csfb_reasons": reasons,
        "csfb_degrades_without_reason": unexplained,
        "ofp_vectors": vectors,
        "ofp_context_incomplete": no_context,
        "ofp_risk_without_labels": no_labels,
    }


def derived_coverage(conn: psycopg.Connection, run_id: str, traffic_admitted: int) -> dict[str, Any]:
    """Every admitted traffic event has its vector and its binding, each with its origin offset (OFP's and
    CSFB's base records are keyed state in the decision processor; these are what it derives from them)."""
    counts = {
        name: conn.execute(f"SELECT count(*) FROM {table} WHERE platform_run_id = %s", (run_id,)).fetchone()[0]
        for name, table in (("ofp_features", "ofp_features"), ("csfb_flow_bindings", "csfb_flow_bindings"))
    }
    counts["ieg_entities"] = conn.execute(
        "SELECT count(*) FROM ieg_entities WHERE platform_run_id = %s", (run_id,)
    ).fetchone()[0]
    counts["traffic_admitted"] = traffic_admitted
    counts["complete"] = all(counts[k] == traffic_admitted for k in ("ofp_features", "csfb_flow_bindings"))
    return counts

"""ArchiveWriter: every admitted record of the run, and every label event, → write-once parquet segments
in the archive bucket (what OFS rebuilds datasets from, by offset).

A segment is one batch's records of one partition; its key and manifest row carry (topic, partition,
first/last offset). The segment is put before the batch's transaction records it, so a crash
between the two leaves an object no manifest row names (reported as an orphan at closure) and the
replayed batch writes (or finds, byte-identical) its own segment.
"""

from __future__ import annotations

import hashlib
import io
from collections import defaultdict

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from fp_platform.contracts import components
from fp_platform.contracts.evidence import ObjectExistsError
from fp_platform.substrate.worker import BusRecord, Worker, WorkerError

SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("event_id", pa.string()),
        ("event_class", pa.string()),
        ("ts_utc", pa.string()),
        ("payload_hash", pa.string()),
        ("record", pa.binary()),
    ]
)


def segment_bytes(records: list[BusRecord]) -> bytes:
    table = pa.table(
        {
            "topic": [r.topic for r in records],
            "partition": [r.partition for r in records],
            "offset": [r.offset for r in records],
            "event_id": [r.envelope["event_id"] for r in records],
            "event_class": [r.envelope["event_class"] for r in records],
            "ts_utc": [r.ts for r in records],
            "payload_hash": [r.envelope.get("payload_hash", "") for r in records],
            "record": [r.value for r in records],
        },
        schema=SCHEMA,
    )
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def by_partition(records: list[BusRecord]) -> list[tuple[str, int, list[BusRecord]]]:
    """A batch's records per (topic, partition), each in offset order: one segment each."""
    parts: dict[tuple[str, int], list[BusRecord]] = defaultdict(list)
    for r in records:
        parts[(r.topic, r.partition)].append(r)
    return [(t, p, sorted(recs, key=lambda r: r.offset)) for (t, p), recs in sorted(parts.items())]


def put_segment(worker: Worker, bucket: str, key: str, body: bytes) -> str:
    """Put a write-once segment; a replayed batch (after a crash) must find the same bytes. Its sha256."""
    sha = hashlib.sha256(body).hexdigest()
    try:
        worker.store.put(bucket, key, body, write_once=True, metadata={"sha256": sha})
    except ObjectExistsError:
        if hashlib.sha256(worker.store.get(bucket, key)).hexdigest() != sha:
            raise WorkerError(f"segment s3://{bucket}/{key} exists with other content") from None
        worker.stats.counters["segments_found_on_replay"] += 1
    return sha


class ArchiveWriter(Worker):
    identity = components.ARCHIVE_WRITER

    def apply(self, conn: psycopg.Connection, records: list[BusRecord]) -> None:
        bucket = self.h.get("S3_ARCHIVE_BUCKET")
        for topic, partition, recs in by_partition(records):
            body = segment_bytes(recs)
            key = self.h.pattern(
                "ARCHIVE_SEGMENT_PATTERN",
                platform_run_id=self.run_id,
                topic=topic,
                partition=str(partition),
                first_offset=str(recs[0].offset),
                last_offset=str(recs[-1].offset),
            )
            sha = put_segment(self, bucket, key, body)
            conn.execute(
                "INSERT INTO archive_segments (platform_run_id, topic, kafka_partition, first_offset, last_offset,"
                " records, object_key, sha256, bytes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (self.run_id, topic, partition, recs[0].offset, recs[-1].offset, len(recs), key, sha, len(body)),
            )
            self.stats.counters["segments"] += 1
            self.stats.counters["archived_records"] += len(recs)

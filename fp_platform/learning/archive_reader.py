"""Read a run's archive by its manifest: the segments the ArchiveWriter recorded (topic, partition, offset
range, sha256), each fetched from the object store and checked against its digest. Learning reads the
archive this way only: by manifest and fingerprint, never "whatever is there now"."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from fp_platform.contracts.canonical import digest
from fp_platform.substrate.object_store import S3ObjectStore

_FIELDS = ("topic", "partition", "first_offset", "last_offset", "records", "object_key", "sha256")


class ArchiveMismatch(RuntimeError):
    """A segment is missing or its bytes are not the ones the manifest recorded."""


def manifest(conn: psycopg.Connection, run_id: str) -> list[dict[str, Any]]:
    """The run's segments in (topic, partition, first offset) order."""
    rows = conn.execute(
        "SELECT topic, kafka_partition, first_offset, last_offset, records, object_key, sha256"
        " FROM archive_segments WHERE platform_run_id = %s ORDER BY 1, 2, 3",
        (run_id,),
    ).fetchall()
    return [dict(zip(_FIELDS, r, strict=True)) for r in rows]


def fingerprint(segments: list[dict[str, Any]]) -> str:
    return digest([[s[f] for f in _FIELDS] for s in segments])


def _fetch(store: S3ObjectStore, bucket: str, seg: dict[str, Any]) -> pa.Table:
    try:
        body = store.get(bucket, seg["object_key"])
    except Exception as exc:  # absent object, store down: the basis cannot be read
        raise ArchiveMismatch(f"segment s3://{bucket}/{seg['object_key']} unreadable: {exc}") from None
    if hashlib.sha256(body).hexdigest() != seg["sha256"]:
        raise ArchiveMismatch(f"segment s3://{bucket}/{seg['object_key']} does not match its sha256 in the manifest")
    return pq.read_table(io.BytesIO(body))


def read_segments(
    store: S3ObjectStore, bucket: str, segments: list[dict[str, Any]], workers: int = 8
) -> Iterator[tuple[dict[str, Any], pa.Table]]:
    """Each segment with its records, verified against the manifest's digest (ArchiveMismatch otherwise)."""
    with ThreadPoolExecutor(workers) as pool:
        yield from zip(segments, pool.map(lambda s: _fetch(store, bucket, s), segments), strict=True)


def envelopes(table: pa.Table) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(partition, offset, envelope) of each archived record."""
    for part, off, raw in zip(
        table.column("partition").to_pylist(),
        table.column("offset").to_pylist(),
        table.column("record").to_pylist(),
        strict=True,
    ):
        yield part, off, orjson.loads(raw)

"""IG receipts as write-once S3 segments (DESIGN.md §10): one parquet object per run and seq range.

One flusher at a time (advisory lock). The range ends at a seq below which every insert has
committed (a brief SHARE lock waits out in-flight receipt transactions), so no receipt is skipped.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
from psycopg_pool import ConnectionPool

from fp_platform.contracts.canonical import sha256_hex
from fp_platform.contracts.evidence import ObjectExistsError
from fp_platform.handles import Handles
from fp_platform.substrate.object_store import S3ObjectStore

# What IG writes for a receipt; a segment adds the row's sequence and when it was received.
RECEIPT_COLUMNS = (
    "receipt_id",
    "platform_run_id",
    "event_class",
    "event_id",
    "payload_hash",
    "decision",
    "reason",
    "source",
    "topic",
    "kafka_partition",
    "kafka_offset",
    "producer",
)
COLUMNS = ("seq", *RECEIPT_COLUMNS, "received_at")
_LOCK_KEY = "fp:ig_receipt_segments"
RECEIPT_BARRIER = "fp:ig_receipts_barrier"  # shared by each receipt write, exclusive by the segment flush


def flush(h: Handles, pool: ConnectionPool, store: S3ObjectStore) -> list[dict]:
    """Write every receipt not yet in a segment; returns the segments written."""
    bucket = h.get("S3_ARCHIVE_BUCKET")
    with pool.connection() as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (_LOCK_KEY,))
        try:
            with conn.transaction():
                # Wait until no receipt transaction is in flight, so no seq below `hi` can still appear (a
                # gap a later segment would skip). An advisory barrier, not LOCK TABLE ... IN SHARE MODE:
                # that needs UPDATE/DELETE/TRUNCATE on the table, which the application role never has.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (RECEIPT_BARRIER,))
                hi = conn.execute("SELECT coalesce(max(seq), 0) FROM ig_receipts").fetchone()[0]
            lo = conn.execute("SELECT coalesce(max(last_seq), 0) FROM ig_receipt_segments").fetchone()[0]
            if hi <= lo:
                return []
            cur = conn.execute(
                f"SELECT {', '.join(COLUMNS)} FROM ig_receipts WHERE seq > %s AND seq <= %s ORDER BY seq", (lo, hi)
            )
            rows = cur.fetchall()
            written = []
            for run_id in sorted({r[2] for r in rows}):
                run_rows = [r for r in rows if r[2] == run_id]
                body = _parquet(run_rows)
                key = h.pattern("IG_RECEIPT_SEGMENT_PATTERN", platform_run_id=run_id, segment_id=f"{lo + 1:012d}")
                digest = sha256_hex(body)
                try:
                    store.put(bucket, key, body, write_once=True)
                except ObjectExistsError:  # a flush that died after its put: same range, same bytes
                    if sha256_hex(store.get(bucket, key)) != digest:
                        raise
                seg = {
                    "platform_run_id": run_id,
                    "segment_id": lo + 1,
                    "first_seq": lo + 1,
                    "last_seq": hi,
                    "row_count": len(run_rows),
                    "object_uri": f"s3://{bucket}/{key}",
                    "sha256": digest,
                }
                conn.execute(
                    "INSERT INTO ig_receipt_segments (platform_run_id, segment_id, first_seq, last_seq,"
                    " row_count, object_uri, sha256) VALUES (%(platform_run_id)s, %(segment_id)s,"
                    " %(first_seq)s, %(last_seq)s, %(row_count)s, %(object_uri)s, %(sha256)s)"
                    " ON CONFLICT DO NOTHING",
                    seg,
                )
                written.append(seg)
            return written
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (_LOCK_KEY,))


def latest(pool: ConnectionPool, run_id: str) -> dict | None:
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT segment_id, first_seq, last_seq, row_count, object_uri, sha256 FROM"
            " ig_receipt_segments WHERE platform_run_id = %s ORDER BY segment_id DESC LIMIT 1",
            (run_id,),
        ).fetchone()
    keys = ("segment_id", "first_seq", "last_seq", "row_count", "object_uri", "sha256")
    return dict(zip(keys, row, strict=True)) if row else None


def _parquet(rows: list[tuple]) -> bytes:
    columns = list(zip(*rows, strict=True))
    table = pa.table({name: pa.array(list(col)) for name, col in zip(COLUMNS, columns, strict=True)})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()

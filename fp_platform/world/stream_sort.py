"""Stream sort: one output_id's raw oracle parts → a stream view ordered for replay.

Order is the spec's: `ts_utc`, then source file name, then row number in that file; both tie
breakers stay in the view as `source_file` / `source_row` (the row's provenance). Rows are always
gathered in (file name, row) order, so a stable sort on the key alone yields the spec's order.

Memory is bounded by `bucket_rows`: inputs that fit are sorted in memory; larger ones take a
distribution sort — pass 1 samples the sort key to pick bucket edges, pass 2 spills every input row
into per-bucket Arrow files, pass 3 sorts one bucket at a time. Parts hold `rows_per_part` rows of
the sorted stream wherever the bucket edges fall, so the view does not depend on the memory bound.
Downloads, spills and part encoding/upload run on a thread pool (Arrow and hashlib release the GIL).

Outputs are deterministic, so a re-run writes byte-identical parts: an existing identical part is
kept (resume after a crash), a different one is a conflict and fails.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from fp_platform.contracts.canonical import canonical_json, digest, sha256_hex
from fp_platform.contracts.evidence import ObjectExistsError, utc_now_iso
from fp_platform.substrate.object_store import S3ObjectStore

MANIFEST_NAME = "_stream_view_manifest.json"
RECEIPT_NAME = "_stream_sort_receipt.json"
TIE_BREAKERS = ("source_file", "source_row")
WORKERS = min(4, max(2, os.cpu_count() or 1))  # each holds one read batch or one part: memory stays bounded
# Unique columns (ids, timestamps) give up on a parquet dictionary 4× sooner than Arrow's 1 MiB default:
# parts encode ~25% faster; low-cardinality columns still fit theirs.
DICTIONARY_LIMIT = 256 << 10
SAMPLE_PER_BUCKET = 10_000  # sort keys sampled per bucket to place the bucket edges


class StreamSortConflict(RuntimeError):
    """The stream view already holds something other than what this sort produces."""


@dataclass(frozen=True)
class InputFile:
    key: str  # object key in the oracle bucket
    size: int
    sha256: str

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class SortJob:
    """The spec's per-output interface: run, output, input prefix, output prefix, sort key."""

    platform_run_id: str
    output_id: str
    bucket: str
    inputs: tuple[InputFile, ...]
    output_prefix: str  # ends with "/"
    sort_key: str = "ts_utc"
    rows_per_part: int = 250_000
    bucket_rows: int = 1_000_000  # the memory bound: rows sorted in memory at once
    batch_rows: int = 262_144  # rows per read batch while spilling

    @property
    def input_fingerprint(self) -> str:
        return digest([[f.name, f.size, f.sha256] for f in sorted(self.inputs, key=lambda f: f.name)])


def existing_receipt(store: S3ObjectStore, job: SortJob) -> dict | None:
    """The receipt already in the view, if any (None when absent)."""
    try:
        return json.loads(store.get(job.bucket, job.output_prefix + RECEIPT_NAME))
    except FileNotFoundError:
        return None


def receipt_is_valid(store: S3ObjectStore, job: SortJob, receipt: dict) -> tuple[bool, str]:
    """A receipt is valid when it was made from these inputs and its parts are all there."""
    if receipt.get("input_fingerprint") != job.input_fingerprint:
        return False, (
            f"receipt input fingerprint {receipt.get('input_fingerprint')} != current inputs {job.input_fingerprint}"
        )
    present = {k.rsplit("/", 1)[-1] for k in store.iter_keys(job.bucket, job.output_prefix)}
    missing = [p["file"] for p in receipt.get("parts", []) if p["file"] not in present]
    if missing or MANIFEST_NAME not in present:
        return False, f"view is missing {', '.join(missing or [MANIFEST_NAME])}"
    return True, "receipt matches inputs and every part is present"


# --- Arrow ⇄ numpy without pa.array / to_numpy: both import pandas, ~1 s of a sort's start-up ---
def _int_array(values: np.ndarray) -> pa.Array:
    """A numpy int vector as an Arrow array, zero-copy."""
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def _string_array(values: list[str]) -> pa.Array:
    """A short list of strings (the input file names) as an Arrow string array."""
    encoded = [v.encode() for v in values]
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in encoded])]).astype(np.int32)
    return pa.Array.from_buffers(
        pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    )


def _int64_keys(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The sort key as int64 numpy, for bucket edges (a null key has no bucket)."""
    values = column.cast(pa.int64())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count:
        raise ValueError("the sort key has nulls; a bounded-memory sort cannot place them")
    return np.frombuffer(values.buffers()[1], dtype=np.int64, count=len(values), offset=values.offset * 8)


def _key_text(key: pa.Scalar) -> str:
    """str(key.as_py()); a zoned timestamp's as_py imports pandas, so it is built from the naive value."""
    kind = key.type
    if key.is_valid and pa.types.is_timestamp(kind) and kind.tz and kind.unit != "ns":
        naive = key.cast(pa.timestamp(kind.unit)).as_py()
        return str(naive.replace(tzinfo=UTC).astimezone(pa.lib.string_to_tzinfo(kind.tz)))
    return str(key.as_py())


# --- pass 0: inputs ---------------------------------------------------------------------------
def _fetch(store: S3ObjectStore, job: SortJob, f: InputFile, path: Path) -> Path:
    """Stream one input to disk, hashing the bytes as they arrive (no second read to verify)."""
    sha = hashlib.sha256()
    body = store.client.get_object(Bucket=job.bucket, Key=f.key)["Body"]
    with path.open("wb") as out:
        for chunk in body.iter_chunks(1 << 20):
            sha.update(chunk)
            out.write(chunk)
    if sha.hexdigest() != f.sha256:
        raise StreamSortConflict(f"{job.output_id}: input {f.key} does not match its sealed sha256")
    return path


def _download(store: S3ObjectStore, job: SortJob, workdir: Path, pool: ThreadPoolExecutor) -> list[Path]:
    """Every input, in file-name order (the tie-break order), fetched concurrently."""
    (workdir / "inputs").mkdir(parents=True, exist_ok=True)
    inputs = sorted(job.inputs, key=lambda f: f.name)
    return list(pool.map(lambda f: _fetch(store, job, f, workdir / "inputs" / f.name), inputs))


def _tag(rows: pa.Table | pa.RecordBatch, file_no: int, first_row: int) -> pa.Table | pa.RecordBatch:
    """Append provenance: source_file as the file's rank in name order (named at output), source_row."""
    n = rows.num_rows
    rows = rows.append_column("source_file", _int_array(np.full(n, file_no, dtype=np.int32)))
    return rows.append_column("source_row", _int_array(np.arange(first_row, first_row + n, dtype=np.int64)))


def _whole_input(files: list[Path], pool: ThreadPoolExecutor) -> Iterator[pa.Table]:
    """The in-memory path: one bucket of every input whole, tagged, in file-name order."""
    if files:
        yield pa.concat_tables(pool.map(lambda i: _tag(pq.ParquetFile(files[i]).read(), i, 0), range(len(files))))


# --- passes 1 and 2: the distribution sort's buckets -------------------------------------------
def _key_sample(path: Path, job: SortJob, stride: int) -> np.ndarray:
    """Every stride-th sort key of one input (pass 1 reads only that column)."""
    batches = pq.ParquetFile(path).iter_batches(batch_size=job.batch_rows, columns=[job.sort_key])
    return np.concatenate([_int64_keys(b.column(0))[::stride] for b in batches] or [np.array([], np.int64)])


def _boundaries(
    files: list[Path], job: SortJob, n_buckets: int, total_rows: int, pool: ThreadPoolExecutor
) -> np.ndarray:
    """Bucket edges at quantiles of an evenly strided key sample (~1% error in a bucket's size)."""
    stride = math.ceil(total_rows / min(job.bucket_rows, SAMPLE_PER_BUCKET * n_buckets))
    keys = np.concatenate(list(pool.map(lambda f: _key_sample(f, job, stride), files)))
    return np.unique(np.quantile(keys, np.linspace(0, 1, n_buckets + 1)[1:-1], method="lower").astype(np.int64))


def _spill_path(spill_dir: Path, bucket: int, file_no: int) -> Path:
    return spill_dir / f"bucket-{bucket:05d}-file-{file_no:05d}.arrow"


def _spill_file(path: Path, file_no: int, job: SortJob, edges: np.ndarray, spill_dir: Path) -> None:
    """Pass 2 for one input: its rows, tagged, into one spill file per bucket they fall in."""
    writers: dict[int, ipc.RecordBatchFileWriter] = {}
    row = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=job.batch_rows):
            batch = _tag(batch, file_no, row)
            row += batch.num_rows
            which = np.searchsorted(edges, _int64_keys(batch.column(job.sort_key)), side="right")
            grouped = batch.take(_int_array(np.argsort(which, kind="stable")))
            counts = np.bincount(which, minlength=len(edges) + 1)
            ends = np.cumsum(counts)
            for b in np.flatnonzero(counts):
                if b not in writers:
                    writers[b] = ipc.new_file(_spill_path(spill_dir, b, file_no), batch.schema)
                writers[b].write_batch(grouped.slice(ends[b] - counts[b], counts[b]))
    finally:
        for w in writers.values():
            w.close()


def _spilled_buckets(
    files: list[Path], job: SortJob, edges: np.ndarray, spill_dir: Path, pool: ThreadPoolExecutor
) -> Iterator[pa.Table]:
    """Spill every input (concurrently), then yield each non-empty bucket in key order, rows in file order."""
    spill_dir.mkdir(parents=True, exist_ok=True)
    list(pool.map(lambda i: _spill_file(files[i], i, job, edges, spill_dir), range(len(files))))
    for b in range(len(edges) + 1):
        paths = [p for p in (_spill_path(spill_dir, b, i) for i in range(len(files))) if p.exists()]
        if paths:
            yield pa.concat_tables([ipc.open_file(pa.memory_map(str(p))).read_all() for p in paths])
        for p in paths:
            p.unlink()


# --- pass 3: sorted parts ----------------------------------------------------------------------
def _gathered(bucket: pa.Table, order: pa.Array, pool: ThreadPoolExecutor) -> pa.Table:
    """The bucket's rows in `order`, one contiguous chunk per column, gathered a column per thread."""
    return pa.Table.from_arrays(list(pool.map(lambda col: col.take(order), bucket.columns)), schema=bucket.schema)


def _owned(rows: pa.Table) -> pa.Table:
    """A copy of a bucket's last rows, so the bucket itself can be freed while they wait for the next one."""
    return rows.take(_int_array(np.arange(rows.num_rows)))


def _put_part(store: S3ObjectStore, job: SortJob, name: str, body: bytes) -> None:
    key = job.output_prefix + name
    try:
        store.put(job.bucket, key, body, write_once=True)
    except ObjectExistsError:
        if sha256_hex(store.get(job.bucket, key)) != sha256_hex(body):
            raise StreamSortConflict(
                f"{job.output_id}: s3://{job.bucket}/{key} exists with different content; the stream view "
                "conflicts with this sort (delete the output's view prefix to re-sort it)"
            ) from None


def _write_part(store: S3ObjectStore, job: SortJob, names: pa.Array, part_no: int, rows: pa.Table) -> dict:
    """Encode one part (file ranks → names), upload it write-once; returns its manifest entry."""
    table = rows.combine_chunks()  # one chunk, so the parquet bytes never depend on where buckets fell
    ranks = table.schema.get_field_index("source_file")
    table = table.set_column(ranks, "source_file", pc.take(names, table.column(ranks)))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", dictionary_pagesize_limit=DICTIONARY_LIMIT)
    body = sink.getvalue().to_pybytes()
    name = f"part-{part_no:05d}.parquet"
    _put_part(store, job, name, body)
    keys = table.column(job.sort_key)
    return {
        "file": name,
        "rows": table.num_rows,
        "sha256": sha256_hex(body),
        "bytes": len(body),
        "first_key": _key_text(keys[0]),
        "last_key": _key_text(keys[-1]),
    }


def _write_parts(
    store: S3ObjectStore,
    job: SortJob,
    names: pa.Array,
    buckets: Iterator[pa.Table],
    pool: ThreadPoolExecutor,
    progress: Callable[[str], None],
) -> list[dict]:
    """Sort bucket by bucket and cut the sorted stream into parts of rows_per_part rows."""
    parts: list[dict] = []
    futures: list[Future] = []  # the previous bucket's parts, still encoding while this bucket is ordered
    carry: pa.Table | None = None  # sorted rows not yet in a part (fewer than rows_per_part)
    for bucket in buckets:
        order = pc.sort_indices(bucket.column(job.sort_key))  # stable: ties stay in (file, row) order
        parts.extend(f.result() for f in futures)  # one sorted bucket in memory at a time
        if parts:
            progress(f"{job.output_id}: {sum(p['rows'] for p in parts)} rows sorted")
        stream = _gathered(bucket, order, pool)
        del bucket, order
        if carry is not None:
            stream = pa.concat_tables([carry, stream])
        full = stream.num_rows - stream.num_rows % job.rows_per_part
        futures = [
            pool.submit(_write_part, store, job, names, len(parts) + i, stream.slice(start, job.rows_per_part))
            for i, start in enumerate(range(0, full, job.rows_per_part))
        ]
        carry = _owned(stream.slice(full)) if full < stream.num_rows else None
        del stream
    parts.extend(f.result() for f in futures)
    if carry is not None:
        parts.append(_write_part(store, job, names, len(parts), carry))
    progress(f"{job.output_id}: {sum(p['rows'] for p in parts)} rows sorted")
    return parts


def run_sort(
    store: S3ObjectStore, job: SortJob, workdir: Path, progress: Callable[[str], None] = lambda _: None
) -> dict:
    """Sort one output into its stream view; returns the receipt (skips when a valid one exists)."""
    receipt = existing_receipt(store, job)
    if receipt is not None:
        ok, why = receipt_is_valid(store, job, receipt)
        if ok:
            progress(f"{job.output_id}: valid receipt, skipped")
            return {**receipt, "skipped": True}
        raise StreamSortConflict(f"{job.output_id}: existing stream view conflicts: {why}")

    started = utc_now_iso()
    t0 = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        files = _download(store, job, workdir, pool)
        total_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        n_buckets = max(1, math.ceil(total_rows / job.bucket_rows))
        if n_buckets == 1:
            edges, buckets = np.array([], dtype=np.int64), _whole_input(files, pool)
        else:
            edges = _boundaries(files, job, n_buckets, total_rows, pool)
            buckets = _spilled_buckets(files, job, edges, workdir / "spill", pool)
        progress(f"{job.output_id}: {total_rows} rows in {len(files)} files → {len(edges) + 1} buckets")
        names = _string_array([f.name for f in files])
        parts = _write_parts(store, job, names, buckets, pool, progress)
    out_rows = sum(p["rows"] for p in parts)
    if out_rows != total_rows:
        raise StreamSortConflict(f"{job.output_id}: wrote {out_rows} rows but read {total_rows}")

    sort_key = [job.sort_key, *TIE_BREAKERS]
    manifest = {
        "output_id": job.output_id,
        "platform_run_id": job.platform_run_id,
        "sort_key": sort_key,
        "rows": out_rows,
        "parts": parts,
        "format": "parquet",
    }
    _put_part(store, job, MANIFEST_NAME, canonical_json(manifest))
    receipt = {
        "output_id": job.output_id,
        "platform_run_id": job.platform_run_id,
        "sort_key": sort_key,
        "input_fingerprint": job.input_fingerprint,
        "output_fingerprint": digest([[p["file"], p["rows"], p["sha256"]] for p in parts]),
        "inputs": [asdict(f) for f in sorted(job.inputs, key=lambda f: f.name)],
        "parts": parts,
        "counts": {
            "input_rows": total_rows,
            "output_rows": out_rows,
            "input_files": len(files),
            "output_files": len(parts),
            "buckets": len(edges) + 1,
        },
        "started_at_utc": started,
        "ended_at_utc": utc_now_iso(),
        "elapsed_s": round(time.monotonic() - t0, 3),
    }
    store.put(job.bucket, job.output_prefix + RECEIPT_NAME, canonical_json(receipt), write_once=True)
    return {**receipt, "skipped": False}

"""Stream sort: one output_id's raw oracle parts → a stream view ordered for replay.

Order is the spec's: `ts_utc`, then source file name, then row number in that file; both tie
breakers stay in the view as `source_file` / `source_row` (the row's provenance). The sort is a
distribution sort with bounded memory: pass 1 reads only the sort column to pick bucket
boundaries, pass 2 spills each input batch into per-bucket Arrow files, pass 3 sorts one bucket at
a time into parquet parts. Memory is bounded by one bucket (`bucket_rows`), not by the input.

Outputs are deterministic, so a re-run writes byte-identical parts: an existing identical part is
kept (resume after a crash), a different one is a conflict and fails.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from fp_platform.contracts.canonical import canonical_json, digest, sha256_file, sha256_hex
from fp_platform.contracts.evidence import ObjectExistsError, utc_now_iso
from fp_platform.substrate.object_store import S3ObjectStore

MANIFEST_NAME = "_stream_view_manifest.json"
RECEIPT_NAME = "_stream_sort_receipt.json"
TIE_BREAKERS = ("source_file", "source_row")


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
    bucket_rows: int = 1_000_000
    batch_rows: int = 65_536

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
        return False, (f"receipt input fingerprint {receipt.get('input_fingerprint')} != "
                       f"current inputs {job.input_fingerprint}")
    present = {k.rsplit("/", 1)[-1] for k in store.iter_keys(job.bucket, job.output_prefix)}
    missing = [p["file"] for p in receipt.get("parts", []) if p["file"] not in present]
    if missing or MANIFEST_NAME not in present:
        return False, f"view is missing {', '.join(missing or [MANIFEST_NAME])}"
    return True, "receipt matches inputs and every part is present"


def _download(store: S3ObjectStore, job: SortJob, workdir: Path) -> list[Path]:
    local = []
    for f in sorted(job.inputs, key=lambda f: f.name):
        path = workdir / "inputs" / f.name
        path.parent.mkdir(parents=True, exist_ok=True)
        store.client.download_file(job.bucket, f.key, str(path))
        if sha256_file(path) != f.sha256:
            raise StreamSortConflict(f"{job.output_id}: input {f.key} does not match its sealed sha256")
        local.append(path)
    return local


def _boundaries(files: list[Path], sort_key: str, n_buckets: int) -> np.ndarray:
    """Bucket edges at quantiles of the sort key (pass 1 reads only that column)."""
    if n_buckets <= 1:
        return np.array([], dtype=np.int64)
    keys = np.concatenate([
        pq.read_table(f, columns=[sort_key]).column(0).cast(pa.int64()).to_numpy() for f in files
    ])
    return np.unique(np.quantile(keys, np.linspace(0, 1, n_buckets + 1)[1:-1], method="lower").astype(np.int64))


def _spill(files: list[Path], job: SortJob, edges: np.ndarray, spill_dir: Path) -> list[Path]:
    """Pass 2: every input row, tagged with its file and row number, into its bucket's file."""
    spill_dir.mkdir(parents=True, exist_ok=True)
    paths = [spill_dir / f"bucket-{b:05d}.arrow" for b in range(len(edges) + 1)]
    writers: dict[int, ipc.RecordBatchFileWriter] = {}
    try:
        for path in files:
            parquet = pq.ParquetFile(path)
            row = 0
            for batch in parquet.iter_batches(batch_size=job.batch_rows):
                n = batch.num_rows
                batch = batch.append_column("source_file", pa.array([path.name] * n, pa.string()))
                batch = batch.append_column("source_row", pa.array(np.arange(row, row + n, dtype=np.int64)))
                row += n
                keys = batch.column(job.sort_key).cast(pa.int64()).to_numpy()
                which = np.searchsorted(edges, keys, side="right")
                for b in np.unique(which):
                    part = batch.filter(pa.array(which == b))
                    if b not in writers:
                        writers[b] = ipc.new_file(paths[b], part.schema)
                    writers[b].write_batch(part)
    finally:
        for w in writers.values():
            w.close()
    return [p for p in paths if p.exists()]


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


def run_sort(store: S3ObjectStore, job: SortJob, workdir: Path,
             progress: Callable[[str], None] = lambda _: None) -> dict:
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
    files = _download(store, job, workdir)
    total_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    n_buckets = max(1, math.ceil(total_rows / job.bucket_rows))
    edges = _boundaries(files, job.sort_key, n_buckets)
    progress(f"{job.output_id}: {total_rows} rows in {len(files)} files → {len(edges) + 1} buckets")
    spills = _spill(files, job, edges, workdir / "spill")

    parts, out_rows, part_no = [], 0, 0
    order = [(job.sort_key, "ascending")] + [(c, "ascending") for c in TIE_BREAKERS]
    for spill in spills:
        with ipc.open_file(spill) as reader:
            table = reader.read_all().sort_by(order)
        spill.unlink()
        for start in range(0, table.num_rows, job.rows_per_part):
            chunk = table.slice(start, job.rows_per_part)
            name = f"part-{part_no:05d}.parquet"
            sink = pa.BufferOutputStream()
            pq.write_table(chunk, sink, compression="zstd")
            body = sink.getvalue().to_pybytes()
            _put_part(store, job, name, body)
            keys = chunk.column(job.sort_key)
            parts.append({"file": name, "rows": chunk.num_rows, "sha256": sha256_hex(body),
                          "bytes": len(body), "first_key": str(keys[0].as_py()), "last_key": str(keys[-1].as_py())})
            out_rows += chunk.num_rows
            part_no += 1
        progress(f"{job.output_id}: {out_rows}/{total_rows} rows sorted")
    if out_rows != total_rows:
        raise StreamSortConflict(f"{job.output_id}: wrote {out_rows} rows but read {total_rows}")

    sort_key = [job.sort_key, *TIE_BREAKERS]
    manifest = {"output_id": job.output_id, "platform_run_id": job.platform_run_id, "sort_key": sort_key,
                "rows": out_rows, "parts": parts, "format": "parquet"}
    _put_part(store, job, MANIFEST_NAME, canonical_json(manifest))
    receipt = {
        "output_id": job.output_id,
        "platform_run_id": job.platform_run_id,
        "sort_key": sort_key,
        "input_fingerprint": job.input_fingerprint,
        "output_fingerprint": digest([[p["file"], p["rows"], p["sha256"]] for p in parts]),
        "inputs": [asdict(f) for f in sorted(job.inputs, key=lambda f: f.name)],
        "parts": parts,
        "counts": {"input_rows": total_rows, "output_rows": out_rows, "input_files": len(files),
                   "output_files": len(parts), "buckets": len(edges) + 1},
        "started_at_utc": started,
        "ended_at_utc": utc_now_iso(),
        "elapsed_s": round(time.monotonic() - t0, 3),
    }
    store.put(job.bucket, job.output_prefix + RECEIPT_NAME, canonical_json(receipt), write_once=True)
    return {**receipt, "skipped": False}

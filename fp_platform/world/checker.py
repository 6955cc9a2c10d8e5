"""P3 checker (fail-closed): every required output has sealed input, shards, manifest, receipt;
its rows are in stream order; its counts match from input to view."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.world.oracle_store import OracleConflict, OracleLayout, read_sealed_manifest
from fp_platform.world.stream_sort import MANIFEST_NAME, RECEIPT_NAME, TIE_BREAKERS, InputFile, SortJob


@dataclass
class OutputCheck:
    output_id: str
    problems: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems


def sort_job_for(layout: OracleLayout, manifest: dict, platform_run_id: str, output_id: str, sort_key: str) -> SortJob:
    """The stream-sort job of one output, with its inputs taken from the sealed pack."""
    files = manifest["outputs"][output_id]["files"]
    return SortJob(
        platform_run_id=platform_run_id,
        output_id=output_id,
        bucket=layout.bucket,
        inputs=tuple(InputFile(key=f["key"], size=f["size"], sha256=f["sha256"]) for f in files),
        output_prefix=layout.view(output_id),
        sort_key=sort_key,
    )


def first_out_of_order(ts: np.ndarray, file_rank: np.ndarray, row: np.ndarray) -> int | None:
    """Index of the first row whose (ts, file, row) key is not strictly above its predecessor."""
    if len(ts) < 2:
        return None
    a, b = slice(None, -1), slice(1, None)
    ok = (ts[b] > ts[a]) | (
        (ts[b] == ts[a]) & ((file_rank[b] > file_rank[a]) | ((file_rank[b] == file_rank[a]) & (row[b] > row[a])))
    )
    bad = np.flatnonzero(~ok)
    return int(bad[0]) + 1 if len(bad) else None


def check_output(store: S3ObjectStore, layout: OracleLayout, manifest: dict, job: SortJob) -> OutputCheck:
    result = OutputCheck(job.output_id)
    sealed = manifest["outputs"].get(job.output_id)
    if sealed is None:
        result.problems.append("not in the sealed pack")
        return result
    result.rows["sealed"] = sealed["rows"]
    for f in sealed["files"]:
        if store.head(layout.bucket, f["key"]) is None:
            result.problems.append(f"input {f['key']} missing")
    try:
        receipt = json.loads(store.get(layout.bucket, job.output_prefix + RECEIPT_NAME))
        view_manifest = json.loads(store.get(layout.bucket, job.output_prefix + MANIFEST_NAME))
    except FileNotFoundError as exc:
        result.problems.append(f"stream view incomplete: {exc} missing")
        return result
    if receipt.get("input_fingerprint") != job.input_fingerprint:
        result.problems.append("receipt was made from other inputs than the sealed pack's")
    result.rows["receipt_in"] = receipt["counts"]["input_rows"]
    result.rows["view_manifest"] = view_manifest["rows"]

    # Ordering and counts, read from the shards themselves (only the key columns).
    keys = [job.sort_key, *TIE_BREAKERS]
    prev: tuple | None = None
    shard_rows = 0
    for part in view_manifest["parts"]:
        key = job.output_prefix + part["file"]
        try:
            body = store.get(layout.bucket, key)
        except FileNotFoundError:
            result.problems.append(f"shard {part['file']} missing")
            continue
        table = pq.read_table(pa.BufferReader(body), columns=keys)
        ts = table.column(0).cast(pa.int64()).to_numpy()
        files = table.column(1).to_numpy(zero_copy_only=False).astype(str)
        rows = table.column(2).to_numpy()
        names = np.unique(files)
        rank = np.searchsorted(names, files)
        bad = first_out_of_order(ts, rank, rows)
        if bad is None and prev is not None and len(ts) and (ts[0], files[0], rows[0]) <= prev:
            bad = 0
        if bad is not None:
            at = table.slice(bad, 1).to_pylist()[0]
            result.problems.append(
                f"rows out of order in {part['file']} at row {bad}: "
                f"{ {k: str(v) for k, v in at.items()} } does not follow the previous row"
            )
            break
        if len(ts):
            prev = (ts[-1], files[-1], rows[-1])
        shard_rows += table.num_rows
    result.rows["view_shards"] = shard_rows
    if len(set(result.rows.values())) > 1:
        result.problems.append(f"counts differ: {result.rows}")
    return result


def check_all(
    store: S3ObjectStore, layout: OracleLayout, platform_run_id: str, output_sort_keys: dict[str, str]
) -> tuple[dict, list[OutputCheck]]:
    """Check every required output; returns (sealed manifest or {}, per-output results)."""
    try:
        manifest = read_sealed_manifest(store, layout)
    except OracleConflict as exc:
        return {}, [OutputCheck(o, [str(exc)]) for o in output_sort_keys]
    return manifest, [
        check_output(store, layout, manifest, sort_job_for(layout, manifest, platform_run_id, o, key))
        for o, key in output_sort_keys.items()
    ]

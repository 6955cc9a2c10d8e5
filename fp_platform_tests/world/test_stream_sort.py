"""Stream sort on the real stack with a small tie-heavy input: the in-memory path and the spilling
path write byte-identical views in the spec's order; a valid receipt skips, a foreign view fails."""

import hashlib
import uuid
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.world import stream_sort

NAMES = ("b.parquet", "a.parquet", "c.parquet")  # listed out of name order on purpose
ROWS = 300


def _input(seed: int) -> pa.Table:
    """Few distinct timestamps, so ties within and across files decide most of the order."""
    rng = np.random.default_rng(seed)
    ts = 1_522_540_800_000 + 1000 * rng.integers(0, 40, ROWS)
    return pa.table(
        {
            "event_id": [f"evt_{seed}_{i}" for i in range(ROWS)],
            "ts_utc": pa.array(ts, pa.timestamp("ms", tz="UTC")),
            "amount": rng.random(ROWS),
        }
    )


@pytest.fixture(scope="module")
def sort_inputs(h, stack):
    store, bucket = S3ObjectStore(h), h.get("S3_ORACLE_BUCKET")
    prefix = f"tests/stream-sort-{uuid.uuid4().hex}/"
    inputs, tables = [], {}
    for seed, name in enumerate(NAMES):
        tables[name] = _input(seed)
        sink = pa.BufferOutputStream()
        pq.write_table(tables[name], sink)
        body = sink.getvalue().to_pybytes()
        store.put(bucket, prefix + "raw/" + name, body, write_once=True)
        inputs.append(stream_sort.InputFile(prefix + "raw/" + name, len(body), hashlib.sha256(body).hexdigest()))
    job = stream_sort.SortJob(
        platform_run_id="platform_19700101T000000Z",
        output_id="traffic_fraud",
        bucket=bucket,
        inputs=tuple(inputs),
        output_prefix=prefix + "memory/",
        rows_per_part=64,
    )
    yield store, job, tables
    for key in store.list_keys(bucket, prefix):
        store.client.delete_object(Bucket=bucket, Key=key)


def _view(store: S3ObjectStore, job: stream_sort.SortJob, receipt: dict) -> list[bytes]:
    return [store.get(job.bucket, job.output_prefix + p["file"]) for p in receipt["parts"]]


def test_spilling_and_in_memory_sorts_write_the_same_view_in_stream_order(sort_inputs, tmp_path):
    store, job, tables = sort_inputs
    spilling = replace(job, output_prefix=job.output_prefix.replace("memory/", "spill/"), bucket_rows=50, batch_rows=37)
    in_memory = stream_sort.run_sort(store, job, tmp_path / "memory")
    spilled = stream_sort.run_sort(store, spilling, tmp_path / "spill")
    assert in_memory["counts"]["buckets"] == 1 and spilled["counts"]["buckets"] > 5
    assert spilled["parts"] == in_memory["parts"] and spilled["output_fingerprint"] == in_memory["output_fingerprint"]
    assert _view(store, spilling, spilled) == _view(store, job, in_memory)

    view = pa.concat_tables(pq.read_table(pa.BufferReader(b)) for b in _view(store, job, in_memory))
    assert view.column_names == ["event_id", "ts_utc", "amount", "source_file", "source_row"]
    assert view.schema.field("source_file").type == pa.string() and view.schema.field("source_row").type == pa.int64()
    expected = sorted(
        (ts, name, row)
        for name, t in tables.items()
        for row, ts in enumerate(t.column("ts_utc").cast(pa.int64()).to_pylist())
    )
    got = list(
        zip(
            view.column("ts_utc").cast(pa.int64()).to_pylist(),
            view.column("source_file").to_pylist(),
            view.column("source_row").to_pylist(),
            strict=True,
        )
    )
    assert got == expected
    assert view.column("event_id").to_pylist() == [tables[f].column("event_id")[r].as_py() for _, f, r in expected]
    assert [p["rows"] for p in in_memory["parts"]] == [64] * (len(NAMES) * ROWS // 64) + [len(NAMES) * ROWS % 64]
    first = in_memory["parts"][0]
    assert first["first_key"] == str(view.column("ts_utc")[0].as_py())


def test_a_valid_receipt_skips_and_a_foreign_view_fails(sort_inputs, tmp_path):
    store, job, _ = sort_inputs
    first = stream_sort.run_sort(store, job, tmp_path / "first")
    again = stream_sort.run_sort(store, job, tmp_path / "again")
    assert again["skipped"] and again["output_fingerprint"] == first["output_fingerprint"]
    other_inputs = replace(job, inputs=job.inputs[:2])
    with pytest.raises(stream_sort.StreamSortConflict, match="input fingerprint"):
        stream_sort.run_sort(store, other_inputs, tmp_path)

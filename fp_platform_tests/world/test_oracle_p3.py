"""P3 ORACLE_READY end to end on the real stack (smoke world): gates, idempotence, per-output
rerun, a corrupted shard, and the bounded-memory sort path."""

import json
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fp_platform.cli import main as cli
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.world import checker, jobs, oracle_store, stream_sort
from fp_platform.world.layout import oracle_layout, required_output_ids
from fp_platform_tests.support import unique_run_id

pytestmark = pytest.mark.e2e

TIMING = ("started_at_utc", "ended_at_utc", "elapsed_s")


@pytest.fixture(scope="module")
def p3_run(h, dagster_env):
    run_id = unique_run_id()
    assert cli(["run", "--run-id", run_id, "--until", "P3", "--scale", "smoke"]) == 0
    return run_id


def _receipt(h, run_id, output_id):
    layout = oracle_layout(h, run_id)
    return json.loads(S3ObjectStore(h).get(layout.bucket, layout.view(output_id) + stream_sort.RECEIPT_NAME))


def test_p3_gates_pass_with_evidence(h, p3_run):
    writer = run_evidence(h, p3_run)
    names = set(writer.list())
    for f in ("oracle/seed_snapshot.json", "oracle/stream_sort_summary.json", "oracle/checker_pass.json"):
        assert f in names
    verdict = writer.read("oracle/checker_pass.json")
    assert verdict["verdict"] == "PASS" and set(verdict["outputs"]) == set(required_output_ids(h))
    for o, r in verdict["outputs"].items():
        assert len(set(r["rows"].values())) == 1 and r["rows"]["view_shards"] > 1000, o
    assert writer.read("gates/P3/oracle_checker.json")["verdict"] == "PASS"


def test_rerunning_p3_does_no_work(h, p3_run):
    store, layout = S3ObjectStore(h), oracle_layout(h, p3_run)
    receipts = {o: store.get(layout.bucket, layout.view(o) + stream_sort.RECEIPT_NAME) for o in required_output_ids(h)}
    seal = store.get(layout.bucket, layout.pack + oracle_store.SEALED)
    assert cli(["run", "--run-id", p3_run, "--until", "P3"]) == 0
    snapshot = run_evidence(h, p3_run).read("oracle/seed_snapshot.json")
    assert snapshot["uploaded"] == 0 and snapshot["skipped"] == snapshot["object_count"]
    assert store.get(layout.bucket, layout.pack + oracle_store.SEALED) == seal
    for o, body in receipts.items():
        assert store.get(layout.bucket, layout.view(o) + stream_sort.RECEIPT_NAME) == body


def test_sealing_different_content_fails(h, p3_run):
    store, layout = S3ObjectStore(h), oracle_layout(h, p3_run)
    manifest = oracle_store.read_sealed_manifest(store, layout)
    tampered = {**manifest, "pack_fingerprint": "0" * 64}
    with pytest.raises(oracle_store.OracleConflict, match="already sealed"):
        oracle_store.seal(store, layout, tampered)
    assert oracle_store.verify_pack(store, layout, strict=True) == []


def test_one_output_is_restored_alone_with_an_identical_receipt(h, p3_run):
    store, layout = S3ObjectStore(h), oracle_layout(h, p3_run)
    before = _receipt(h, p3_run, "arrival_entities")
    for key in store.list_keys(layout.bucket, layout.view("arrival_entities")):
        store.client.delete_object(Bucket=layout.bucket, Key=key)
    assert cli(["run", "--run-id", p3_run, "--asset", "oracle_checker"]) == 1  # fails closed while missing
    assert "arrival_entities" in json.dumps(run_evidence(h, p3_run).read("oracle/checker_pass.json"))
    assert cli(["run", "--run-id", p3_run, "--asset", "stream_view/arrival_entities"]) == 0
    after = _receipt(h, p3_run, "arrival_entities")
    assert {k: v for k, v in after.items() if k not in TIMING} == {k: v for k, v in before.items() if k not in TIMING}
    assert cli(["run", "--run-id", p3_run, "--asset", "oracle_checker"]) == 0


def test_bounded_memory_sort_matches_the_in_memory_order(h, p3_run, tmp_path):
    store, layout = S3ObjectStore(h), oracle_layout(h, p3_run)
    manifest = oracle_store.read_sealed_manifest(store, layout)
    base = checker.sort_job_for(layout, manifest, p3_run, "traffic_fraud", "ts_utc")
    job = stream_sort.SortJob(
        **{
            **base.__dict__,
            "output_prefix": f"tests/sort-{uuid.uuid4().hex}/",
            "bucket_rows": 1000,
            "rows_per_part": 700,
            "batch_rows": 256,
        }
    )
    receipt = stream_sort.run_sort(store, job, tmp_path)
    assert receipt["counts"]["buckets"] > 3 and receipt["counts"]["output_files"] > 5
    result = checker.check_output(store, layout, manifest, job)
    assert result.passed, result.problems
    sorted_ids = (
        pa.concat_tables(
            [
                pq.read_table(
                    pa.BufferReader(store.get(layout.bucket, job.output_prefix + p["file"])), columns=["event_id"]
                )
                for p in receipt["parts"]
            ]
        )
        .column(0)
        .to_pylist()
    )
    view = _receipt(h, p3_run, "traffic_fraud")
    reference = (
        pa.concat_tables(
            [
                pq.read_table(
                    pa.BufferReader(store.get(layout.bucket, layout.view("traffic_fraud") + p["file"])),
                    columns=["event_id"],
                )
                for p in view["parts"]
            ]
        )
        .column(0)
        .to_pylist()
    )
    assert sorted_ids == reference


def test_a_corrupted_shard_fails_the_checker_naming_output_and_row(h, p3_run):
    store, layout = S3ObjectStore(h), oracle_layout(h, p3_run)
    key = layout.view("flow_anchor_fraud") + "part-00000.parquet"
    table = pq.read_table(pa.BufferReader(store.get(layout.bucket, key)))
    swapped = pa.concat_tables([table.slice(0, 10), table.slice(11, 1), table.slice(10, 1), table.slice(12)])
    sink = pa.BufferOutputStream()
    pq.write_table(swapped, sink)
    store.client.delete_object(Bucket=layout.bucket, Key=key)
    store.put(layout.bucket, key, sink.getvalue().to_pybytes(), write_once=True)
    writer = run_evidence(h, p3_run, store=store)
    verdict = jobs.job_check(h, store, writer, None, lambda _: None)
    assert verdict["verdict"] == "FAIL"
    problems = " ".join(verdict["outputs"]["flow_anchor_fraud"]["problems"])
    assert "out of order in part-00000.parquet at row 11" in problems
    assert all(r["passed"] for o, r in verdict["outputs"].items() if o != "flow_anchor_fraud")

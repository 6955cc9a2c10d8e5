"""P12-P14 on the real stack: a smoke spine run, then the learning lane on it (`fp-platform run --until
P13`, then P14's job): the basis pinned by fingerprint, the Iceberg dataset read back by an ordinary
client, online/offline parity, a candidate tracked in MLflow that DF can load, and the leakage check
catching a late cutoff. (A smoke world's training week has no label history behind it, so its candidate
is judged against the floors but not required to reach them.)"""

import json
import subprocess
import sys

import duckdb
import pytest
from pyiceberg.expressions import EqualTo

from fp_platform.cli import main as cli
from fp_platform.learning import mf, ofs, tables
from fp_platform.rtdl import bundles
from fp_platform.substrate import db
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform_tests.control.conftest import unique_run_id

LEARNING_GATES = ("gates/P12/learning_input_basis.json", "gates/P13/ofs_dataset.json")


@pytest.fixture(scope="module")
def full_run(h, dagster_env):
    run_id = unique_run_id()
    assert cli(["run", "--run-id", run_id, "--scale", "smoke", "--until", "P13"]) == 0
    return run_id


@pytest.fixture(scope="module")
def trained(full_run) -> dict:
    code, result = job(full_run, "train")
    assert code == 0, result
    return result


def job(run_id: str, name: str, *args: str) -> tuple[int, dict]:
    out = subprocess.run([sys.executable, "-m", "fp_platform.learning.jobs", name, "--run-id", run_id, *args],
                         capture_output=True, text=True, timeout=900)
    return out.returncode, json.loads(out.stdout)


def test_the_learning_phases_pass_on_a_closed_spine_run(h, full_run):
    writer = run_evidence(h, full_run)
    for name in LEARNING_GATES:
        verdict = writer.read(name)
        assert verdict["verdict"] == "PASS", verdict
    basis = writer.read(h.get("LEARNING_INPUT_BASIS_PATH_PATTERN"))
    assert basis["closure_id"] == writer.read("run_completed.json")["closure_id"]
    assert basis["archive"]["label_events_archived"] >= basis["archive"]["label_assertions"] > 0
    w = basis["windows"]
    assert w["train_start"] < w["train_end"] < w["test_start"] < w["test_end"]
    assert basis["label_cutoff"] == w["test_start"]
    for key in ("OFS_DATASET_FINGERPRINT_PATH_PATTERN", "OFS_QUALITY_REPORT_PATH_PATTERN",
                "OFS_ROLLBACK_RECIPE_PATH_PATTERN"):
        assert writer.exists(h.get(key)), key


def test_parity_compares_every_logged_vector_and_all_match(h, full_run):
    parity = run_evidence(h, full_run).read(h.get("OFS_PARITY_REPORT_PATH_PATTERN"))
    with db.connect(h) as conn:
        scored = conn.execute("SELECT count(*) FROM df_decisions WHERE platform_run_id = %s AND features IS NOT NULL",
                              (full_run,)).fetchone()[0]
    assert parity["scored_events"] == parity["compared"] == parity["matched"] == scored > 0
    assert parity["mismatched"] == 0 and parity["holds"]


def test_parity_lists_a_vector_that_differs(h, full_run):
    """The same check over an archive copy with one transaction's amount changed: its vectors are named."""
    writer, store = run_evidence(h, full_run), S3ObjectStore(h)
    with db.connect(h) as conn:
        segments = ofs.archive_reader.manifest(conn, full_run)
        con = ofs.load_archive(h, store, segments)
        event_id, customer = conn.execute(
            "SELECT d.event_id, d.features FROM df_decisions d WHERE d.platform_run_id = %s AND d.features IS NOT"
            " NULL AND (d.features->>'customer_nb_tx_30d')::int > 3 ORDER BY d.event_id LIMIT 1",
            (full_run,)).fetchone()
        con.execute("UPDATE tx SET amount = amount + 1000 WHERE event_id = ?", [event_id])
        report = ofs.parity(conn, con, ofs._topics(h), full_run, lambda m: None)
    assert not report["holds"] and report["mismatched"] >= 1
    changed = next(m for m in report["mismatches"] if m["event_id"] == event_id)
    assert "customer_avg_amount_1d" in changed["features"]
    assert writer.read(h.get("OFS_PARITY_REPORT_PATH_PATTERN"))["holds"]  # the check wrote nothing


def test_the_iceberg_table_is_readable_with_the_manifest_row_count(h, full_run):
    manifest = run_evidence(h, full_run).read(h.get("OFS_DATASET_MANIFEST_PATH_PATTERN"))
    table = tables.catalog(h).load_table(manifest["table"])
    rows = table.scan(row_filter=EqualTo("platform_run_id", full_run), snapshot_id=manifest["snapshot_id"]).to_arrow()
    assert rows.num_rows == manifest["rows"] > 0
    assert table.refs()[manifest["tag"]].snapshot_id == manifest["snapshot_id"]
    counts = dict(duckdb.sql("SELECT split, count(*) FROM rows GROUP BY 1").fetchall())
    assert counts.keys() == {"train", "test"} and sum(counts.values()) == manifest["rows"]


def test_the_candidate_is_tracked_and_df_can_load_it(h, full_run, trained):
    writer = run_evidence(h, full_run)
    receipt = writer.read(h.get("MF_CANDIDATE_BUNDLE_RECEIPT_PATH_PATTERN"))
    report = writer.read(h.get("MF_EVAL_REPORT_PATH_PATTERN"))
    assert receipt["provenance"]["dataset_fingerprint"] == writer.read(
        h.get("OFS_DATASET_MANIFEST_PATH_PATTERN"))["dataset_fingerprint"]
    assert receipt["provenance"]["mlflow_run_id"] == trained["mlflow_run_id"]
    assert mf.mlflow_run_problems(h, trained["mlflow_run_id"], trained["mlflow_model_uri"]) == []
    assert set(report["metrics"]) == {"candidate", "baseline"}
    assert all(0.0 <= m["card_precision_at_k"] <= 1.0 for m in report["metrics"].values())
    assert receipt["registered"] == all(f["passed"] for f in report["metric_floors"].values())
    assert not any(v for k, v in report["leakage"].items() if k != "test_known_compromised_cards_removed")
    for name in ("MF_MLFLOW_RUN_REFS_PATH_PATTERN", "MF_SAFE_DISABLE_PATH_PATTERN"):
        assert writer.exists(h.get(name))
    model = bundles.load_model(S3ObjectStore(h), receipt["model_ref"])
    with db.connect(h) as conn:
        features = conn.execute("SELECT features FROM df_decisions WHERE platform_run_id = %s"
                                " AND features IS NOT NULL LIMIT 1", (full_run,)).fetchone()[0]
        registered = conn.execute("SELECT feature_list FROM mpr_bundles WHERE bundle_id = %s AND bundle_version = %s",
                                  (receipt["bundle_id"], receipt["bundle_version"])).fetchone()
    assert 0.0 <= model.score({**features, "amount": 42.0}) <= 1.0
    assert (registered is not None) == receipt["registered"]
    assert registered is None or registered[0] == receipt["feature_list"]


def test_a_label_cutoff_after_the_test_start_is_caught_as_leakage(h, full_run):
    basis = run_evidence(h, full_run).read(h.get("LEARNING_INPUT_BASIS_PATH_PATTERN"))
    try:
        code, result = job(full_run, "basis", "--label-cutoff", basis["windows"]["test_end"])
        assert code == 0
        leak = result["label_leakage"]
        assert not leak["passed"] and leak["observed_after_test_start"] > 0
        assert all(e["observed_at"] > basis["windows"]["test_start"]
                   for e in leak["observed_after_test_start_examples"])
    finally:
        code, result = job(full_run, "basis")
    assert code == 0 and result["label_leakage"]["passed"] and result["basis_fingerprint"] == basis["basis_fingerprint"]

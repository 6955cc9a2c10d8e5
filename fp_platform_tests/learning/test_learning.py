"""The whole lifecycle on the real stack: `fp-platform run --scale smoke --full` runs a spine run through
learning and promotion (P1..P15), a second spine run deciding with the promoted bundle, and P16's verdict.
Then: the basis pinned by fingerprint, the Iceberg dataset read back by an ordinary client, online/offline
parity, the candidate tracked in MLflow, the promotion corridor's append-only registry events on Postgres and
Kafka, an incompatible candidate refused with its reason, and the leakage check catching a late cutoff.
The registry is restored to the bootstrap bundle afterwards (an appended ROLLED_BACK), as other tests expect."""

import json
import subprocess
import sys

import duckdb
import orjson
import psycopg
import pytest
from dagster import DagsterInstance, RunRequest, SkipReason, build_schedule_context, build_sensor_context
from pyiceberg.expressions import EqualTo

from fp_platform.cli import main as cli
from fp_platform.contracts import bundle_registry
from fp_platform.contracts.canonical import canonical_json
from fp_platform.contracts.gates import gate_evidence_name
from fp_platform.learning import model_factory, offline_dataset, promotion, retrain, tables
from fp_platform.learning.schedules import learning_retrain_schedule, new_labels_retrain
from fp_platform.operate.active_run import read_active_run
from fp_platform.resources import PlatformResource
from fp_platform.rtdl.policy import load_policy
from fp_platform.substrate import bundle_models, bus, db
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform_tests.support import unique_run_id

pytestmark = pytest.mark.e2e

LEARNING_GATES = (
    "gates/P12/learning_input_basis.json",
    "gates/P13/ofs_dataset.json",
    "gates/P14/mf_candidate.json",
    "gates/P15/mpr_promotion.json",
    "gates/P16/platform_verdict.json",
)


@pytest.fixture(scope="module")
def full_run(h, dagster_env):
    run_id = unique_run_id()
    code = cli(["run", "--run-id", run_id, "--scale", "smoke", "--full"])
    yield run_id
    boot, version = h.get("MPR_BOOTSTRAP_BUNDLE_ID"), str(load_policy(h).bootstrap["bundle_version"])
    with db.connect(h, autocommit=True) as conn, conn.transaction():
        bundle_registry.activate(
            conn,
            event_id=f"test:{run_id}:restore",
            event_type="ROLLED_BACK",
            bundle_id=boot,
            bundle_version=version,
            reason="test restores the bootstrap bundle",
            actor="test",
        )
    assert code == 0, "fp-platform run --full did not end with every phase and the verdict PASS"


@pytest.fixture(scope="module")
def verdict(h, full_run) -> dict:
    return run_evidence(h, full_run).read(h.get("PLATFORM_VERDICT_PATH_PATTERN"))


def job(run_id: str, name: str, *args: str) -> tuple[int, dict]:
    out = subprocess.run(
        [sys.executable, "-m", "fp_platform.learning.jobs", name, "--run-id", run_id, *args],
        capture_output=True,
        text=True,
        timeout=900,
    )
    return out.returncode, json.loads(out.stdout)


def test_full_ends_with_a_blocker_free_verdict(h, full_run, verdict):
    assert verdict["verdict"] == "PASS" and verdict["blockers"] == [], verdict["blockers"]
    assert set(verdict["proof_matrix"]) == {"spine", "ofs", "mf", "mpr", "teardown"}
    assert all(len(p) == 6 and all(x["passed"] for x in p.values()) for p in verdict["proof_matrix"].values())
    writer = run_evidence(h, full_run)
    assert writer.exists(h.pattern("LANE_PROOF_PATH_PATTERN", lane="teardown", proof_class="monitor"))
    assert writer.exists(h.get("PROOF_MATRIX_PATH_PATTERN"))
    scan = writer.read(h.get("VERDICT_WORKLOAD_SCAN_PATH_PATTERN"))  # P16's own scan, before any P17 of the run
    assert scan["error"] is None and scan["found"] == [] and scan["recorded_pids"], scan


def test_full_tears_the_first_run_down_after_its_verdict_and_keeps_the_second_active(h, full_run, verdict):
    writer = run_evidence(h, full_run)
    proof = writer.read(h.get("TEARDOWN_PROOF_PATH_PATTERN"))
    assert proof["torn_down_at_utc"] > writer.read(h.get("VERDICT_WORKLOAD_SCAN_PATH_PATTERN"))["scanned_at_utc"]
    assert writer.read(gate_evidence_name("P17", "teardown_proof"))["verdict"] == "PASS"
    assert read_active_run(h) == verdict["verification_run"]["platform_run_id"]


def test_the_run_report_carries_the_learning_lane_after_p16(h, full_run, verdict):
    writer = run_evidence(h, full_run)
    page = writer.store.get(writer.bucket, writer.key(h.get("RUN_REPORT_HTML_PATH_PATTERN"))).decode()
    chosen = writer.read(h.get("MF_EVAL_REPORT_PATH_PATTERN"))["selection"]["chosen"]
    section = page[page.index("<h2>Learning</h2>") :]
    assert chosen in section and ">PROMOTED</b>" in section and section.count("<svg") >= 2


def test_the_second_run_decides_with_the_promoted_bundle(h, full_run, verdict):
    receipt = run_evidence(h, full_run).read(h.get("MPR_PROMOTION_RECEIPT_PATH_PATTERN"))
    promoted = (receipt["candidate"]["bundle_id"], receipt["candidate"]["bundle_version"])
    second = verdict["verification_run"]["platform_run_id"]
    assert second != full_run
    with db.connect(h) as conn:
        used = conn.execute(
            "SELECT bundle_id, bundle_version, count(*), count(*) FILTER (WHERE score_source ="
            " 'model+rules') FROM df_decisions WHERE platform_run_id = %s GROUP BY 1, 2",
            (second,),
        ).fetchall()
    assert [(b, v) for b, v, _, _ in used] == [promoted]
    assert used[0][3] > 0  # the promoted model scored
    assert all(p["verdict"] == "PASS" for p in verdict["verification_run"]["phases"].values())


def test_the_corridor_is_append_only_registry_events_in_postgres_and_on_the_topic(h, full_run):
    writer = run_evidence(h, full_run)
    drill = writer.read(h.get("MPR_ROLLBACK_DRILL_REPORT_PATH_PATTERN"))
    assert [s["event_type"] for s in drill["steps"]] == ["PROMOTED", "ROLLED_BACK", "ROLLED_FORWARD"]
    assert drill["steps"][1]["resolved_active"] == [drill["previous"]["bundle_id"], drill["previous"]["bundle_version"]]
    ids = [s["event_id"] for s in drill["steps"]]
    with db.connect(h, role=db.OWNER) as conn:  # the trigger (the app role is refused by privileges first)
        seqs = [e["seq"] for e in bundle_registry.events_for(conn, ids)]
        assert seqs == sorted(seqs) and len(seqs) == 3
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute("UPDATE mpr_registry_events SET reason = 'rewritten' WHERE event_id = %s", (ids[0],))
    topic = h.topic("FP_BUS_LEARNING_REGISTRY_EVENTS_V1").name
    consumer = bus.scan_consumer(h)
    try:
        seen = {}
        for p in drill["published"]:
            assert "offset" in p, p
            msg = next(
                m
                for m in bus.read_partition(consumer, topic, p["partition"], start=p["offset"])
                if m.offset() == p["offset"]
            )
            env = orjson.loads(msg.value())
            seen[env["event_id"]] = env["payload"]["event_type"]
    finally:
        consumer.close()
    assert seen == {s["event_id"]: s["event_type"] for s in drill["steps"]}


def test_a_candidate_whose_features_ofp_does_not_serve_is_refused(h, full_run):
    """Compatibility fails closed and says why; nothing is appended to the registry."""
    store, tag = S3ObjectStore(h), unique_run_id()
    features = ["customer_nb_tx_1d", "customer_nb_tx_90d"]
    key = f"test/{tag}/model.json"
    store.put(
        h.get("S3_ARTIFACTS_BUCKET"),
        key,
        canonical_json({"kind": "logistic", "features": features, "coefficients": [0.1, 0.2], "intercept": 0.0}),
        write_once=True,
    )
    with db.connect(h, autocommit=True) as conn:
        with conn.transaction():
            bundle_registry.register(
                conn,
                bundle_id="test_incompatible",
                bundle_version=tag,
                policy_rev="test",
                model_ref=f"s3://{h.get('S3_ARTIFACTS_BUCKET')}/{key}",
                feature_version="ofp.v1",
                feature_list=features,
                thresholds={"REVIEW": 0.5},
            )
        before = conn.execute("SELECT count(*) FROM mpr_registry_events").fetchone()[0]
        result = promotion.compatibility(
            conn, store, {"bundle_id": "test_incompatible", "bundle_version": tag, "model_sha256": None}
        )
        after = conn.execute("SELECT count(*) FROM mpr_registry_events").fetchone()[0]
    assert not result["compatible"] and before == after
    assert any("customer_nb_tx_90d" in r and "not served" in r for r in result["reasons"]), result["reasons"]


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
    for key in (
        "OFS_DATASET_FINGERPRINT_PATH_PATTERN",
        "OFS_QUALITY_REPORT_PATH_PATTERN",
        "OFS_ROLLBACK_RECIPE_PATH_PATTERN",
    ):
        assert writer.exists(h.get(key)), key


def test_parity_compares_every_logged_vector_and_all_match(h, full_run):
    parity = run_evidence(h, full_run).read(h.get("OFS_PARITY_REPORT_PATH_PATTERN"))
    with db.connect(h) as conn:
        scored = conn.execute(
            "SELECT count(*) FROM df_decisions WHERE platform_run_id = %s AND features IS NOT NULL", (full_run,)
        ).fetchone()[0]
    assert parity["scored_events"] == parity["compared"] == parity["matched"] == scored > 0
    assert parity["mismatched"] == 0 and parity["holds"]


def test_parity_lists_a_vector_that_differs(h, full_run):
    """The same check over an archive copy with one transaction's amount changed: its vectors are named."""
    writer, store = run_evidence(h, full_run), S3ObjectStore(h)
    with db.connect(h) as conn:
        segments = offline_dataset.archive_reader.manifest(conn, full_run)
        con = offline_dataset.load_archive(h, store, segments)
        event_id, customer = conn.execute(
            "SELECT d.event_id, d.features FROM df_decisions d WHERE d.platform_run_id = %s AND d.features IS NOT"
            " NULL AND (d.features->>'customer_nb_tx_30d')::int > 3 ORDER BY d.event_id LIMIT 1",
            (full_run,),
        ).fetchone()
        con.execute("UPDATE tx SET amount = amount + 1000 WHERE event_id = ?", [event_id])
        report = offline_dataset.parity(conn, con, offline_dataset._topics(h), full_run, lambda m: None)
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
    assert {"train", "test"} <= counts.keys() <= {"history", "train", "test"}  # history: what selection validates on
    assert counts["train"] > 0 and counts["test"] > 0 and sum(counts.values()) == manifest["rows"]


def test_the_candidate_is_tracked_and_df_can_load_it(h, full_run):
    writer = run_evidence(h, full_run)
    refs = writer.read(h.get("MF_MLFLOW_RUN_REFS_PATH_PATTERN"))
    receipt = writer.read(h.get("MF_CANDIDATE_BUNDLE_RECEIPT_PATH_PATTERN"))
    report = writer.read(h.get("MF_EVAL_REPORT_PATH_PATTERN"))
    assert (
        receipt["provenance"]["dataset_fingerprint"]
        == writer.read(h.get("OFS_DATASET_MANIFEST_PATH_PATTERN"))["dataset_fingerprint"]
    )
    assert receipt["provenance"]["mlflow_run_id"] == refs["run_id"]
    assert model_factory.mlflow_run_problems(h, refs["run_id"], refs["model_uri"]) == []
    assert set(report["metrics"]) == {"candidate", "baseline"}
    assert all(0.0 <= m["card_precision_at_k"] <= 1.0 for m in report["metrics"].values())
    assert receipt["registered"] and all(f["passed"] for f in report["metric_floors"].values())
    assert not any(v for k, v in report["leakage"].items() if k != "test_known_compromised_cards_removed")
    for name in ("MF_MLFLOW_RUN_REFS_PATH_PATTERN", "MF_SAFE_DISABLE_PATH_PATTERN"):
        assert writer.exists(h.get(name))
    model = bundle_models.load_model(S3ObjectStore(h), receipt["model_ref"])
    with db.connect(h) as conn:
        features = conn.execute(
            "SELECT features FROM df_decisions WHERE platform_run_id = %s AND features IS NOT NULL LIMIT 1", (full_run,)
        ).fetchone()[0]
        registered = conn.execute(
            "SELECT feature_list FROM mpr_bundles WHERE bundle_id = %s AND bundle_version = %s",
            (receipt["bundle_id"], receipt["bundle_version"]),
        ).fetchone()
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
        assert all(
            e["observed_at"] > basis["windows"]["test_start"] for e in leak["observed_after_test_start_examples"]
        )
    finally:
        code, result = job(full_run, "basis")
    assert code == 0 and result["label_leakage"]["passed"] and result["basis_fingerprint"] == basis["basis_fingerprint"]


def test_retrain_schedule_and_label_sensor_request_the_closed_run_not_yet_promoted(h, full_run, verdict):
    """The promoted run is done; the second (the newest closed, never learned from) is what a retrain takes."""
    second = verdict["verification_run"]["platform_run_id"]
    resources = {"platform": PlatformResource(profile="local")}
    with db.connect(h) as conn:
        assert retrain.run_to_learn_from(h, conn) == second
        arrived, high = retrain.labels_past(conn, 0)
    request = learning_retrain_schedule(
        build_schedule_context(instance=DagsterInstance.ephemeral(), resources=resources)
    )
    assert isinstance(request, RunRequest) and request.partition_key == second
    needed = int(h.get("LEARNING_RETRAIN_MIN_NEW_LABELS"))
    assert arrived >= needed  # the two smoke runs' labels
    fired = new_labels_retrain(
        build_sensor_context(instance=DagsterInstance.ephemeral(), cursor="0", resources=resources)
    )
    assert [r.partition_key for r in fired.run_requests] == [second] and fired.cursor == str(high)
    quiet = new_labels_retrain(
        build_sensor_context(instance=DagsterInstance.ephemeral(), cursor=str(high), resources=resources)
    )
    assert isinstance(quiet, SkipReason) and "0 new label assertions" in quiet.skip_message

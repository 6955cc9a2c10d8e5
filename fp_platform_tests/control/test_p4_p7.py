"""P4-P11 end to end on the real stack (smoke world): a bounded run with the duplicates drill through
run closure, the single-writer reporter, a WSP rerun that admits nothing, the payload-mismatch drill, and
an IG killed mid-stream."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from fp_platform.cli import main as cli
from fp_platform.contracts.envelope import OUTPUT_EVENT_CLASSES, record_identity, topic_key_for
from fp_platform.control.world_streamer import WspOptions, find_ready
from fp_platform.operate import daemons, packs
from fp_platform.substrate import bus, db
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform_tests.support import unique_run_id

pytestmark = pytest.mark.e2e

BOUND = 200


@pytest.fixture(scope="module")
def p7_run(h, dagster_env):
    run_id = unique_run_id()
    assert (
        cli(
            [
                "run",
                "--run-id",
                run_id,
                "--scale",
                "smoke",
                "--max-events-per-output",
                str(BOUND),
                "--drill",
                "duplicates",
            ]
        )
        == 0
    )
    return run_id


def wsp(run_id: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "fp_platform.control.jobs", "wsp", "--run-id", run_id, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(out.stdout)


def admitted_ids(h, run_id: str) -> dict[str, set[str]]:
    with db.connect(h) as conn:
        rows = conn.execute(
            "SELECT topic, event_id FROM ig_receipts WHERE platform_run_id = %s AND decision = 'ADMIT'", (run_id,)
        ).fetchall()
    out: dict[str, set[str]] = {}
    for topic, event_id in rows:
        out.setdefault(topic, set()).add(event_id)
    return out


def bus_ids(h, run_id: str, topic: str) -> list[str]:
    c = bus.scan_consumer(h)
    try:
        found = []
        for p in bus.partitions(c, topic):
            for m in bus.read_partition(c, topic, p):
                ident = record_identity(m.headers())
                if ident.get("platform_run_id") == run_id and ident.get("publisher") == h.get("COMPONENT_ID_IG"):
                    found.append(ident["event_id"])
        return found
    finally:
        c.close()


def test_bounded_run_reaches_p10_with_packs_supervised(h, p7_run):
    writer = run_evidence(h, p7_run)
    assert writer.read("gates/P2/daemons_ready.json")["verdict"] == "PASS"
    ready = writer.read("operate/daemons_ready.json")
    core = next(p for p in ready["packs"] if p["pack_id"] == "rtdl_core")
    assert core["running"] and len(core["workers"]) == 5  # archive, IEG, the decision processor; OFP and CSFB in it
    assert all(w["heartbeat_run_id"] == p7_run and len(w["processes"]) == 1 for w in core["workers"])
    assert writer.read("gates/P8/rtdl_caught_up.json")["verdict"] == "PASS"
    caught = writer.read("rtdl_core/caught_up.json")
    assert caught["max_lag"] == 0 and caught["derived_coverage"]["ofp_features"] == BOUND
    assert (
        caught["degrade_counts"]["csfb_bindings"]["READY"]
        + caught["degrade_counts"]["csfb_bindings"]["MISSING_CONTEXT"]
        + caught["degrade_counts"]["csfb_bindings"]["LATE_CONTEXT"]
        == BOUND
    )
    closure = writer.read("rtdl_core/archive_closure.json")
    data_topics = {h.topic(topic_key_for(OUTPUT_EVENT_CLASSES[o])).name for o in h.get("ORACLE_REQUIRED_OUTPUT_IDS")}
    assert sum(s["records"] for s in closure["segments"] if s["topic"] in data_topics) == BOUND * len(data_topics)
    committed = writer.read("rtdl_core/offsets_snapshot.json")["kafka_committed"]
    assert committed["kafka_ahead_of_db"] == []
    lane = next(p for p in ready["packs"] if p["pack_id"] == "rtdl_decision_lane")
    assert lane["running"] and len(lane["workers"]) == 4  # AL, DLA; DL and DF in the decision processor
    for asset in ("decision_summary", "action_summary", "audit_summary"):
        assert writer.read(f"gates/P9/{asset}.json")["verdict"] == "PASS", asset
    decisions = writer.read("decision_lane/decision_summary.json")
    assert decisions["decisions"] == BOUND and decisions["posture_events"]
    assert writer.read("decision_lane/action_summary.json")["outcomes"] == BOUND
    audit = writer.read("decision_lane/audit_summary.json")
    assert audit["chains"] == BOUND and audit["lineage_unresolved_total"] == 0
    for asset in ("case_summary", "label_summary"):
        assert writer.read(f"gates/P10/{asset}.json")["verdict"] == "PASS", asset
    cases = writer.read("case_labels/case_summary.json")
    assert cases["chains"] == BOUND and cases["triggers"] == cases["triggers_expected"] == cases["cases"]
    labels = writer.read("case_labels/label_summary.json")
    assert labels["assertions"] == labels["assertions_expected"] and labels["label_events_unsent"] == 0
    # GREEN while they served (the P9 and P10 gates judge their health); the run ended with P17, which stops the
    # closed run's workers cleanly
    assert writer.read("gates/P17/teardown_proof.json")["verdict"] == "PASS"
    for component in ("decision_fabric", "action_layer", "decision_log_audit", "case_trigger", "label_store"):
        assert writer.read(f"{component}/health/last_health.json")["health_state"] == "STOPPED", component


def test_run_closure_p11_proves_the_run(h, p7_run):
    writer = run_evidence(h, p7_run)
    verdict = writer.read("gates/P11/run_closure.json")
    assert verdict["verdict"] == "PASS", verdict
    assert {g["name"] for g in verdict["gates"]} >= {
        "single_writer",
        "evidence_complete",
        "reconciliation_holds",
        "replay_anchors_valid",
        "conformance_pass",
        "drills_observed",
        "spine_closeout",
        "run_completed",
    }
    recon = writer.read("reconciliation.json")
    assert recon["holds"] and recon["funnel"]["admitted_traffic"] == recon["funnel"]["decisions"] == BOUND
    assert recon["funnel"]["DUPLICATE"] > 0
    anchors = writer.read("replay_anchors.json")
    assert not anchors["problems"] and h.topic("FP_BUS_RTDL_V1").name in anchors["topics"]
    assert writer.read("obs/environment_conformance.json")["status"] == "PASS"
    drill = writer.read("drills/duplicates.json")
    assert drill["verdict"] == "PASS" and drill["expected"] == drill["observed"]
    assert drill["observed"]["duplicate_receipts"] > 0
    report = writer.read("run_report.json")
    assert report["status"] == "PASS" and [p["phase_id"] for p in report["phases"]][-1] == "P10"
    html = writer.store.get(writer.bucket, writer.key("run_report.html")).decode()
    assert "<svg" in html and p7_run in html and "Decision mix" in html
    gov = writer.store.get(writer.bucket, writer.key("obs/governance/events.jsonl")).decode().splitlines()
    assert {json.loads(line)["event_type"] for line in gov} >= {"RUN_CLOSED", "DRILL_OBSERVED"}
    marker = writer.read("run_completed.json")
    assert marker["run_status"] == "PASS" and marker["closure_id"] == report["closure_id"]
    assert marker["written_at_utc"] >= report["written_at_utc"]  # written last


def test_replay_anchors_are_what_a_plain_reader_of_every_topic_finds(h, p7_run):
    """Issue 20: the anchors cover every record of the run on every topic and partition (control's READY
    and smoke, both rtdl partitions, the whole audit topic), as confluent-kafka alone reads them."""
    from fp_platform_tests.obs_gov.test_replay_anchors import plain_reader_ranges

    anchors = run_evidence(h, p7_run).read("replay_anchors.json")
    mine = {
        (topic, a["partition"]): (a["first_offset"], a["last_offset"], a["records"])
        for topic, rows in anchors["topics"].items()
        for a in rows
    }
    assert mine == plain_reader_ranges(h, p7_run) and not anchors["problems"]
    control = {k: v for k, v in mine.items() if k[0] == h.topic("FP_BUS_CONTROL_V1").name}
    assert sum(n for _, _, n in control.values()) >= 2  # READY (SR) and the P4 smoke (IG)
    assert {p for t, p in mine if t == h.topic("FP_BUS_RTDL_V1").name} == {0, 1}


def reporter(run_id: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fp_platform.obs_gov.jobs", "report", "--run-id", run_id],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_second_reporter_fails_closed_while_one_holds_the_lock(h, p7_run):
    from fp_platform.obs_gov.reporter import run_lock

    writer = run_evidence(h, p7_run)
    before = writer.read("run_completed.json")
    first = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from fp_platform.handles import handles\n"
            "from fp_platform.obs_gov.reporter import run_lock\n"
            f"with run_lock(handles(), {p7_run!r}):\n"
            "    print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout.readline().strip() == "held"
        second = reporter(p7_run)
        assert second.returncode == 3, second.stderr
        assert "is held by fp-reporter" in second.stderr and "fails closed" in second.stderr
        assert writer.read("run_completed.json") == before  # it wrote nothing
        with pytest.raises(Exception, match="held by"), run_lock(h, p7_run):
            pass
    finally:
        first.kill()
        first.wait()
    with db.connect(h) as conn:
        refused = conn.execute(
            "SELECT count(*) FROM gov_events WHERE platform_run_id = %s AND event_type = 'REPORTER_REFUSED'", (p7_run,)
        ).fetchone()[0]
    assert refused >= 1
    again = reporter(p7_run)  # the lock is free again: a rerun regenerates the derived closure
    assert again.returncode == 0, again.stderr
    assert writer.read("run_completed.json")["closure_id"] != before["closure_id"]


def test_p11_fails_closed_naming_a_deleted_required_file(h, p7_run):
    writer = run_evidence(h, p7_run)
    name = "decision_lane/action_summary.json"
    body = writer.store.get(writer.bucket, writer.key(name))
    marker = writer.read("run_completed.json")
    writer.store.client.delete_object(Bucket=writer.bucket, Key=writer.key(name))
    try:
        out = reporter(p7_run)
        assert out.returncode == 4, out.stderr
        assert name in out.stderr and "missing" in out.stderr
        assert writer.read("run_completed.json") == marker
    finally:
        writer.store.put(writer.bucket, writer.key(name), body, write_once=False)


def test_governance_log_only_grows(h, p7_run):
    from fp_platform.contracts.evidence import EvidenceError
    from fp_platform.obs_gov import governance

    writer = run_evidence(h, p7_run)
    name = "obs/governance/events.jsonl"
    lines = writer.store.get(writer.bucket, writer.key(name)).splitlines(keepends=True)
    with db.connect(h, role=db.OWNER) as conn:  # the trigger (the app role is refused by privileges first)
        log = governance.log(conn, p7_run)
        with pytest.raises(Exception, match="append-only"):
            conn.execute("DELETE FROM gov_events WHERE platform_run_id = %s", (p7_run,))
    assert 0 < len(lines) <= len(log)  # events appended since the last closure (a refused one) are not out yet
    writer.store.put(writer.bucket, writer.key(name), b"".join(lines[1:]), write_once=False)  # tampered
    try:
        with pytest.raises(EvidenceError, match="not a prefix"):
            governance.export(writer, name, log)
    finally:
        writer.store.put(writer.bucket, writer.key(name), b"".join(lines), write_once=False)
    assert governance.export(writer, name, log) == len(log) - len(lines)
    assert governance.export(writer, name, log) == 0
    exported = writer.store.get(writer.bucket, writer.key(name)).splitlines(keepends=True)
    assert exported[: len(lines)] == lines


def test_bounded_run_reaches_p7_with_evidence(h, p7_run):
    writer = run_evidence(h, p7_run)
    for phase in ("P4", "P5", "P6", "P7"):
        for name in writer.list():
            if name.startswith(f"gates/{phase}/"):
                assert writer.read(name)["verdict"] == "PASS", name
    summary = writer.read("ingest/receipt_summary.json")
    streamed = {OUTPUT_EVENT_CLASSES[o] for o in h.get("ORACLE_REQUIRED_OUTPUT_IDS")}
    for event_class in streamed:
        assert summary["by_event_class"][event_class]["ADMIT"] == BOUND, event_class
    assert summary["unresolved_in_doubt"] == 0
    wsp_summary = writer.read("wsp/wsp_summary.json")
    copies = wsp_summary["drills_injected"]["by_output"]
    assert all(
        c["sent"] == BOUND + copies.get(o, {}).get("duplicate_copies", 0) for o, c in wsp_summary["outputs"].items()
    )
    assert writer.read("sr/ready_publish_receipt.json")["offset_kind"] == "kafka_offset"
    assert writer.read("ingest/ig_ready.json")["auth"]["unauthenticated_health_status"] == 401


def test_a_plain_consumer_sees_exactly_the_admitted_events(h, p7_run):
    admitted = admitted_ids(h, p7_run)
    for output_id in h.get("ORACLE_REQUIRED_OUTPUT_IDS"):
        topic = h.topic(topic_key_for(OUTPUT_EVENT_CLASSES[output_id])).name
        on_bus = bus_ids(h, p7_run, topic)
        assert len(on_bus) == len(set(on_bus)) == BOUND, topic
        assert set(on_bus) == admitted[topic], topic


@pytest.fixture()
def ig_up(h, p7_run) -> None:
    """The run ended with P17, which stopped its IG: the operator starts it again to re-send to the closed run."""
    daemons.ensure(h, packs.spec_for(h, "COMPONENT_ID_IG"), p7_run)


def test_wsp_rerun_admits_nothing_new(h, p7_run, ig_up):
    before = admitted_ids(h, p7_run)
    summary = wsp(p7_run, "--max-events-per-output", str(BOUND))
    assert summary["completed"]
    for output_id, counts in summary["outputs"].items():
        assert counts == {"sent": BOUND, "DUPLICATE": BOUND}, output_id
    assert admitted_ids(h, p7_run) == before


def test_second_sr_publishes_no_second_ready(h, p7_run):
    out = subprocess.run(
        [sys.executable, "-m", "fp_platform.control.jobs", "sr", "--run-id", p7_run],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    doc = json.loads(out.stdout)
    assert doc["verdict"] == "PASS" and doc["ready"]["published_now"] is False
    c = bus.scan_consumer(h)
    try:
        ready = find_ready(h, c, p7_run, lambda _: None)
    finally:
        c.close()
    assert ready["skipped"].get("duplicate", 0) == 0


def test_payload_mismatch_drill_is_quarantined_and_shown_in_p7(h, p7_run, ig_up):
    summary = wsp(p7_run, "--max-events-per-output", str(BOUND), "--drill-mismatch", "0.05")
    anomalies = sum(c.get("ANOMALY", 0) for c in summary["outputs"].values())
    assert summary["completed"] and anomalies > 0
    assert (
        cli(
            [
                "run",
                "--run-id",
                p7_run,
                "--asset",
                "quarantine_summary",
                "--asset",
                "ingest_receipt_summary",
                "--asset",
                "kafka_offsets_snapshot",
            ]
        )
        == 0
    )
    writer = run_evidence(h, p7_run)
    quarantine = writer.read("ingest/quarantine_summary.json")
    assert quarantine["by_decision"].get("ANOMALY", 0) >= anomalies and not quarantine["missing_payloads"]
    assert writer.read("ingest/receipt_summary.json")["counts"]["ANOMALY"] >= anomalies
    assert writer.read("ingest/kafka_offsets_snapshot.json")["dedupe_drift"] == 0


def test_ig_killed_mid_stream_loses_and_doubles_nothing(h, p7_run):
    spec = packs.spec_for(h, "COMPONENT_ID_IG")
    daemons.ensure(h, spec, p7_run)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fp_platform.control.jobs", "wsp", "--run-id", p7_run],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = threading.Event()

    def kill_when_streaming() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with db.connect(h) as conn:
                n = conn.execute(
                    "SELECT count(*) FROM ig_receipts WHERE platform_run_id = %s AND decision = 'ADMIT'", (p7_run,)
                ).fetchone()[0]
            if n > 4 * BOUND + 2000:
                os.kill(daemons.running(spec.component).pid, signal.SIGKILL)
                killed.set()
                time.sleep(1)
                daemons.ensure(h, spec, p7_run)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_streaming)
    killer.start()
    out, err = proc.communicate(timeout=900)
    killer.join()
    assert killed.is_set(), "the stream ended before IG could be killed"
    assert out.strip(), f"WSP wrote no summary (exit {proc.returncode}): {err[-3000:]}"
    summary = json.loads(out)
    assert summary["completed"], err[-2000:]
    assert summary["totals"]["retries"] > 0
    expected = sum(s["rows"] for s in run_evidence(h, p7_run).read("wsp/wsp_start.json")["stream_view"].values())
    admitted = admitted_ids(h, p7_run)
    data_topics = {h.topic(topic_key_for(OUTPUT_EVENT_CLASSES[o])).name for o in h.get("ORACLE_REQUIRED_OUTPUT_IDS")}
    assert sum(len(admitted[t]) for t in data_topics) == expected
    for topic in data_topics:
        on_bus = bus_ids(h, p7_run, topic)
        assert len(on_bus) == len(set(on_bus)) == len(admitted[topic]), topic


def test_wsp_killed_mid_stream_resumes_from_its_checkpoint(h, p7_run):
    args = ["--drill-drop-context", "0.02"]  # its own stream (digest), so its own session
    proc = subprocess.Popen(
        [sys.executable, "-m", "fp_platform.control.jobs", "wsp", "--run-id", p7_run, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    scenario_run_id = run_evidence(h, p7_run).read("sr/sr_pass.json")["scenario_run_id"]
    stream_digest = WspOptions(drill_drop_context=0.02).stream_digest(p7_run, scenario_run_id)
    deadline = time.monotonic() + 120
    with db.connect(h) as conn:
        while time.monotonic() < deadline and proc.poll() is None:
            done = conn.execute(
                "SELECT coalesce(max(position), 0) FROM wsp_checkpoints WHERE stream_digest = %s", (stream_digest,)
            ).fetchone()[0]
            if done >= 2000:
                break
            time.sleep(0.05)
    assert proc.poll() is None, "the stream ended before WSP could be killed"
    proc.kill()
    proc.wait()
    summary = wsp(p7_run, *args)
    assert summary["completed"] and summary["resumed_from_event"] >= 2000
    writer = run_evidence(h, p7_run)
    assert writer.read("wsp/wsp_start.json")["resume_at_event"] == summary["resumed_from_event"]
    for topic in admitted_ids(h, p7_run):
        on_bus = bus_ids(h, p7_run, topic)
        assert len(on_bus) == len(set(on_bus)), topic

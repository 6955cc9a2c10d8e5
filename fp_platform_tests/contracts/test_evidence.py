"""The evidence writer against the real object store (SeaweedFS)."""

import json

import pytest

from fp_platform.contracts.evidence import EvidenceError, EvidenceWriter
from fp_platform.contracts.ids import new_platform_run_id
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform_tests.support import MemoryStore


@pytest.fixture()
def writer(h, stack):
    import time

    time.sleep(1.01)  # one run id per second
    return run_evidence(h, new_platform_run_id())


def test_truth_evidence_is_write_once(writer):
    writer.write_truth("sr/ready_publish_receipt.json", {"offset": 1}, phase_id="P5")
    with pytest.raises(EvidenceError, match="write-once"):
        writer.write_truth("sr/ready_publish_receipt.json", {"offset": 2}, phase_id="P5")
    assert writer.read("sr/ready_publish_receipt.json")["offset"] == 1


def test_derived_summary_can_be_rewritten(writer):
    writer.write_summary("ingest/receipt_summary.json", {"counts": {"ADMIT": 1}}, phase_id="P7")
    writer.write_summary("ingest/receipt_summary.json", {"counts": {"ADMIT": 2}}, phase_id="P7")
    assert writer.read("ingest/receipt_summary.json")["counts"] == {"ADMIT": 2}


def test_required_fields_are_stamped(writer):
    doc = writer.write_truth("x.json", {"counts": {}}, phase_id="P1")
    stored = json.loads(writer.store.get(writer.bucket, writer.key("x.json")))
    assert stored == doc
    assert {"platform_run_id", "written_at_utc", "phase_id"} <= stored.keys()
    assert stored["platform_run_id"] == writer.platform_run_id


def test_missing_or_foreign_evidence_fails_closed(writer):
    with pytest.raises(EvidenceError, match="missing"):
        writer.read("nope.json")
    with pytest.raises(EvidenceError, match="cannot go into run"):
        writer.write_summary("y.json", {"platform_run_id": "platform_20000101T000000Z"}, phase_id="P1")
    writer.store.put(writer.bucket, writer.key("bare.json"), b'{"a": 1}', write_once=False)
    with pytest.raises(EvidenceError, match="lacks"):
        writer.read("bare.json")


def test_names_cannot_escape_the_run_root(writer):
    with pytest.raises(EvidenceError):
        writer.key("../other/run.json")


def test_read_back_names_every_json_file_and_why_one_does_not_read():
    run_id = "platform_15000101T000000Z"
    memory = EvidenceWriter(MemoryStore(), "evidence", f"runs/{run_id}/", run_id)
    memory.write_summary("a.json", {"n": 1}, phase_id="P1")
    memory.store.put(memory.bucket, memory.key("bare.json"), b'{"a": 1}', write_once=False)
    memory.store.put(memory.bucket, memory.key("report.html"), b"<html/>", write_once=False)
    names, problems = memory.read_back()
    assert names == ["a.json", "bare.json"]
    assert len(problems) == 1 and "bare.json lacks" in problems[0]

"""Hostile input at the Ingestion Gate (issue 20): every class of it ends in a QUARANTINE receipt or a
receipted 4xx, never a 5xx; IG stays healthy; ADMIT receipts equal the run's records on the bus; no claim
is left in doubt; every quarantined envelope is readable at its indexed URI under the run's prefix."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from fp_platform.contracts.envelope import Envelope
from fp_platform.substrate import db
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform_tests.control.test_ig_service import push, receipts, records_on_topic, rejections, traffic
from fp_platform_tests.support import IgProcess, start_ig, unique_run_id


@pytest.fixture(scope="module")
def gate(h, stack) -> Iterator[IgProcess]:
    """IG with its default request limit (4 MiB, above the broker's 1 MB record limit)."""
    proc = start_ig(h, unique_run_id())
    yield proc
    proc.proc.terminate()
    proc.proc.wait(20)


def quarantined(h, run_id: str, event_id: str) -> list[tuple[str, dict]]:
    """(object_uri, preserved document) of every quarantine index row of `event_id`."""
    store = S3ObjectStore(h)
    with db.connect(h) as conn:
        uris = [
            u
            for (u,) in conn.execute(
                "SELECT object_uri FROM ig_quarantine WHERE platform_run_id = %s AND event_id = %s ORDER BY object_uri",
                (run_id, event_id),
            )
        ]
    return [(u, json.loads(store.get(*u.removeprefix("s3://").split("/", 1)))) for u in uris]


def quarantine_prefix(h, run_id: str) -> str:
    return f"s3://{h.get('S3_QUARANTINE_BUCKET')}/quarantine/{run_id}/"


def one_receipt(resp: httpx.Response) -> dict:
    assert resp.status_code == 200, (resp.status_code, resp.text[:300])
    (r,) = resp.json()["receipts"]
    return r


@pytest.mark.parametrize("field", ["event_id", "producer", "event_class", "payload", "pins"])
def test_a_nul_anywhere_is_quarantined_with_the_envelope_kept(h, gate, field):
    env = traffic(gate.run_id, f"evt_nul_{field}")
    if field == "payload":
        env["payload"]["merchant_id"] = "m\x00"
    elif field == "pins":
        env["pins"]["scenario_run_id"] = "s\x00"
    else:
        env[field] = env[field] + "\x00"
    r = one_receipt(push(gate, [env]))
    assert r["decision"] == "QUARANTINE" and ("U+0000" in r["reason"] or "control character" in r["reason"]), r
    assert "\x00" not in r["event_id"] and "\x00" not in r["event_class"]
    ((uri, kept),) = quarantined(h, gate.run_id, r["event_id"])
    assert uri.startswith(quarantine_prefix(h, gate.run_id))
    assert kept["envelope"] == env  # the original, NUL included: nothing of the payload lost


def test_an_8000_character_id_is_quarantined_under_a_digest(h, gate):
    env = traffic(gate.run_id, "x" * 8000)
    r = one_receipt(push(gate, [env]))
    assert r["decision"] == "QUARANTINE" and "8000 characters" in r["reason"]
    assert r["event_id"].startswith("invalid_") and len(r["event_id"]) < 64
    again = one_receipt(push(gate, [env]))  # a retry gets the same answer, not a 5xx
    assert again["decision"] == "QUARANTINE" and again["event_id"] == r["event_id"]
    ((uri, kept),) = quarantined(h, gate.run_id, r["event_id"])
    assert uri.startswith(quarantine_prefix(h, gate.run_id)) and kept["envelope"]["event_id"] == "x" * 8000


@pytest.mark.parametrize("event_id", ["..", ".", "...."])
def test_dot_only_ids_are_quarantined_inside_the_run_prefix(h, gate, event_id):
    r = one_receipt(push(gate, [traffic(gate.run_id, event_id)]))
    assert r["decision"] == "QUARANTINE" and "other than '.'" in r["reason"], r
    ((uri, kept),) = quarantined(h, gate.run_id, r["event_id"])
    segments = uri.removeprefix("s3://").split("/")
    assert uri.startswith(quarantine_prefix(h, gate.run_id)) and not {".", ".."} & set(segments)
    assert kept["envelope"]["event_id"] == event_id


def test_ids_that_sanitise_alike_keep_their_own_objects(h, gate):
    other = "platform_20200101T000000Z"  # a pin mismatch: both are quarantined with their ids as given
    a, b = traffic(other, "a/b:c", amount=1.0), traffic(other, "a_b_c", amount=1.0)
    got = push(gate, [a, b]).json()["receipts"]
    assert [r["decision"] for r in got] == ["QUARANTINE", "QUARANTINE"]
    assert got[0]["payload_hash"] == got[1]["payload_hash"]  # same payload: only the id tells them apart
    ((uri_a, kept_a),) = quarantined(h, gate.run_id, "a/b:c")
    ((uri_b, kept_b),) = quarantined(h, gate.run_id, "a_b_c")
    assert uri_a != uri_b
    assert kept_a["envelope"] == a and kept_b["envelope"] == b


def nested(depth: int) -> object:
    doc: object = "leaf"
    for _ in range(depth):
        doc = {"k": doc}
    return doc


@pytest.mark.parametrize("where", ["payload", "extra_field"])
def test_deep_nesting_is_refused_400_with_a_receipt(h, gate, where):
    env = traffic(gate.run_id, f"evt_deep_{where}")
    if where == "payload":
        env["payload"]["merchant_id"] = nested(300)
    else:
        env["extra"] = nested(300)
    before = len(rejections(h, gate.run_id))
    resp = push(gate, [env])
    assert resp.status_code == 400 and resp.json()["error"] == "TOO_DEEP", resp.text[:300]
    assert [r[:2] for r in rejections(h, gate.run_id)[before:]] == [(400, "TOO_DEEP")]


def test_a_shallow_extra_field_is_quarantined(h, gate):
    env = traffic(gate.run_id, "evt_extra_shallow")
    env["extra"] = nested(5)
    r = one_receipt(push(gate, [env]))
    assert r["decision"] == "QUARANTINE" and "extra" in r["reason"]


def oversized_ready(run_id: str, event_id: str, total: int = 1_500_000) -> dict:
    """A valid control.ready envelope whose record is larger than the broker accepts (1 MB)."""
    return Envelope.build(
        event_id=event_id,
        event_class="control.ready",
        pins={"platform_run_id": run_id, "scenario_run_id": "scn_1"},
        producer="test",
        ts_utc="2018-04-01T10:00:00.000Z",
        payload={
            "oracle_pack_fingerprint": "f",
            "stream_view_root": "s3://x/y",
            "output_ids": [f"output_{i:06d}_" + "p" * 80 for i in range(total // 100)],
            "stream_view_fingerprints": {},
            "run_facts_uri": "s3://x/facts.json",
        },
    ).to_dict()


def test_a_record_larger_than_the_broker_accepts_is_refused_at_admission_and_ig_restarts(h, stack):
    run_id = unique_run_id()
    first = start_ig(h, run_id)
    try:
        env = oversized_ready(run_id, "evt_oversized")
        body = orjson.dumps([env])
        assert 1_000_000 < len(body) < int(h.get("IG_MAX_REQUEST_BYTES"))
        for _ in range(2):  # the sender's retry gets the same receipted refusal
            r = one_receipt(push(first, body))
            assert r["decision"] == "QUARANTINE" and r["reason"].startswith("record_too_large"), r
        health = httpx.get(first.url + "/v1/ops/health", headers={"X-IG-Api-Key": first.key}, timeout=10).json()
        assert health["state"] == "GREEN" and health["unresolved_in_doubt"] == 0, health
    finally:
        first.proc.terminate()
        first.proc.wait(20)
    with db.connect(h) as conn:
        claims = conn.execute("SELECT count(*) FROM ig_admissions WHERE platform_run_id = %s", (run_id,)).fetchone()[0]
    assert claims == 0  # refused before the claim: nothing in doubt
    ((uri, kept),) = quarantined(h, run_id, "evt_oversized")
    assert uri.startswith(quarantine_prefix(h, run_id)) and kept["envelope"] == env
    second = start_ig(h, run_id)  # restarts cleanly (it used to exit 3 here)
    try:
        assert httpx.get(second.url + "/v1/ops/ready", timeout=10).json()["ready"] is True
        assert one_receipt(push(second, [traffic(run_id, "evt_after_restart")]))["decision"] == "ADMIT"
    finally:
        second.proc.terminate()
        second.proc.wait(20)


def test_a_chunked_body_is_refused_413_while_it_streams(h, stack):
    limited = start_ig(h, unique_run_id(), "--max-request-bytes", "20000")
    try:
        port = int(limited.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(
                "POST /v1/ingest/push HTTP/1.1\r\nHost: ig\r\nContent-Type: application/json\r\n"
                f"X-IG-Api-Key: {limited.key}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            )
            for _ in range(5):  # 50 kB sent, no Content-Length and no end of body: IG must answer anyway
                s.sendall(b"%x\r\n" % 10_000 + b" " * 10_000 + b"\r\n")
            head = s.recv(4096)
        assert head.startswith(b"HTTP/1.1 413"), head[:200]
        (row,) = rejections(h, limited.run_id)
        assert row[:2] == (413, "PAYLOAD_TOO_LARGE") and "while streaming" in row[2]
    finally:
        limited.proc.terminate()
        limited.proc.wait(20)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", None, "application/xml; charset=utf-8"]
)
def test_a_body_that_is_not_declared_json_is_415(h, gate, content_type):
    headers = {"X-IG-Api-Key": gate.key} | ({"content-type": content_type} if content_type else {})
    before = len(rejections(h, gate.run_id))
    resp = httpx.post(
        gate.url + "/v1/ingest/push",
        content=orjson.dumps([traffic(gate.run_id, "evt_media")]),
        headers=headers,
        timeout=10,
    )
    assert resp.status_code == 415 and resp.json()["error"] == "UNSUPPORTED_MEDIA_TYPE"
    assert [r[0] for r in rejections(h, gate.run_id)[before:]] == [415]
    assert "evt_media" not in [r[0] for r in receipts(h, gate.run_id)]


def test_unauthenticated_floods_cost_one_row_per_flush_not_per_request(h, stack):
    run_id = unique_run_id()
    flood = start_ig(h, run_id)
    try:
        started = time.monotonic()
        with httpx.Client(timeout=10) as client:
            codes = [
                client.post(
                    flood.url + "/v1/ingest/push", content=b"[]", headers={"content-type": "application/json"}
                ).status_code
                for _ in range(300)
            ]
        elapsed = time.monotonic() - started
        httpx.post(flood.url + "/v1/ops/flush", headers={"X-IG-Api-Key": flood.key}, timeout=30)
    finally:
        flood.proc.terminate()
        flood.proc.wait(20)
    assert set(codes) == {401, 429} and codes[0] == 401, codes
    rows = rejections(h, run_id)
    per_request = [r for r in rows if r[0] == 401]
    summaries = [r for r in rows if r[1] == "UNAUTHENTICATED_RATE_LIMITED"]
    assert len(per_request) == codes.count(401) and summaries
    assert sum(int(r[2].split()[0]) for r in summaries) == codes.count(429)  # every refusal receipted, in sum
    allowed = int(h.get("IG_UNAUTH_RATE_LIMIT_BURST")) + float(h.get("IG_UNAUTH_RATE_LIMIT_RPS")) * elapsed + 1
    assert len(per_request) <= allowed and len(rows) <= allowed + len(summaries) < 300, (len(rows), elapsed)


def test_readiness_answers_without_a_key_and_from_its_cache(h, gate):
    started = time.monotonic()
    docs = [httpx.get(gate.url + "/v1/ops/ready", timeout=5) for _ in range(50)]
    assert all(d.status_code == 200 and d.json()["ready"] is True for d in docs)
    assert time.monotonic() - started < 10


def test_after_all_of_it_ig_is_healthy_and_the_bus_matches_the_receipts(h, gate):
    """Runs last in this module: the hostile classes above left the gate GREEN and the ledger exact."""
    assert one_receipt(push(gate, [traffic(gate.run_id, "evt_plain")]))["decision"] == "ADMIT"
    health = httpx.get(gate.url + "/v1/ops/health", headers={"X-IG-Api-Key": gate.key}, timeout=10).json()
    assert health["state"] == "GREEN" and health["unresolved_in_doubt"] == 0, health
    admitted = sorted(r[0] for r in receipts(h, gate.run_id) if r[1] == "ADMIT")
    assert admitted == sorted(records_on_topic(h, "FP_BUS_TRAFFIC_FRAUD_V1", gate.run_id)) == ["evt_plain"]
    with db.connect(h) as conn:
        in_doubt = conn.execute(
            "SELECT count(*) FROM ig_admission_state WHERE platform_run_id = %s AND state = 'IN_DOUBT'", (gate.run_id,)
        ).fetchone()[0]
        rows = conn.execute(
            "SELECT event_id, object_uri FROM ig_quarantine WHERE platform_run_id = %s", (gate.run_id,)
        ).fetchall()
    assert in_doubt == 0 and len(rows) >= 10
    store = S3ObjectStore(h)
    for event_id, uri in rows:
        assert uri.startswith(quarantine_prefix(h, gate.run_id))
        kept = json.loads(store.get(*uri.removeprefix("s3://").split("/", 1)))
        assert kept["event_id"] == event_id and kept["platform_run_id"] == gate.run_id

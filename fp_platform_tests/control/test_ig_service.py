"""The Ingestion Gate over real HTTP: the writer boundary, the limits, the ingestion law, receipts."""

import json
import time
from datetime import UTC, datetime

import httpx
import psycopg
import pytest

from fp_platform.contracts.envelope import Envelope, record_identity
from fp_platform.contracts.payloads import PAYLOAD_MODELS
from fp_platform.substrate import bus, db
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform_tests.support import start_ig, unique_run_id


def traffic(run_id: str, event_id: str, amount: float = 12.5, merchant: str = "merchant_7") -> dict:
    return Envelope.build(
        event_id=event_id,
        event_class="traffic.fraud",
        pins={"platform_run_id": run_id},
        producer="test",
        ts_utc="2018-04-01T10:00:00.000Z",
        payload={
            "flow_id": "flow_1",
            "merchant_id": merchant,
            "customer_id": "cust_1",
            "transaction_id": 1,
            "card_id": "card_1",
            "terminal_id": 7,
            "amount": amount,
            "tx_time_seconds": 36000,
            "tx_time_days": 0,
        },
    ).to_dict()


def push(ig, body, key: str | None = "ok", **kw) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["X-IG-Api-Key"] = ig.key if key == "ok" else key
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(ig.url + "/v1/ingest/push", content=content, headers=headers, timeout=30, **kw)


def rejections(h, run_id: str) -> list[tuple]:
    with db.connect(h) as conn:
        return conn.execute(
            "SELECT http_status, error, reason FROM ig_request_rejections WHERE required_run_id = %s ORDER BY seq",
            (run_id,),
        ).fetchall()


def receipts(h, run_id: str) -> list[tuple]:
    with db.connect(h) as conn:
        return conn.execute(
            "SELECT event_id, decision, reason, kafka_offset FROM ig_receipts WHERE platform_run_id = %s ORDER BY seq",
            (run_id,),
        ).fetchall()


def admissions(h, run_id: str) -> int:
    with db.connect(h) as conn:
        return conn.execute("SELECT count(*) FROM ig_admissions WHERE platform_run_id = %s", (run_id,)).fetchone()[0]


def records_on_topic(h, topic_key: str, run_id: str) -> list[str]:
    c = bus.scan_consumer(h)
    try:
        topic = h.topic(topic_key).name
        idents = [
            record_identity(m.headers()) for p in bus.partitions(c, topic) for m in bus.read_partition(c, topic, p)
        ]
        return [i["event_id"] for i in idents if i.get("platform_run_id") == run_id]
    finally:
        c.close()


def test_unauthenticated_is_401_receipted_and_nothing_admitted(h, ig):
    before = len(rejections(h, ig.run_id))
    for key in (None, "wrong-key"):
        resp = push(ig, [traffic(ig.run_id, "evt_auth")], key=key)
        assert resp.status_code == 401 and resp.json()["error"] == "UNAUTHORIZED"
    health = httpx.get(ig.url + "/v1/ops/health", timeout=10)
    assert health.status_code == 401 and health.json() == {
        "error": "UNAUTHORIZED",
        "reason": "missing or wrong X-IG-Api-Key",
    }
    got = rejections(h, ig.run_id)[before:]
    assert [r[0] for r in got] == [401, 401, 401]
    assert not [r for r in receipts(h, ig.run_id) if r[0] == "evt_auth"]
    assert admissions(h, ig.run_id) == 0 or "evt_auth" not in records_on_topic(h, "FP_BUS_TRAFFIC_FRAUD_V1", ig.run_id)


def test_authenticated_health_is_green(ig):
    doc = httpx.get(ig.url + "/v1/ops/health", headers={"X-IG-Api-Key": ig.key}, timeout=10).json()
    assert doc["state"] == "GREEN" and doc["required_platform_run_id"] == ig.run_id, doc


def test_malformed_json_and_oversized_bodies(h, ig):
    before = len(rejections(h, ig.run_id))
    bad = push(ig, b'[{"event_id": ')
    assert bad.status_code == 400 and bad.json()["error"] == "MALFORMED_JSON" and "not JSON" in bad.json()["reason"]
    empty = push(ig, [])
    assert empty.status_code == 400 and empty.json()["error"] == "EMPTY_BATCH"
    big = push(ig, [traffic(ig.run_id, f"evt_big_{i}") for i in range(100)])  # > 20 000 bytes
    assert big.status_code == 413 and big.json()["error"] == "PAYLOAD_TOO_LARGE"
    assert [r[0] for r in rejections(h, ig.run_id)[before:]] == [400, 400, 413]
    assert not [r for r in receipts(h, ig.run_id) if r[0].startswith("evt_big_")]


def test_admit_duplicate_anomaly_follow_the_ingestion_law(h, ig):
    store = S3ObjectStore(h)
    first = push(ig, [traffic(ig.run_id, "evt_law")]).json()["receipts"][0]
    assert first["decision"] == "ADMIT"
    ref = first["eb_ref"]
    assert ref["topic"] == h.topic("FP_BUS_TRAFFIC_FRAUD_V1").name and ref["offset_kind"] == "kafka_offset"
    again = push(ig, [traffic(ig.run_id, "evt_law")]).json()["receipts"][0]
    assert again["decision"] == "DUPLICATE" and again["eb_ref"] == ref
    changed = push(ig, [traffic(ig.run_id, "evt_law", amount=99.0)]).json()["receipts"][0]
    assert changed["decision"] == "ANOMALY" and changed["eb_ref"] is None
    assert records_on_topic(h, "FP_BUS_TRAFFIC_FRAUD_V1", ig.run_id).count("evt_law") == 1
    with db.connect(h) as conn:
        (uri,) = conn.execute(
            "SELECT object_uri FROM ig_quarantine WHERE platform_run_id = %s AND event_id = %s", (ig.run_id, "evt_law")
        ).fetchone()
    kept = json.loads(store.get(*uri.removeprefix("s3://").split("/", 1)))
    assert kept["decision"] == "ANOMALY" and kept["envelope"]["payload"]["amount"] == 99.0
    assert [r[1] for r in receipts(h, ig.run_id) if r[0] == "evt_law"] == ["ADMIT", "DUPLICATE", "ANOMALY"]


def test_wrong_run_and_bad_schema_are_quarantined_not_published(h, ig):
    other = "platform_20200101T000000Z"
    wrong = traffic(other, "evt_wrong_run")
    broken = traffic(ig.run_id, "evt_broken")
    broken["payload"]["amount"] = "12.5"  # a string where the schema says number
    got = push(ig, [wrong, broken]).json()["receipts"]
    assert [r["decision"] for r in got] == ["QUARANTINE", "QUARANTINE"]
    assert "pin_mismatch" in got[0]["reason"] and other in got[0]["reason"]
    assert "payload.amount" in got[1]["reason"]
    on_bus = records_on_topic(h, "FP_BUS_TRAFFIC_FRAUD_V1", ig.run_id) + records_on_topic(
        h, "FP_BUS_TRAFFIC_FRAUD_V1", other
    )
    assert "evt_wrong_run" not in on_bus and "evt_broken" not in on_bus
    with db.connect(h) as conn:
        n = conn.execute(
            "SELECT count(*) FROM ig_quarantine WHERE platform_run_id = %s AND event_id IN"
            " ('evt_wrong_run', 'evt_broken')",
            (ig.run_id,),
        ).fetchone()[0]
    assert n == 2


def test_rate_limit_answers_429_with_retry_after(h, stack):
    limited = start_ig(h, unique_run_id(), "--rate-limit-rps", "1", "--rate-limit-burst", "2")
    try:
        answers = [push(limited, [traffic(limited.run_id, f"evt_rl_{i}")]) for i in range(4)]
        codes = [a.status_code for a in answers]
        assert codes[:2] == [200, 200] and 429 in codes[2:], codes
        refused = next(a for a in answers if a.status_code == 429)
        assert int(refused.headers["retry-after"]) >= 1 and refused.json()["error"] == "RATE_LIMITED"
        assert 429 in [r[0] for r in rejections(h, limited.run_id)]
        time.sleep(2.1)
        assert push(limited, [traffic(limited.run_id, "evt_rl_after")]).status_code == 200
    finally:
        limited.proc.terminate()
        limited.proc.wait(20)


def test_openapi_documents_every_event_class(ig):
    doc = httpx.get(ig.url + "/openapi.json", timeout=10).json()
    body = doc["paths"]["/v1/ingest/push"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    mapping = body["oneOf"][0]["discriminator"]["mapping"]
    assert set(mapping) == set(PAYLOAD_MODELS)
    for ref in mapping.values():
        assert ref.removeprefix("#/components/schemas/") in doc["components"]["schemas"]
    traffic_schema = doc["components"]["schemas"]["TrafficPayload"]
    assert traffic_schema["additionalProperties"] is False and "amount" in traffic_schema["required"]


def test_receipts_are_append_only_and_land_in_s3_segments(h, ig):
    push(ig, [traffic(ig.run_id, "evt_seg")])
    flushed = httpx.post(ig.url + "/v1/ops/flush", headers={"X-IG-Api-Key": ig.key}, timeout=30).json()
    assert flushed["latest"]["object_uri"].startswith(f"s3://{h.get('S3_ARCHIVE_BUCKET')}/receipts/{ig.run_id}/")
    with db.connect(h) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE ig_receipts SET decision = 'ADMIT' WHERE platform_run_id = %s", (ig.run_id,))


def test_receipts_carry_the_moment_the_request_arrived(h, ig):
    """received_at is stamped on arrival: between sending and the answer, and before IG even claimed the
    event (so before the publish and its confirmation, where it used to be stamped)."""
    sent = datetime.now(UTC)
    resp = push(ig, [traffic(ig.run_id, "evt_arrival")])
    returned = datetime.now(UTC)
    assert resp.json()["receipts"][0]["decision"] == "ADMIT"

    body_done = []

    def slow_body():  # the headers arrive at once, the body a second later
        yield b"["
        time.sleep(1.0)
        body_done.append(datetime.now(UTC))
        yield json.dumps(traffic(ig.run_id, "evt_arrival_slow")).encode() + b"]"

    slow_sent = datetime.now(UTC)
    slow = httpx.post(
        ig.url + "/v1/ingest/push",
        content=slow_body(),
        timeout=30,
        headers={"content-type": "application/json", "X-IG-Api-Key": ig.key},
    )
    slow_returned = datetime.now(UTC)
    assert slow.json()["receipts"][0]["decision"] == "ADMIT"

    refused_sent = datetime.now(UTC)
    assert push(ig, [traffic(ig.run_id, "evt_arrival_401")], key="wrong-key").status_code == 401
    refused_returned = datetime.now(UTC)

    with db.connect(h) as conn:
        stamps = {
            eid: (received, claimed)
            for eid, received, claimed in conn.execute(
                "SELECT r.event_id, r.received_at, a.claimed_at FROM ig_receipts r JOIN ig_admissions a USING"
                " (platform_run_id, event_class, event_id) WHERE r.platform_run_id = %s AND r.event_id IN"
                " ('evt_arrival', 'evt_arrival_slow')",
                (ig.run_id,),
            )
        }
        refused_at = conn.execute(
            "SELECT received_at FROM ig_request_rejections WHERE required_run_id = %s"
            " AND http_status = 401 ORDER BY seq DESC LIMIT 1",
            (ig.run_id,),
        ).fetchone()[0]
    received_at, claimed_at = stamps["evt_arrival"]
    assert sent <= received_at <= returned
    assert received_at <= claimed_at
    received_at, claimed_at = stamps["evt_arrival_slow"]
    assert slow_sent <= received_at <= slow_returned
    assert received_at < body_done[0] <= claimed_at  # arrival is the request's, not its body's end
    assert refused_sent <= refused_at <= refused_returned

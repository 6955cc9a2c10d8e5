"""`ig reconcile`: claims left in doubt by a crash are resolved from the topic, never doubled."""

import orjson
import pytest

from fp_platform.contracts.envelope import record_headers
from fp_platform.control.ig.reconcile import reconcile_now
from fp_platform.substrate import bus, db
from fp_platform_tests.support import unique_run_id


def claim(conn, run_id: str, event_id: str, topic: str, age_s: int) -> bytes:
    """A claim as IG commits it before publishing, dated `age_s` ago."""
    message = orjson.dumps({"event_id": event_id, "pins": {"platform_run_id": run_id}})
    conn.execute(
        "INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, topic, message_key,"
        " message, claimed_at) VALUES (%s, 'traffic.fraud', %s, 'h', %s, %s, %s,"
        " now() - make_interval(secs => %s))",
        (run_id, event_id, topic, b"merchant_1", message, age_s),
    )
    return message


@pytest.fixture()
def run_id(stack) -> str:
    return unique_run_id()


def test_in_doubt_claims_are_found_or_republished_once(h, run_id):
    topic = h.topic("FP_BUS_TRAFFIC_FRAUD_V1").name
    with db.connect(h, autocommit=True) as conn:
        on_bus = claim(conn, run_id, "evt_published_then_crashed", topic, 120)
        claim(conn, run_id, "evt_claimed_then_crashed", topic, 120)
        claim(conn, run_id, "evt_maybe_in_flight", topic, 0)
    producer = bus.producer(h)
    producer.produce(
        topic,
        on_bus,
        b"merchant_1",
        headers=record_headers(run_id, "traffic.fraud", "evt_published_then_crashed", "h", h.get("COMPONENT_ID_IG")),
    )
    producer.flush(30)

    counts = reconcile_now(h, run_id)
    assert counts == {"in_doubt": 2, "found_on_topic": 1, "republished": 1, "settled": 0, "unresolved": 0}
    assert reconcile_now(h, run_id)["in_doubt"] == 0  # the young claim is left to its live IG

    with db.connect(h) as conn:
        rows = conn.execute(
            "SELECT event_id, source, kafka_offset IS NOT NULL FROM ig_receipts WHERE"
            " platform_run_id = %s AND decision = 'ADMIT' ORDER BY event_id",
            (run_id,),
        ).fetchall()
    assert rows == [("evt_claimed_then_crashed", "reconcile", True), ("evt_published_then_crashed", "reconcile", True)]
    c = bus.scan_consumer(h)
    try:
        ids = [
            m.value()
            for p in bus.partitions(c, topic)
            for m in bus.read_partition(c, topic, p)
            if dict(m.headers() or []).get("platform_run_id") == run_id.encode()
        ]
    finally:
        c.close()
    assert len(ids) == 2 and len(set(ids)) == 2

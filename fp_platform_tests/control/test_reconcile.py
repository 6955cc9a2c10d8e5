"""`ig reconcile`: claims left in doubt by a crash are resolved from the topic, never doubled."""

import httpx
import orjson
import pytest

from fp_platform.contracts.envelope import record_headers
from fp_platform.control.ig.reconcile import reconcile_now
from fp_platform.substrate import bus, db
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform_tests.support import start_ig, unique_run_id


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


def test_a_claim_that_can_never_be_published_is_settled_not_deleted(h, run_id):
    """A claim whose record is larger than the broker accepts (saved before IG refused such records at
    admission) gets a terminal QUARANTINE receipt from reconcile; a second reconcile finds nothing in doubt."""
    topic = h.topic("FP_BUS_CONTROL_V1").name
    big = orjson.dumps({"event_id": "evt_too_big", "padding": "p" * 1_500_000})
    with db.connect(h, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, topic, message_key,"
            " message, claimed_at) VALUES (%s, 'control.ready', 'evt_too_big', 'h', %s, NULL, %s,"
            " now() - interval '2 minutes')",
            (run_id, topic, big),
        )
    counts = reconcile_now(h, run_id)
    assert counts == {"in_doubt": 1, "found_on_topic": 0, "republished": 0, "settled": 1, "unresolved": 0}
    assert reconcile_now(h, run_id)["in_doubt"] == 0
    with db.connect(h) as conn:
        (state,) = conn.execute(
            "SELECT state FROM ig_admission_state WHERE platform_run_id = %s AND event_id = 'evt_too_big'", (run_id,)
        ).fetchone()
        receipts = conn.execute(
            "SELECT decision, source, reason FROM ig_receipts WHERE platform_run_id = %s", (run_id,)
        ).fetchall()
        (claims,) = conn.execute("SELECT count(*) FROM ig_admissions WHERE platform_run_id = %s", (run_id,)).fetchone()
        (uri,) = conn.execute("SELECT object_uri FROM ig_quarantine WHERE platform_run_id = %s", (run_id,)).fetchone()
    assert state == "SETTLED" and claims == 1  # settled, the claim (and its record) kept
    assert [(d, s) for d, s, _ in receipts] == [("QUARANTINE", "reconcile")] and "unpublishable" in receipts[0][2]
    kept = orjson.loads(S3ObjectStore(h).get(*uri.removeprefix("s3://").split("/", 1)))
    assert kept["envelope"]["padding"] == "p" * 1_500_000


def test_ig_start_up_reconciles_only_its_own_run(h, run_id):
    """Another run's claim in doubt (its gate may be live) neither blocks this gate's start nor is touched."""
    topic = h.topic("FP_BUS_TRAFFIC_FRAUD_V1").name
    other = unique_run_id()
    with db.connect(h, autocommit=True) as conn:
        claim(conn, other, "evt_other_run", topic, 120)
    gate = start_ig(h, run_id)
    try:
        health = httpx.get(gate.url + "/v1/ops/health", headers={"X-IG-Api-Key": gate.key}, timeout=10).json()
    finally:
        gate.proc.terminate()
        gate.proc.wait(20)
    assert health["startup"]["reconcile"]["in_doubt"] == 0 and health["state"] == "GREEN", health
    with db.connect(h) as conn:
        (state,) = conn.execute("SELECT state FROM ig_admission_state WHERE platform_run_id = %s", (other,)).fetchone()
    assert state == "IN_DOUBT"
    assert reconcile_now(h, other)["republished"] == 1  # its own reconcile still resolves it


def test_health_counts_the_claims_this_gate_left_in_doubt_until_they_are_receipted(h, run_id):
    """Health re-checks, by key, only the claims this gate marked in doubt (start-up seeds them): once an
    operator's reconcile receipts one, it drops out; the run's other claims are never scanned."""
    from fp_platform.control.ig.app import Gate, IgSettings

    gate = Gate(h, IgSettings.from_handles(h, run_id))
    gate.pool.open(wait=True, timeout=30)
    try:
        topic = h.topic("FP_BUS_TRAFFIC_FRAUD_V1").name
        with db.connect(h, autocommit=True) as conn:
            claim(conn, run_id, "evt_doubt_a", topic, 120)
            claim(conn, run_id, "evt_doubt_b", topic, 120)
        gate.admitter.mark_in_doubt([("traffic.fraud", "evt_doubt_a"), ("traffic.fraud", "evt_doubt_b")])
        assert gate.unresolved() == 2
        doc = gate.health()
        assert doc["state"] == "AMBER" and doc["unresolved_in_doubt"] == 2 and "in doubt" in doc["reasons"][-1]
        assert reconcile_now(h, run_id)["republished"] == 2
        assert gate.unresolved() == 0
    finally:
        gate.pool.close()


def receipt(conn, run_id: str, event_id: str, topic: str) -> None:
    """The ADMIT receipt IG writes once a claim's record is delivered."""
    conn.execute(
        "INSERT INTO ig_receipts (receipt_id, platform_run_id, event_class, event_id, payload_hash, decision,"
        " source, topic, kafka_partition, kafka_offset) VALUES (%s, %s, 'traffic.fraud', %s, 'h', 'ADMIT',"
        " 'ingest', %s, 0, 0)",
        (f"rcpt_{run_id}_{event_id}", run_id, event_id, topic),
    )


@pytest.fixture()
def pool(h):
    from psycopg_pool import ConnectionPool

    with ConnectionPool(db.dsn(h), min_size=1, max_size=2, kwargs={"autocommit": True}) as p:
        yield p


def test_the_resolved_mark_stops_at_the_first_claim_in_doubt(h, run_id, pool):
    from fp_platform.control.ig.reconcile import advance_mark, in_doubt

    topic = h.topic("FP_BUS_TRAFFIC_FRAUD_V1").name
    with db.connect(h, autocommit=True) as conn:
        claim(conn, run_id, "evt_old_admitted", topic, 300)
        receipt(conn, run_id, "evt_old_admitted", topic)
        claim(conn, run_id, "evt_doubt", topic, 200)
        claim(conn, run_id, "evt_new_admitted", topic, 100)
        receipt(conn, run_id, "evt_new_admitted", topic)
        (doubt_at,) = conn.execute(
            "SELECT claimed_at FROM ig_admissions WHERE platform_run_id = %s AND event_id = 'evt_doubt'", (run_id,)
        ).fetchone()
    assert advance_mark(pool, run_id) == doubt_at
    assert [c["event_id"] for c in in_doubt(pool, run_id, 0)] == ["evt_doubt"]
    with db.connect(h, autocommit=True) as conn:
        receipt(conn, run_id, "evt_doubt", topic)
    assert advance_mark(pool, run_id) > doubt_at  # resolved: the mark moves on past every claim
    assert in_doubt(pool, run_id, 0) == []


def test_the_resolved_mark_never_passes_a_claim_still_being_committed(h, run_id, pool):
    """A claim transaction open while the mark is taken is stamped before the cut-off it imposes, so the
    claim it commits afterwards, still unreceipted, is read by the next reconcile."""
    from fp_platform.control.ig.reconcile import advance_mark, in_doubt

    topic = h.topic("FP_BUS_TRAFFIC_FRAUD_V1").name
    with db.connect(h) as open_tx:  # not autocommit: the claim stays uncommitted until commit()
        claim(open_tx, run_id, "evt_committing", topic, 0)
        mark = advance_mark(pool, run_id)
        open_tx.commit()
    assert [c["event_id"] for c in in_doubt(pool, run_id, 0)] == ["evt_committing"]
    assert advance_mark(pool, run_id) == mark  # and the next mark stops at it

"""Replay anchors come from the bus (issue 20): every record of the run on every topic and partition,
interleaved with other runs' records, exactly as a plain confluent-kafka reader (not the project's bus
code) finds them; and the cross-checks fail when a publisher's receipts or a consumer disagree."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from fp_platform.contracts.envelope import record_headers
from fp_platform.obs_gov import replay_anchors
from fp_platform.substrate import bus, db
from fp_platform_tests.support import unique_run_id


def plain_reader_ranges(h, run_id: str) -> dict[tuple[str, int], tuple[int, int, int]]:
    """(topic, partition) → (first, last, count) of the run's records, read with confluent-kafka alone."""
    c = Consumer(
        {
            "bootstrap.servers": h.get("KAFKA_BOOTSTRAP_SERVERS"),
            "group.id": f"plain-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    found: dict[tuple[str, int], tuple[int, int, int]] = {}
    try:
        for topic, meta in c.list_topics(timeout=10).topics.items():
            if topic.startswith("__"):
                continue
            for p in meta.partitions:
                c.assign([TopicPartition(topic, p, 0)])
                while True:
                    msg = c.poll(5)
                    assert msg is not None, f"{topic}[{p}]: no end of partition"
                    if msg.error():
                        assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                        break
                    if dict(msg.headers() or []).get("platform_run_id") == run_id.encode():
                        lo, hi, n = found.get((topic, p), (msg.offset(), msg.offset(), 0))
                        found[(topic, p)] = (min(lo, msg.offset()), max(hi, msg.offset()), n + 1)
                c.unassign()
    finally:
        c.close()
    return found


@pytest.fixture(scope="module")
def published(h, stack):
    """The run's records on two topics (three partitions), between records of another run."""
    run_id, other = unique_run_id(), unique_run_id()
    producer = Producer({"bootstrap.servers": h.get("KAFKA_BOOTSTRAP_SERVERS"), "enable.idempotence": True})
    refs: list[tuple[str, int, int, str]] = []

    def report(run: str):
        def on_delivery(err, msg):
            assert err is None, err
            refs.append((msg.topic(), msg.partition(), msg.offset(), run))

        return on_delivery

    # topics no spine consumer reads, so no live worker's committed offset can lag behind these records
    audit, control = h.topic("FP_BUS_TRAFFIC_BASELINE_V1").name, h.topic("FP_BUS_LEARNING_REGISTRY_EVENTS_V1").name
    for i in range(30):
        for run in (other, run_id, other):
            topic = audit if i % 3 else control
            headers = record_headers(run, "audit.test", f"evt_{run}_{i}", "h", "test_publisher")
            producer.produce(
                topic, b"{}", partition=i % 2 if topic == audit else 0, headers=headers, on_delivery=report(run)
            )
    producer.flush(30)
    return run_id, refs


def test_anchors_equal_what_a_plain_reader_finds(h, published):
    run_id, refs = published
    consumer = bus.scan_consumer(h)
    try:
        scanned = replay_anchors.scan(h, consumer, run_id)
    finally:
        consumer.close()
    doc = replay_anchors.anchors(scanned)
    mine = {
        (t, a["partition"]): (a["first_offset"], a["last_offset"], a["records"])
        for t, rows in doc.items()
        for a in rows
    }
    expected: dict[tuple[str, int], tuple[int, int, int]] = {}
    for topic, p, offset, run in refs:
        if run == run_id:
            lo, hi, n = expected.get((topic, p), (offset, offset, 0))
            expected[(topic, p)] = (min(lo, offset), max(hi, offset), n + 1)
    assert mine == expected == plain_reader_ranges(h, run_id)
    assert len(mine) == 3 and sum(n for _, _, n in mine.values()) == 30
    for rows in doc.values():
        for a in rows:
            assert a["by_publisher"] == {
                "test_publisher": {
                    "first_offset": a["first_offset"],
                    "last_offset": a["last_offset"],
                    "records": a["records"],
                }
            }


def test_cross_checks_fail_when_the_stores_disagree_with_the_bus(h, published):
    run_id, refs = published
    consumer = bus.scan_consumer(h)
    try:
        scanned = replay_anchors.scan(h, consumer, run_id)
    finally:
        consumer.close()
    empty_p7, empty_p8 = {"topics": {}}, {"workers": {}}
    topic, p, offset, _ = next(r for r in refs if r[3] == run_id)
    with db.connect(h) as conn:  # one transaction, rolled back: nothing of it stays
        base = replay_anchors.consistency(h, conn, run_id, scanned, empty_p7, empty_p8)
        assert base == [
            f"no record of the run on {h.topic('FP_BUS_RTDL_V1').name}",
            f"no record of the run on {h.topic('FP_BUS_AUDIT_V1').name}",
            "P7 snapshot lists no admitted topic",
        ]
        # an ADMIT receipt IG never put on the bus, and a READY publication the bus does not hold
        conn.execute(
            "INSERT INTO ig_receipts (receipt_id, platform_run_id, event_class, event_id, payload_hash, decision,"
            " source, topic, kafka_partition, kafka_offset) VALUES (%s, %s, 'traffic.fraud', 'evt_ghost', 'h',"
            " 'ADMIT', 'ingest', %s, %s, %s)",
            ("rcpt_" + uuid.uuid4().hex, run_id, topic, p, offset),
        )
        conn.execute(
            "INSERT INTO sr_ready_publications (platform_run_id, scenario_run_id, topic, kafka_partition,"
            " kafka_offset, event_id) VALUES (%s, 'scn', %s, 0, 999999999, 'evt_ready')",
            (run_id, h.topic("FP_BUS_CONTROL_V1").name),
        )
        problems = replay_anchors.consistency(h, conn, run_id, scanned, empty_p7, empty_p8)
        conn.rollback()
    assert any(f"{topic}[{p}]" in x and "IG's ADMIT receipts" in x for x in problems), problems
    assert any("SR's READY publication is not a run record on the bus" in x for x in problems), problems

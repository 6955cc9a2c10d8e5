"""bus.deliver with a producer whose local queue fills up (librdkafka's `BufferError: Local: Queue full`)."""

import contextlib
import time
import uuid

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import NewTopic

from fp_platform.substrate import bus

TINY_QUEUE = {"queue.buffering.max.messages": 10}


@pytest.fixture()
def topic(h, stack):
    """A throwaway topic of its own, so no platform consumer reads these records."""
    name = f"fp.test.bus_deliver.{uuid.uuid4().hex[:12]}"
    client = bus.admin(h)
    client.create_topics([NewTopic(name, 2, 1)], operation_timeout=15)[name].result()
    yield name
    with contextlib.suppress(KafkaException):  # if the broker keeps it: harmless, nothing reads it
        client.delete_topics([name], operation_timeout=15)[name].result()


def test_a_full_local_queue_waits_for_room_and_every_record_is_confirmed(h, topic):
    overflow = bus.producer(h, **TINY_QUEUE)
    with pytest.raises(BufferError):  # the queue is this small: a plain produce loop overflows it
        for i in range(100):
            overflow.produce(topic, b"x%d" % i)
    overflow.flush(30)

    n = 3000
    records = [(topic, b"value-%d" % i, b"key-%d" % (i % 7), [("n", str(i))]) for i in range(n)]
    results = bus.deliver(bus.producer(h, **TINY_QUEUE), records, timeout_s=120)

    assert len(results) == n
    assert all(isinstance(r, tuple) and len(r) == 2 for r in results), [r for r in results if isinstance(r, str)][:3]
    by_partition: dict[int, list[int]] = {}
    for partition, offset in results:
        by_partition.setdefault(partition, []).append(offset)
    assert sum(len(v) for v in by_partition.values()) == n
    for offsets in by_partition.values():
        assert len(set(offsets)) == len(offsets)


def test_a_queue_that_never_drains_reports_instead_of_raising():
    """No broker answers: the first records wait in the queue, the rest never fit; within the timeout,
    every record comes back as a reason string."""
    p = Producer({"bootstrap.servers": "127.0.0.1:1", "socket.connection.setup.timeout.ms": 1000, **TINY_QUEUE})
    records = [("fp.test.nowhere", b"v%d" % i, None, []) for i in range(50)]
    started = time.monotonic()
    results = bus.deliver(p, records, timeout_s=1.0)
    assert time.monotonic() - started < 5
    assert all(isinstance(r, str) for r in results)
    assert results[-1].startswith("not produced: the producer's local queue stayed full")
    p.purge()

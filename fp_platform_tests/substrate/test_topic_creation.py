"""Topics are created with the profile's replication factor: one on the single local broker, the broker's own
default (-1, KIP-464) on managed Kafka, which refuses a factor of one (Confluent) or sets its own (MSK)."""

import pytest
from confluent_kafka.admin import NewTopic

from fp_platform.handles import handles
from fp_platform.substrate import bus


class _Future:
    def result(self) -> None:
        return None


class _Admin:
    """What `ensure_topics` asks of confluent-kafka's AdminClient, recording the topics it is asked to create."""

    def __init__(self) -> None:
        self.created: list[NewTopic] = []

    def list_topics(self, timeout: float):
        names = {t.topic: None for t in self.created}
        return type("Metadata", (), {"topics": {n: type("T", (), {"partitions": {}})() for n in names}})()

    def create_topics(self, topics: list[NewTopic], operation_timeout: float):
        self.created += topics
        return {t.topic: _Future() for t in topics}


@pytest.mark.parametrize("profile,factor", [("local", 1), ("dev_min", -1), ("dev_full", -1)])
def test_each_profile_creates_its_topics_with_its_replication_factor(monkeypatch, profile, factor):
    h = handles(profile)
    fake = _Admin()
    monkeypatch.setattr(bus, "admin", lambda _h: fake)
    bus.ensure_topics(h)
    assert {t.topic for t in fake.created} == {t.name for t in h.topics()}
    assert {t.replication_factor for t in fake.created} == {factor}
    assert all(t.num_partitions == next(x.partitions for x in h.topics() if x.name == t.topic) for t in fake.created)

"""Kafka-protocol event bus clients (Tansu locally, Confluent Cloud / MSK in the cloud profiles)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import botocore.session
from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from fp_platform.handles import Handles, Topic
from fp_platform.substrate.secrets import get_secret
from fp_platform.substrate.settings import BusSettings


def client_config(h: Handles) -> dict[str, Any]:
    """librdkafka settings shared by producers, consumers and the admin client."""
    protocol = h.get("KAFKA_SECURITY_PROTOCOL")
    conf: dict[str, Any] = {"security.protocol": protocol}
    mechanism = h.values.get("KAFKA_SASL_MECHANISM")
    if h.values.get("KAFKA_BOOTSTRAP_SERVERS"):
        conf["bootstrap.servers"] = h.get("KAFKA_BOOTSTRAP_SERVERS")
    else:  # published by terraform into SSM: Confluent Cloud (dev_min) or MSK (dev_full)
        path_key = "SSM_MSK_BOOTSTRAP_BROKERS_PATH" if mechanism == "OAUTHBEARER" else "SSM_CONFLUENT_BOOTSTRAP_PATH"
        conf["bootstrap.servers"] = get_secret(h, path_key)
    if mechanism == "PLAIN":
        conf.update(
            {
                "sasl.mechanism": "PLAIN",
                "sasl.username": get_secret(h, "SSM_CONFLUENT_API_KEY_PATH"),
                "sasl.password": get_secret(h, "SSM_CONFLUENT_API_SECRET_PATH"),
            }
        )
    elif mechanism == "OAUTHBEARER":
        conf.update({"sasl.mechanism": "OAUTHBEARER", "oauth_cb": msk_iam_token_cb(h.get("AWS_REGION"))})
    return conf


def msk_iam_token_cb(region: str) -> Callable[[str], tuple[str, float]]:
    """librdkafka's `oauth_cb` for MSK IAM (dev_full): a SigV4-presigned token from the AWS credentials in reach
    (task role, env, profile), signed locally by aws-msk-iam-sasl-signer-python, and its expiry in epoch
    seconds. librdkafka calls it again before the expiry, so a token never outlives the credentials' rotation."""

    def token(_config: str) -> tuple[str, float]:
        # the signer dereferences missing credentials (AttributeError on None): say what is missing instead
        if botocore.session.Session().get_credentials() is None:
            raise KafkaException("MSK IAM: no AWS credentials in reach (task role, environment or profile)")
        tok, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        return tok, expiry_ms / 1000

    return token


def producer(h: Handles, **overrides: Any) -> Producer:
    """Idempotent producer, acks=all: a retried send never duplicates a record."""
    conf = {**client_config(h), "enable.idempotence": True, "acks": "all", "linger.ms": 5, **overrides}
    return Producer(conf)


Record = tuple[str, bytes, bytes | None, list[tuple[str, str]]]  # topic, value, key, headers


_POLL_EVERY = 256  # records produced between two polls that serve delivery reports


def produce_all(p: Producer, records: list[Record], report: Callable[[int], Callable], deadline: float) -> int:
    """Produce `records` in order without waiting for their delivery reports (`report(i)` is record i's
    callback, served by the producer's poll/flush); how many were produced. When librdkafka's local queue is
    full (`BufferError`), wait for it to drain (serving delivery reports) and produce again, until `deadline`
    (monotonic): the records from the returned index on were not produced. A record the client refuses
    outright gets its error through its own callback."""
    for i, (topic, value, key, headers) in enumerate(records):
        while True:
            try:
                p.produce(topic, value, key, headers=headers, on_delivery=report(i))
                break
            except BufferError:  # "Local: Queue full": let the queue drain, then try again
                left = deadline - time.monotonic()
                if left <= 0:
                    return i
                p.poll(min(left, 0.1))
            except KafkaException as exc:  # refused before it was queued (e.g. MSG_SIZE_TOO_LARGE): never
                report(i)(exc.args[0], None)  # produced, so its report is that error, not a raise that hides
                break  # the rest of the batch
        if i % _POLL_EVERY == _POLL_EVERY - 1:
            p.poll(0)
    return len(records)


def deliver(p: Producer, records: list[Record], timeout_s: float = 60.0) -> list[tuple[int, int] | str]:
    """Produce and wait for every delivery report: (partition, offset) each, or why it is unconfirmed.

    `timeout_s` bounds the whole call, waits for room in a full local queue included, and a record
    still not produced by then is reported unconfirmed, as one without its report is."""
    results: list[tuple[int, int] | str] = ["no delivery report"] * len(records)
    deadline = time.monotonic() + timeout_s

    def report(i: int):
        def on_delivery(err, msg) -> None:
            results[i] = str(err) if err is not None else (msg.partition(), msg.offset())

        return on_delivery

    produced = produce_all(p, records, report, deadline)
    if produced < len(records):
        results[produced:] = [f"not produced: the producer's local queue stayed full for {timeout_s:g}s"] * (
            len(records) - produced
        )
        p.flush(0)
        return results
    p.flush(max(deadline - time.monotonic(), 0.0))
    return results


def consumer(h: Handles, group_id: str, **overrides: Any) -> Consumer:
    """Manual-commit consumer (commit after the durable write), earliest when no checkpoint."""
    conf = {
        **client_config(h),
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": BusSettings.load(h).consumer_session_timeout_ms,
        "heartbeat.interval.ms": BusSettings.load(h).consumer_heartbeat_interval_ms,
        **overrides,
    }
    return Consumer(conf)


def admin(h: Handles) -> AdminClient:
    return AdminClient(client_config(h))


@dataclass(frozen=True)
class TopicState:
    topic: Topic
    partitions: int | None
    created: bool

    @property
    def ok(self) -> bool:
        return self.partitions is not None and self.partitions >= self.topic.partitions


def ensure_topics(h: Handles, timeout_s: float = 15.0) -> list[TopicState]:
    """Create every topic of the registry that is missing; report each topic's state."""
    client = admin(h)
    existing = client.list_topics(timeout=timeout_s).topics
    wanted = [t for t in h.topics() if t.name not in existing]
    created: set[str] = set()
    # -1: the broker's default (KIP-464), what a managed Kafka requires (Confluent refuses a factor of 1)
    replication = h.values.get("KAFKA_TOPIC_REPLICATION_FACTOR") or -1
    if wanted:
        futures = client.create_topics(
            [NewTopic(t.name, t.partitions, replication, config={"retention.ms": str(t.retention_ms)}) for t in wanted],
            operation_timeout=timeout_s,
        )
        for name, fut in futures.items():
            try:
                fut.result()
                created.add(name)
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
        existing = client.list_topics(timeout=timeout_s).topics
    return [
        TopicState(
            topic=t,
            partitions=len(existing[t.name].partitions) if t.name in existing else None,
            created=t.name in created,
        )
        for t in h.topics()
    ]


def scan_consumer(h: Handles) -> Consumer:
    """Assign-only reader for topic scans: joins no group, commits nothing, reports partition EOF."""
    return consumer(
        h, h.get("CONSUMER_GROUP_ID_TOPIC_SCAN"), **{"enable.partition.eof": True, "fetch.wait.max.ms": 20}
    )  # at the end, do not long-poll


def partitions(c: Consumer, topic: str) -> list[int]:
    return sorted(c.list_topics(topic, timeout=10).topics[topic].partitions)


def read_partition(
    c: Consumer, topic: str, partition: int, start: int = 0, idle_timeout_s: float = 10.0
) -> Iterator[Message]:
    """Every record of one partition from `start` to its end. The end is the fetch's partition EOF,
    not ListOffsets: Tansu 0.6 answers ListOffsets(latest) below the real end of the log."""
    low, high = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    start = max(low, min(start, high))  # the reported end may lag, never lead: starting earlier only reads more
    c.assign([TopicPartition(topic, partition, start)])
    idle_since = time.monotonic()
    try:
        while True:
            batch = c.consume(1000, timeout=0.1)  # returns early only when 1000 arrive: keep the wait short
            if not batch:
                if time.monotonic() - idle_since > idle_timeout_s:
                    raise KafkaException(
                        f"{topic}[{partition}]: no data and no end of partition within "
                        f"{idle_timeout_s:.0f}s of offset {start}"
                    )
                continue
            idle_since = time.monotonic()
            for msg in batch:
                err = msg.error()
                if err is None:
                    yield msg
                elif err.code() == KafkaError._PARTITION_EOF:
                    return
                else:
                    raise KafkaException(err)
    finally:
        c.unassign()

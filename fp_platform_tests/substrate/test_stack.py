"""The local substrate with ordinary clients: boto3, confluent-kafka, psycopg and psql."""

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import replace

import boto3
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from fp_platform.substrate import bus, db, local_stack
from fp_platform.substrate.secrets import get_secret


def test_status_reports_every_component_healthy(h, stack):
    statuses = {s.name: s for s in local_stack.status(h)}
    assert set(statuses) == {"postgres", "seaweedfs", "tansu"}
    for s in statuses.values():
        assert s.healthy, s
        assert s.version and s.version != "missing"
        assert "127.0.0.1" in s.endpoint


def test_up_is_idempotent(h, stack):
    before = {s.name: s.pid for s in local_stack.status(h)}
    again = {s.name: s.pid for s in local_stack.up(h)}
    assert again == before


def test_servers_listen_on_loopback_only(h, stack):
    pids = {s.pid for s in local_stack.status(h)}
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    ours = [line for line in out.splitlines() if any(f"pid={p}," in line for p in pids)]
    assert ours, out
    for line in ours:
        local = line.split()[3]
        assert local.startswith("127.0.0.1:"), line


def test_boto3_lists_buckets_and_round_trips_an_object(h, stack):
    s3 = boto3.client(
        "s3",
        endpoint_url=h.get("S3_ENDPOINT_URL"),
        aws_access_key_id=get_secret(h, "SSM_S3_ACCESS_KEY_ID_PATH"),
        aws_secret_access_key=get_secret(h, "SSM_S3_SECRET_ACCESS_KEY_PATH"),
        region_name=h.get("AWS_REGION"),
    )
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert set(h.buckets().values()) <= names
    key = f"tests/{uuid.uuid4()}.txt"
    s3.put_object(Bucket=h.get("S3_ARCHIVE_BUCKET"), Key=key, Body=b"hello")
    assert s3.get_object(Bucket=h.get("S3_ARCHIVE_BUCKET"), Key=key)["Body"].read() == b"hello"


def test_s3_refuses_anonymous_and_wrong_credentials(h, stack):
    import botocore.exceptions

    s3 = boto3.client(
        "s3",
        endpoint_url=h.get("S3_ENDPOINT_URL"),
        aws_access_key_id="nobody",
        aws_secret_access_key="wrong",
        region_name=h.get("AWS_REGION"),
    )
    with pytest.raises(botocore.exceptions.ClientError):
        s3.list_buckets()


def test_kafka_producer_and_consumer_exchange_on_control_topic(h, stack):
    topic = h.topic("FP_BUS_CONTROL_V1").name
    marker = uuid.uuid4().hex.encode()
    conf = bus.client_config(h)
    producer = Producer({**conf, "enable.idempotence": True})
    delivered = []
    producer.produce(topic, key=b"platform_test", value=marker, on_delivery=lambda e, m: delivered.append((e, m)))
    assert producer.flush(15) == 0
    err, msg = delivered[0]
    assert err is None
    consumer = Consumer({**conf, "group.id": f"test-{uuid.uuid4().hex}", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, msg.partition(), msg.offset())])
    got = consumer.poll(15)
    consumer.close()
    assert got is not None and got.error() is None
    assert got.value() == marker


def test_every_registry_topic_exists_with_its_partitions(h, stack):
    for state in bus.ensure_topics(h):
        assert state.ok, state
        assert not state.created  # stack up already created them


def test_psycopg_and_psql_connect(h, stack):
    with db.connect(h) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == h.get("DB_NAME")
        assert conn.execute("SHOW server_version").fetchone()[0].startswith("16")
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("no psql client on this machine (psycopg checked above)")
    out = subprocess.run([psql, db.dsn(h), "-tAc", "SELECT 40 + 2"], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "42", out.stderr


def test_stack_up_recovers_a_crashed_broker(h, stack):
    tansu = local_stack.Tansu(h)
    old_pid = tansu.pid()
    os.kill(old_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while tansu.pid() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tansu.status().healthy
    statuses = {s.name: s for s in local_stack.up(h)}
    assert statuses["tansu"].healthy and statuses["tansu"].pid != old_pid
    assert all(s.ok for s in bus.ensure_topics(h))


def test_port_in_use_gives_one_clear_line(h, tmp_path, monkeypatch):
    monkeypatch.setenv("FP_STATE_DIR", str(tmp_path))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        busy = replace(h, values={**h.values, "LOCAL_KAFKA_PORT": port})
        with pytest.raises(local_stack.StackError) as exc:
            local_stack.Tansu(busy).up()
    message = str(exc.value)
    assert f"port {port}" in message and "in use" in message and "\n" not in message


def test_missing_binary_gives_one_clear_line(h, tmp_path, monkeypatch):
    monkeypatch.setenv("FP_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(local_stack.SeaweedFS, "binary", lambda self: tmp_path / "no-weed")
    with pytest.raises(local_stack.StackError, match="binary .* is missing; run `make setup`"):
        local_stack.SeaweedFS(h).up()


def _produce_one(h, topic: str, value: bytes):
    producer = Producer({**bus.client_config(h), "enable.idempotence": True})
    delivered = []
    producer.produce(topic, value=value, on_delivery=lambda e, m: delivered.append((e, m.partition(), m.offset())))
    assert producer.flush(15) == 0 and delivered[0][0] is None
    return delivered[0][1:]


def _read_at(h, topic: str, partition: int, offset: int) -> bytes | None:
    consumer = Consumer({**bus.client_config(h), "group.id": f"test-{uuid.uuid4().hex}"})
    consumer.assign([TopicPartition(topic, partition, offset)])
    msg = consumer.poll(15)
    consumer.close()
    return msg.value() if msg is not None and msg.error() is None else None


def test_s3_bus_storage_survives_a_broker_restart_and_down_cleans_up(h, stack):
    """Runs last in this module: it restarts the broker on S3 storage, then back on memory."""
    topic = h.topic("FP_BUS_CONTROL_V1").name
    try:
        statuses = {s.name: s for s in local_stack.up(h, bus_storage="s3")}
        assert "(s3)" in statuses["tansu"].endpoint and statuses["tansu"].healthy
        marker = uuid.uuid4().hex.encode()
        partition, offset = _produce_one(h, topic, marker)
        local_stack.Tansu(h).stop()
        assert local_stack.Tansu(h).pid() is None
        local_stack.up(h)
        assert _read_at(h, topic, partition, offset) == marker
    finally:
        local_stack.up(h, bus_storage="memory")
    stopped = local_stack.down(h)
    assert set(stopped) == {"postgres", "seaweedfs", "tansu"}
    assert not any(s.healthy or s.pid for s in local_stack.status(h))
    assert all(s.healthy for s in local_stack.up(h))

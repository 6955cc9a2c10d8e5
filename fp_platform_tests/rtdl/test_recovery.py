"""Worker discipline on the real stack: run scope, one replica, and the recovery drill — each core
worker (archive, IEG, the decision processor) kill -9'd mid-stream, restarted by the supervisor sensor,
ends in the same state as a run without the crash."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time

import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, build_sensor_context

from fp_platform.benches.rtdl import publish_admitted as publish
from fp_platform.benches.rtdl import rebind
from fp_platform.benches.rtdl import world_envelopes as envelopes
from fp_platform.operate import daemons, supervisor
from fp_platform.operate.active_run import read_active_run, record_active_run
from fp_platform.operate.packs import SPINE_PACKS, pack
from fp_platform.operate.sensors import pack_supervisor
from fp_platform.resources import PlatformResource
from fp_platform.rtdl.caught_up import CORE_WORKERS
from fp_platform.rtdl.entity_graph import IegProjector
from fp_platform.substrate import db
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.substrate.worker import WorkerError
from fp_platform_tests.support import smoke_world, unique_run_id, wait_consumed


def state(h, run_id: str) -> dict[str, object]:
    """Everything the core workers derived for a run, without run ids and bus offsets."""
    q = {
        "ieg_entities": "SELECT entity_type, entity_id, first_seen, last_seen, sightings FROM ieg_entities",
        "ieg_edges": "SELECT src_type, src_id, dst_type, dst_id, first_seen, last_seen, sightings FROM ieg_edges",
        "ofp_features": "SELECT event_id, feature_version, features FROM ofp_features",
        "df_decisions": "SELECT event_id, decision, score, degrade_reasons, binding_status, features FROM df_decisions",
        "csfb_bindings": "SELECT event_id, flow_id, status, reasons FROM csfb_flow_bindings",
    }
    out: dict[str, object] = {}
    with db.connect(h) as conn:
        for name, sql in q.items():
            out[name] = sorted(conn.execute(sql + " WHERE platform_run_id = %s", (run_id,)).fetchall())
        keys = [
            r[0] for r in conn.execute("SELECT object_key FROM archive_segments WHERE platform_run_id = %s", (run_id,))
        ]
    store = S3ObjectStore(h)
    archived = []
    for key in keys:
        table = pq.read_table(io.BytesIO(store.get(h.get("S3_ARCHIVE_BUCKET"), key)), columns=["event_id"])
        archived += table.column("event_id").to_pylist()
    out["archive"] = sorted(archived)
    return out


def wait_core(h, published, timeout_s: float = 240.0) -> None:
    """Every core worker has consumed the records, and every traffic event is decided (the decision processor
    consumes an event before it decides it: one parked for its context is decided later)."""
    for cls in CORE_WORKERS:
        wait_consumed(
            h,
            h.get(cls.identity.group_key),
            published.ends,
            {h.topic(k).name for k in cls.identity.topic_keys},
            timeout_s,
        )
    traffic = len(published.event_ids.get("traffic.fraud", []))
    deadline = time.monotonic() + timeout_s
    with db.connect(h, autocommit=True) as conn:
        while (
            decided := conn.execute(
                "SELECT count(*) FROM df_decisions WHERE platform_run_id = %s", (published.run_id,)
            ).fetchone()[0]
        ) < traffic:
            assert time.monotonic() < deadline, f"{decided} of {traffic} traffic events decided"
            time.sleep(0.5)


@pytest.fixture(scope="module")
def items(h):
    return envelopes(h, "platform_20000101T000000Z", smoke_world(days=10))


def test_other_runs_are_skipped_and_checkpointed(h, stack, items):
    mine, other = unique_run_id(), unique_run_id()
    half = len(items) // 2
    publish(h, other, rebind(items[:half], other))
    pub = publish(h, mine, rebind(items[half:], mine))
    publish(h, other, rebind(items[:half], other))  # after mine too: skipped, yet the checkpoint passes it
    group = f"test.scope.{mine}"
    stats = IegProjector(h, mine, group_id=group).run(until_idle_s=2, install_signals=False)
    with db.connect(h) as conn:
        assert conn.execute("SELECT count(*) FROM ieg_entities WHERE platform_run_id = %s", (other,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM ieg_entities WHERE platform_run_id = %s", (mine,)).fetchone()[0] > 0
        skipped, applied = conn.execute(
            "SELECT sum(skipped), sum(applied) FROM worker_offsets WHERE consumer_group = %s", (group,)
        ).fetchone()
    topics = {h.topic(k).name for k in IegProjector.identity.topic_keys}
    mine_n = sum(len(v) for c, v in pub.event_ids.items() if c in ("traffic.fraud", "context.arrival_entities"))
    assert applied == stats.applied == mine_n
    assert skipped >= 2 * sum(1 for t, e in items[:half] if t in topics)
    wait_consumed(h, group, pub.ends, topics, timeout_s=1)  # the checkpoint is at the end of the log


def test_a_worker_without_run_scope_or_as_second_replica_fails_closed(h, stack):
    env = {k: v for k, v in os.environ.items() if k != h.get("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")}
    out = subprocess.run(
        [sys.executable, "-m", "fp_platform.rtdl", "identity_entity_graph"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "no run scope" in out.stderr
    run_id = unique_run_id()
    group = f"test.replica.{run_id}"
    with db.connect(h, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (group,))
        with pytest.raises(WorkerError, match="another replica"):
            IegProjector(h, run_id, group_id=group).run(until_idle_s=1, install_signals=False)


def test_kill_9_each_core_worker_mid_stream_changes_nothing(h, stack, items, dagster_env):
    core = (pack(h, h.get("PACK_ID_RTDL_CORE")),)
    previous = read_active_run(h)
    calm, drilled = unique_run_id(), unique_run_id()
    try:
        with db.connect(h, autocommit=True) as conn:
            supervisor.reconcile(h, conn, calm, core)
            wait_core(h, publish(h, calm, rebind(items, calm)))
            reference = state(h, calm)

            record_active_run(h, drilled)  # the sensor supervises the active run
            context = build_sensor_context(
                instance=DagsterInstance.ephemeral(), resources={"platform": PlatformResource(profile="local")}
            )
            pack_supervisor(context)
            result: dict = {}
            streamer = threading.Thread(
                target=lambda: result.update(pub=publish(h, drilled, rebind(items, drilled), chunks=40, pause_s=0.4))
            )
            streamer.start()
            restarted = []
            for cls in CORE_WORKERS:
                component = h.get(cls.identity.component_key)
                victim = daemons.running(component)
                assert victim and victim.platform_run_id == drilled
                _wait_applied(conn, h.get(cls.identity.group_key))
                os.kill(victim.pid, signal.SIGKILL)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    pack_supervisor(context)
                    now = daemons.running(component)
                    if now and now.pid != victim.pid:
                        restarted.append(component)
                        break
                    time.sleep(0.5)
            streamer.join()
            wait_core(h, result["pub"])
            rows = {s.component: s for s in supervisor.status(h, conn, core)}
        assert restarted == [h.get(c.identity.component_key) for c in CORE_WORKERS]
        assert all(rows[c].restarts >= 1 for c in restarted)
        after = state(h, drilled)
        for name, rows_ in reference.items():
            assert after[name] == rows_, f"{name} differs after the crash drill"
        assert len(after["archive"]) == len(set(after["archive"])) == len(items)
    finally:
        with db.connect(h, autocommit=True) as conn:  # the packs the sensor started for the drill
            supervisor.down(h, conn, SPINE_PACKS)
        if previous:
            record_active_run(h, previous)


def _wait_applied(conn, group: str, timeout_s: float = 120.0) -> None:
    """Until the group has applied something of the stream in progress (so the kill lands mid-stream)."""
    start = conn.execute(
        "SELECT coalesce(sum(applied), 0) FROM worker_offsets WHERE consumer_group = %s", (group,)
    ).fetchone()[0]
    deadline = time.monotonic() + timeout_s
    while (
        conn.execute(
            "SELECT coalesce(sum(applied), 0) FROM worker_offsets WHERE consumer_group = %s", (group,)
        ).fetchone()[0]
        == start
    ):
        assert time.monotonic() < deadline, f"{group} applied nothing"
        time.sleep(0.1)


def test_a_checkpoint_of_another_log_is_not_trusted(h, stack, items):
    """A memory-mode broker restarted under a surviving database: the saved offset and digest do not
    match the log, so the worker reads the partition again instead of skipping the run's records."""
    run_id = unique_run_id()
    group = f"test.newlog.{run_id}"
    pub = publish(h, run_id, rebind(items, run_id))
    topics = {h.topic(k).name for k in IegProjector.identity.topic_keys}
    with db.connect(h, autocommit=True) as conn:
        for (topic, part), end in pub.ends.items():
            if topic in topics:  # a checkpoint from the "old" log: inside the run's range, wrong record
                conn.execute(
                    "INSERT INTO worker_offsets (consumer_group, topic, kafka_partition, next_offset,"
                    " last_digest) VALUES (%s, %s, %s, %s, 'not-this-log')",
                    (group, topic, part, end - 50),
                )
    worker = IegProjector(h, run_id, group_id=group)
    stats = worker.run(until_idle_s=2, install_signals=False)
    applied = sum(len(v) for c, v in pub.event_ids.items() if c in ("traffic.fraud", "context.arrival_entities"))
    assert stats.applied == applied
    assert stats.counters["checkpoints_of_another_log"] == 4
    wait_consumed(h, group, pub.ends, topics, timeout_s=1)
    again = IegProjector(h, run_id, group_id=group).run(until_idle_s=1, install_signals=False)
    assert again.applied == 0 and again.counters["checkpoints_of_another_log"] == 0  # a true checkpoint holds

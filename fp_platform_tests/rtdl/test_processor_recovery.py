"""The decision processor's recovery on the real stack: kill -9 before the DB commit, between the DB commit
and the publish, between the publish and the Kafka commit, and while a snapshot is being written — after
the restarts, decisions, vectors and bindings equal an uncrashed run's, no decision_id is on the bus with two
different payloads, AL acts once per decision; and the state restored from a snapshot equals the state
rebuilt from the log start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from confluent_kafka import TopicPartition

from fp_platform.benches.rtdl import publish_admitted as publish
from fp_platform.benches.rtdl import rebind
from fp_platform.benches.rtdl import world_envelopes as envelopes
from fp_platform.contracts.envelope import record_identity
from fp_platform.rtdl.action_layer import ActionLayer
from fp_platform.rtdl.processor import SNAPSHOT_INTERVAL_ENV, DecisionProcessor
from fp_platform.substrate import bus, db
from fp_platform.substrate.worker import FAILPOINT_ENV, record_digest
from fp_platform_tests.support import smoke_world, unique_run_id

CRASH_POINTS = ("before_db_commit:3", "after_db_commit:3", "before_kafka_commit:3", "snapshot_forked:2")


@pytest.fixture(scope="module")
def items(h):
    return envelopes(h, "platform_20000101T000000Z", smoke_world(days=10))


def derived(h, run_id: str) -> dict[str, list]:
    """What the processor decided and derived for a run (without run ids, timings and bus offsets)."""
    q = {
        "decisions": "SELECT event_id, decision, reason_codes, score, score_source, degrade_reasons,"
        " binding_status, features, posture FROM df_decisions",
        "vectors": "SELECT event_id, features FROM ofp_features",
        "bindings": "SELECT event_id, flow_id, status, reasons FROM csfb_flow_bindings",
    }
    with db.connect(h) as conn:
        return {
            k: sorted(conn.execute(sql + " WHERE platform_run_id = %s", (run_id,)).fetchall()) for k, sql in q.items()
        }


def processor(h, run_id: str, group: str, failpoint: str | None = None) -> int:
    """`python -m fp_platform.rtdl decision_processor` until idle (a snapshot every batch), as the supervisor
    starts it; its exit code (-9 when the failpoint killed it)."""
    env = {**os.environ, SNAPSHOT_INTERVAL_ENV: "0"}
    env.pop(FAILPOINT_ENV, None)
    if failpoint:
        env[FAILPOINT_ENV] = failpoint
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "fp_platform.rtdl",
            "decision_processor",
            "--run-id",
            run_id,
            "--group",
            group,
            "--until-idle",
            "3",
        ],
        env=env,
        capture_output=True,
        timeout=300,
    ).returncode


def rtdl_records(h, run_id: str) -> dict[str, set[str]]:
    """decision_id / action_id -> the digests of its records on fp.bus.rtdl.v1 for the run."""
    topic, c = h.topic("FP_BUS_RTDL_V1").name, bus.scan_consumer(h)
    out: dict[str, set[str]] = {}
    try:
        for p in bus.partitions(c, topic):
            low, _ = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            for m in bus.read_partition(c, topic, p, low):
                ident = record_identity(m.headers())
                if ident.get("platform_run_id") == run_id:
                    out.setdefault(ident["event_id"], set()).add(record_digest(m.value()))
    finally:
        c.close()
    return out


def test_kill_9_at_each_point_decides_nothing_twice_and_changes_nothing(h, stack, items):
    calm, drilled = unique_run_id(), unique_run_id()
    publish(h, calm, rebind(items, calm))
    publish(h, drilled, rebind(items, drilled))
    assert processor(h, calm, f"test.calm.{calm}") == 0
    group = f"test.crash.{drilled}"
    for point in CRASH_POINTS:
        assert processor(h, drilled, group, point) == -9, f"{point} did not fire"
    assert processor(h, drilled, group) == 0
    reference, after = derived(h, calm), derived(h, drilled)
    assert len(reference["decisions"]) == sum(e["event_class"] == "traffic.fraud" for _, e in items)
    for name, rows in reference.items():
        diff = [(a, b) for a, b in zip(after[name], rows, strict=True) if a != b]
        assert not diff, f"{name} differ after the crashes, e.g. {diff[:2]}"
    records = rtdl_records(h, drilled)
    assert all(len(digests) == 1 for digests in records.values()), "a decision was published with other bytes"
    assert len(records) == 2 * len(reference["decisions"])  # a decision and an intent each
    stats = ActionLayer(h, drilled, group_id=f"test.crash.al.{drilled}").run(until_idle_s=3, install_signals=False)
    with db.connect(h) as conn:
        outcomes, acted_twice = conn.execute(
            "SELECT count(*), count(*) - count(DISTINCT decision_id) FROM al_outcomes WHERE platform_run_id = %s",
            (drilled,),
        ).fetchone()
    assert outcomes == len(reference["decisions"]) and acted_twice == 0
    assert stats.counters["outcomes"] == outcomes


def test_a_restart_from_a_snapshot_equals_a_restart_from_the_log(h, stack, items):
    run_id = unique_run_id()
    group = f"test.snap.{run_id}"
    half = len(items) // 2
    publish(h, run_id, rebind(items[:half], run_id))
    first = DecisionProcessor(h, run_id, group_id=group)
    first.snapshot_every_s = 0.0
    first.run(until_idle_s=3, install_signals=False)
    if first._snapshot_child is not None:  # the last snapshot's child is still writing
        os.waitpid(first._snapshot_child, 0)
    publish(h, run_id, rebind(items[half:], run_id))  # records after the snapshot, replayed on restart
    with db.connect(h, autocommit=True) as conn:
        from_snapshot = DecisionProcessor(h, run_id, group_id=group)
        from_snapshot.on_start(conn)
        from_log = DecisionProcessor(h, run_id, group_id=group)
        from_log._restore_snapshot = lambda saved: {}  # noqa: SLF001 - the same restart without the snapshot
        from_log.on_start(conn)
    assert from_snapshot.stats.counters["snapshot_restored_seq"] > 0
    assert from_snapshot.stats.counters["restore_replayed"] < from_log.stats.counters["restore_replayed"]
    assert from_snapshot.state.to_doc() == from_log.state.to_doc()
    assert from_snapshot.state.events.keys() == from_log.state.events.keys() != set()
    assert from_snapshot.pending.keys() == from_log.pending.keys()
    for p in (from_snapshot, from_log):  # each pending event waits once (a second entry would decide it twice)
        assert sorted(e for _, e in p._by_ts) == sorted(p.pending)

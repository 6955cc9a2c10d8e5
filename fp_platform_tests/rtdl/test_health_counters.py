"""AL's and DLA's heartbeat counters are kept in the worker (read from the DB once at start, moved by each
batch), never counted over the run at a heartbeat: at every step of a small lane — audit before the
outcomes exist, outcomes, chains closing, a replay full of duplicates — they equal the SQL counts the P9
gates use. Off-path workers take the larger off-path batches."""

from __future__ import annotations

import orjson
import pytest

from fp_platform.benches.rtdl import publish_admitted, rebind, world_envelopes
from fp_platform.case_labels.summary import CASE_LABELS_WORKERS
from fp_platform.contracts.envelope import record_headers
from fp_platform.rtdl import action_layer, decision_lane, decision_log
from fp_platform.rtdl.action_layer import ActionLayer
from fp_platform.rtdl.archive import ArchiveWriter
from fp_platform.rtdl.caught_up import CORE_WORKERS
from fp_platform.rtdl.decision_log import DecisionLogAudit
from fp_platform.rtdl.entity_graph import IegProjector
from fp_platform.substrate import bus, db
from fp_platform.substrate.worker import Worker
from fp_platform_tests.support import Lane, smoke_world, unique_run_id

# What decides before AL and DLA (DL and DF, however they are hosted): the core and the lane without those two.
DECIDERS = tuple(
    c for c in (*CORE_WORKERS, *decision_lane.DECISION_LANE_WORKERS) if c not in (ActionLayer, DecisionLogAudit)
)


class NoQueries:
    """A connection that fails any query: a heartbeat's counters must not come from scanning the run."""

    def execute(self, *args, **kwargs):
        raise AssertionError("health() queried the database")

    def cursor(self, *args, **kwargs):
        raise AssertionError("health() queried the database")


@pytest.fixture(scope="module")
def lane(h, stack) -> Lane:
    """A small run, decided; AL and DLA are left to the tests."""
    run_id = unique_run_id()
    items = rebind(world_envelopes(h, run_id, smoke_world(days=7)), run_id)
    items = items[: len(items) // 4]
    publish_admitted(h, run_id, items, receipts=True)
    lane = Lane(run_id, f"test.health.{run_id}", sum(env["event_class"] == "traffic.fraud" for _, env in items))
    lane.run(h, *DECIDERS)
    return lane


def _publish_again(h, lane: Lane, envelopes: list[dict]) -> None:
    """Put rtdl records on the bus again, as their producer would (new offsets)."""
    records = [
        (
            h.topic("FP_BUS_RTDL_V1").name,
            orjson.dumps(env),
            env["payload"]["decision_id"].encode(),
            record_headers(lane.run_id, env["event_class"], env["event_id"], env["payload_hash"], "test"),
        )
        for env in envelopes
    ]
    assert not [r for r in bus.deliver(bus.producer(h), records) if isinstance(r, str)]


def _audited(h, lane: Lane, *classes: str) -> list[dict]:
    with db.connect(h) as conn:
        return [
            r
            for (r,) in conn.execute(
                "SELECT record FROM dla_audit_records WHERE platform_run_id = %s"
                " AND event_class = ANY(%s) ORDER BY origin_offset",
                (lane.run_id, list(classes)),
            )
        ]


def _run(h, lane: Lane, cls: type[Worker]) -> Worker:
    worker = cls(h, lane.run_id, group_id=lane.group(cls))
    worker.run(until_idle_s=2, install_signals=False)
    return worker


def _al_parity(h, lane: Lane, worker: ActionLayer) -> dict[str, int]:
    beat = worker.health(NoQueries())[1]["run_parity"]
    with db.connect(h) as conn:
        assert beat == action_layer.intake_parity(conn, lane.run_id)
    return beat


def _dla_unresolved(h, lane: Lane, worker: DecisionLogAudit) -> int:
    beat = worker.health(NoQueries())[1]["lineage_unresolved_total"]
    with db.connect(h) as conn:
        assert beat == decision_log.lineage_unresolved(conn, lane.run_id)
    return beat


def test_al_and_dla_heartbeat_counters_equal_the_sql_counts(h, lane):
    n = lane.traffic
    assert n > 0
    # DLA before AL: every decision audited with its intent, no outcome yet, so no chain closes
    assert _dla_unresolved(h, lane, _run(h, lane, DecisionLogAudit)) == n
    assert _al_parity(h, lane, _run(h, lane, ActionLayer)) == {
        "intents": n,
        "intent_deliveries": n,
        "duplicates_prevented": 0,
        "outcomes": n,
    }
    # a new DLA process starts from the DB's n open decisions and closes every chain with the outcomes
    closing = _run(h, lane, DecisionLogAudit)
    assert closing.stats.counters["chains_closed"] == n
    assert _dla_unresolved(h, lane, closing) == 0
    # replay (what DF does after its checkpoint is reset): every decision and intent again, same ids;
    # AL prevents the duplicates, DLA records the redeliveries
    _publish_again(h, lane, _audited(h, lane, "rtdl.decision_response", "rtdl.action_intent"))
    assert _al_parity(h, lane, _run(h, lane, ActionLayer)) == {
        "intents": n,
        "intent_deliveries": 2 * n,
        "duplicates_prevented": n,
        "outcomes": n,
    }
    replayed = _run(h, lane, DecisionLogAudit)
    assert replayed.stats.counters["redeliveries"] == 2 * n
    assert _dla_unresolved(h, lane, replayed) == 0
    # an outcome under a new id for a decision whose chain closed: audited, but it opens nothing
    env = _audited(h, lane, "rtdl.action_outcome")[0]
    _publish_again(h, lane, [{**env, "event_id": env["event_id"] + "_again"}])
    late = _run(h, lane, DecisionLogAudit)
    assert late.stats.counters["audit_records"] == 1
    assert _dla_unresolved(h, lane, late) == 0


def test_a_worker_started_on_a_finished_run_reads_its_counts_once(h, lane):
    """on_start is the one place the counts come from the DB; health after it equals the SQL."""
    workers = [
        ActionLayer(h, lane.run_id, group_id=lane.group(ActionLayer)),
        DecisionLogAudit(h, lane.run_id, group_id=lane.group(DecisionLogAudit)),
    ]
    with db.connect(h) as conn:
        for w in workers:
            w.on_start(conn)
    _al_parity(h, lane, workers[0])
    _dla_unresolved(h, lane, workers[1])


def test_offpath_workers_take_the_larger_batches(h):
    """Batch sizing is the worker base's, from the class's `off_path`; no stack needed (the store is never used)."""
    assert int(h.get("WORKER_OFFPATH_BATCH_MAX_RECORDS")) > int(h.get("WORKER_BATCH_MAX_RECORDS"))
    for cls in (ArchiveWriter, IegProjector, ActionLayer, DecisionLogAudit, *CASE_LABELS_WORKERS):
        w = cls(h, "platform_20000101T000000Z", store=object())
        assert (w.batch_max, w.fill_s) == (
            int(h.get("WORKER_OFFPATH_BATCH_MAX_RECORDS")),
            float(h.get("WORKER_OFFPATH_BATCH_FILL_MS")) / 1000,
        ), cls

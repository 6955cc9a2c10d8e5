"""RTDL tests publish a world's admitted records straight onto the real topics (as IG would, with
its headers) and run the real workers against them: in-process, or as supervised daemons."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pytest

from fp_platform.contracts.canonical import payload_hash
from fp_platform.contracts.envelope import OUTPUT_EVENT_CLASSES, record_headers, topic_key_for
from fp_platform.handles import Handles
from fp_platform.substrate import bus, db
from fp_platform.world.engine import STREAMED_OUTPUTS, TRUTH_OUTPUT, build_outputs, params_for

NOT_PAYLOAD = ("event_id", "ts_utc")


@cache
def smoke_world(days: int = 21) -> dict[str, pa.Table]:
    return build_outputs(params_for("smoke", nb_days=days))


@dataclass
class Published:
    run_id: str
    ends: dict[tuple[str, int], int]  # (topic, partition) -> next offset after the last record
    event_ids: dict[str, list[str]]  # event class -> ids, in publish order


def envelopes(h: Handles, run_id: str, outputs: dict[str, pa.Table]) -> list[tuple[str, dict]]:
    """(topic, envelope) for every streamed record, in (ts, context-before-traffic) order like WSP."""
    out = []
    for rank, output_id in enumerate(("arrival_events", "arrival_entities", "flow_anchor_fraud", "traffic_fraud")):
        assert output_id in STREAMED_OUTPUTS
        table = outputs[output_id]
        cls = OUTPUT_EVENT_CLASSES[output_id]
        topic = h.topic(topic_key_for(cls)).name
        ts = table.column("ts_utc").to_numpy().astype("datetime64[ms]")
        iso = [s + "Z" for s in np.datetime_as_string(ts, unit="ms")]
        ids = table.column("event_id").to_pylist()
        for i, payload in enumerate(table.drop_columns(list(NOT_PAYLOAD)).to_pylist()):
            env = {"event_id": ids[i], "event_class": cls, "schema_version": "v1", "ts_utc": iso[i],
                   "pins": {"platform_run_id": run_id}, "producer": "test", "payload": payload,
                   "payload_hash": payload_hash(payload)}
            out.append((ts[i], rank, topic, env))
    out.sort(key=lambda r: (r[0], r[1]))
    return [(topic, env) for _, _, topic, env in out]


def publish(h: Handles, run_id: str, items: list[tuple[str, dict]], shuffle_seed: int | None = None,
            chunks: int = 1, pause_s: float = 0.0) -> Published:
    """Produce the envelopes (optionally shuffled) with IG's headers, keyed by merchant like IG."""
    import orjson

    items = list(items)
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(items)
    producer = bus.producer(h)
    ends: dict[tuple[str, int], int] = {}
    ids: dict[str, list[str]] = {}
    size = -(-len(items) // chunks)
    for start in range(0, len(items), size):
        records = []
        for topic, env in items[start:start + size]:
            headers = record_headers(run_id, env["event_class"], env["event_id"], env["payload_hash"],
                                     h.get("COMPONENT_ID_IG"))
            records.append((topic, orjson.dumps(env), env["payload"]["merchant_id"].encode(), headers))
            ids.setdefault(env["event_class"], []).append(env["event_id"])
        for (topic, *_), res in zip(records, bus.deliver(producer, records), strict=True):
            assert not isinstance(res, str), res
            ends[(topic, res[0])] = max(ends.get((topic, res[0]), 0), res[1] + 1)
        if pause_s:
            time.sleep(pause_s)
    return Published(run_id, ends, ids)


def rebind(items: list[tuple[str, dict]], run_id: str) -> list[tuple[str, dict]]:
    return [(t, {**env, "pins": {"platform_run_id": run_id}}) for t, env in items]


def wait_consumed(h: Handles, group: str, ends: dict[tuple[str, int], int], topics: set[str],
                  timeout_s: float = 180.0) -> None:
    """Until the group's DB offsets reach every end on its topics."""
    wanted = {k: v for k, v in ends.items() if k[0] in topics}
    deadline = time.monotonic() + timeout_s
    with db.connect(h, autocommit=True) as conn:
        while True:
            saved = {(t, p): o for t, p, o in conn.execute(
                "SELECT topic, kafka_partition, next_offset FROM worker_offsets WHERE consumer_group = %s", (group,))}
            behind = {k: (saved.get(k), v) for k, v in wanted.items() if saved.get(k, 0) < v}
            if not behind:
                return
            assert time.monotonic() < deadline, f"{group} still behind: {behind}"
            time.sleep(0.5)


def truth(outputs: dict[str, pa.Table]) -> pa.Table:
    return outputs[TRUTH_OUTPUT]


@pytest.fixture(scope="session")
def world() -> dict[str, pa.Table]:
    return smoke_world()

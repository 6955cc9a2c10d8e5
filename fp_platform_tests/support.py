"""Helpers the test packages share (not fixtures: those stay in each package's conftest.py).

- `unique_run_id`: a fresh, well-formed platform_run_id per call, without sleeping.
- `MemoryStore`: the object-store protocol in a dict, for evidence without the stack.
- `start_ig`: an IG process of a test's own (real HTTP, Postgres, Kafka, S3).
- `smoke_world`, `truth`: the smoke world's outputs, built once per session.
- `wait_consumed`, `Lane`, `start_lane`: a world's admitted records put straight onto the real topics (as IG
  would, with its headers) and the real workers run against them.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

import httpx
import pyarrow as pa

from fp_platform.benches.rtdl import publish_admitted
from fp_platform.contracts.ids import new_platform_run_id
from fp_platform.handles import Handles
from fp_platform.rtdl import decision_lane
from fp_platform.rtdl.caught_up import CORE_WORKERS
from fp_platform.rtdl.processor import DecisionProcessor
from fp_platform.substrate import bus, db
from fp_platform.substrate.secrets import get_secret
from fp_platform.substrate.worker import digest_at
from fp_platform.world.engine import TRUTH_OUTPUT, build_outputs, params_for

# Test run ids are dated in the 16th century: one id second per 100 ms of wall time since 1970, so ids of
# one process and of later sessions never repeat, and none is ever the id of a real run (dated now) or sorts
# after one.
_TEST_RUN_EPOCH = datetime(1000, 1, 1, tzinfo=UTC)
_last_tick = 0


def unique_run_id() -> str:
    """A platform_run_id no other call (of this or a later session) returns; no sleeping for the clock."""
    global _last_tick
    _last_tick = max(_last_tick + 1, time.time_ns() // 100_000_000)
    return new_platform_run_id(_TEST_RUN_EPOCH + timedelta(seconds=_last_tick))


@dataclass
class IgProcess:
    url: str
    run_id: str
    key: str
    proc: subprocess.Popen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ig(h: Handles, run_id: str, *extra: str) -> IgProcess:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fp_platform.control.ig", "--run-id", run_id, "--port", str(port), *extra]
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "IG exited during start-up"
        try:
            if httpx.get(url + h.get("IG_READY_PATH"), timeout=1).status_code == 200:
                return IgProcess(url, run_id, get_secret(h, "SSM_IG_API_KEY_PATH"), proc)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("IG not ready within 60 s")


@cache
def smoke_world(days: int = 21) -> dict[str, pa.Table]:
    return build_outputs(params_for("smoke", nb_days=days))


def truth(outputs: dict[str, pa.Table]) -> pa.Table:
    return outputs[TRUTH_OUTPUT]


def wait_consumed(
    h: Handles, group: str, ends: dict[tuple[str, int], int], topics: set[str], timeout_s: float = 180.0
) -> None:
    """Until the group's DB checkpoint of every partition is exactly past the last record published
    (same offset and digest: a checkpoint left from an earlier log does not count)."""
    wanted = {k: v for k, v in ends.items() if k[0] in topics}
    probe = bus.scan_consumer(h)
    try:
        last = {k: digest_at(probe, k[0], k[1], v - 1) for k, v in wanted.items()}
    finally:
        probe.close()
    deadline = time.monotonic() + timeout_s
    with db.connect(h, autocommit=True) as conn:
        while True:
            saved = {
                (t, p): (o, d)
                for t, p, o, d in conn.execute(
                    "SELECT topic, kafka_partition, next_offset, last_digest FROM worker_offsets"
                    " WHERE consumer_group = %s",
                    (group,),
                )
            }
            behind = {
                k: (saved.get(k), v)
                for k, v in wanted.items()
                if saved.get(k, (0, None))[0] < v or (saved[k][0] == v and saved[k][1] != last[k])
            }
            if not behind:
                return
            assert time.monotonic() < deadline, f"{group} still behind: {behind}"
            time.sleep(0.5)


@dataclass
class Lane:
    run_id: str
    prefix: str
    traffic: int

    def group(self, cls) -> str:
        return f"{self.prefix}.{cls.__name__}"

    def run(self, h, *classes, extra: dict | None = None) -> dict[str, dict]:
        """Run the workers one after another until each is idle (`extra`: constructor arguments by class);
        their counters by class name (the decision processor's hosted components by theirs: Csfb, Ofp,
        DegradeLadder, DecisionFabric)."""
        out = {}
        for cls in classes:
            worker = cls(h, self.run_id, group_id=self.group(cls), **(extra or {}).get(cls, {}))
            out[cls.__name__] = dict(worker.run(until_idle_s=3, install_signals=False).counters)
            if isinstance(worker, DecisionProcessor):
                for comp in (worker.csfb, worker.ofp, worker.dl, worker.df):
                    out[type(comp).__name__] = dict(comp.counters)
        return out


def start_lane(h, items, drop=lambda env: False) -> Lane:
    run_id = unique_run_id()
    chosen = [(t, {**env, "pins": {"platform_run_id": run_id}}) for t, env in items if not drop(env)]
    publish_admitted(h, run_id, chosen, receipts=True)
    lane = Lane(run_id, f"test.lane.{run_id}", sum(env["event_class"] == "traffic.fraud" for _, env in chosen))
    lane.run(h, *CORE_WORKERS, *decision_lane.DECISION_LANE_WORKERS)
    return lane


class MemoryStore:
    """The object-store protocol in a dict (what EvidenceWriter needs)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put(self, bucket: str, key: str, body: bytes, *, write_once: bool) -> None:
        self.objects[(bucket, key)] = body

    def get(self, bucket: str, key: str) -> bytes:
        return self.objects[(bucket, key)]

    def exists(self, bucket: str, key: str) -> bool:
        return (bucket, key) in self.objects

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return sorted(k for b, k in self.objects if b == bucket and k.startswith(prefix))

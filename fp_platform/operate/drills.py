"""The process drills, run beside the stream (P6): pause a worker (backpressure) or kill one (worker crash).

Each drill waits until its worker has applied some of the run, acts, and records what it did; the
reporter (P11) then judges the outcome from the stores. The supervisor, not the drill, brings a
killed worker back, as the `pack_supervisor` sensor does on a deployment.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fp_platform.contracts.evidence import utc_now_iso
from fp_platform.handles import Handles
from fp_platform.operate import daemons, supervisor
from fp_platform.operate.packs import pack
from fp_platform.substrate import db

Log = Callable[[str], None]
BACKPRESSURE_PAUSE_S = 8.0
START_AFTER_APPLIED = 300  # records of the run the worker must have applied before the drill acts
START_TIMEOUT_S = 300.0


def _applied(conn, group: str, run_id: str) -> int:
    row = conn.execute(
        "SELECT applied FROM worker_run_intake WHERE consumer_group = %s AND platform_run_id = %s", (group, run_id)
    ).fetchone()
    return row[0] if row else 0


def _vector_backlog(conn, run_id: str, traffic_topic: str) -> int:
    """Admitted traffic events of the run that OFP has not yet turned into a feature vector."""
    return conn.execute(
        "SELECT (SELECT count(*) FROM ig_receipts WHERE platform_run_id = %s AND decision = 'ADMIT'"
        " AND topic = %s) - (SELECT count(*) FROM ofp_features WHERE platform_run_id = %s)",
        (run_id, traffic_topic, run_id),
    ).fetchone()[0]


def _wait_for_intake(conn, group: str, run_id: str, stop: threading.Event) -> int | None:
    """Applied records once the worker has taken in enough of the run (or anything, once the stream ended);
    None if it took in nothing in time."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        applied = _applied(conn, group, run_id)
        if applied >= START_AFTER_APPLIED or (stop.is_set() and applied > 0):
            return applied
        if stop.is_set():
            deadline = min(deadline, time.monotonic() + 60)
        time.sleep(0.2)
    return None


def _processor_in_run(
    h: Handles, conn: Any, run_id: str, stop: threading.Event
) -> tuple[str, int | None, daemons.DaemonRecord | None, dict[str, Any] | None]:
    """The decision processor, once it has taken in the run: (component, records applied, its daemon record,
    None) — or, as the last item, why a drill on it cannot act."""
    component, group = h.get("COMPONENT_ID_DECISION_PROCESSOR"), h.get("CONSUMER_GROUP_ID_DECISION_PROCESSOR")
    applied = _wait_for_intake(conn, group, run_id, stop)
    rec = daemons.running(component)
    if applied is None or rec is None:
        reason = "the worker never took in the run" if rec else "the worker is not running"
        return component, applied, rec, {"acted": False, "component": component, "reason": reason}
    return component, applied, rec, None


def backpressure(h: Handles, run_id: str, stop: threading.Event, log: Log) -> dict[str, Any]:
    """SIGSTOP the decision processor (which hosts OFP) for a while mid-stream, sampling OFP's backlog (traffic
    admitted without a vector), then SIGCONT."""
    traffic_topic = h.topic("FP_BUS_TRAFFIC_FRAUD_V1").name
    with db.connect(h, autocommit=True) as conn:
        component, applied, rec, cannot = _processor_in_run(h, conn, run_id, stop)
        if cannot:
            return cannot
        os.kill(rec.pid, signal.SIGSTOP)
        paused_at, samples = utc_now_iso(), []
        log(f"drill backpressure: {component} pid {rec.pid} paused at {applied} applied")
        try:
            end = time.monotonic() + BACKPRESSURE_PAUSE_S
            while time.monotonic() < end:
                samples.append(_vector_backlog(conn, run_id, traffic_topic))
                time.sleep(0.5)
        finally:
            os.kill(rec.pid, signal.SIGCONT)
        log(f"drill backpressure: {component} resumed; backlog peaked at {max(samples)}")
        return {
            "acted": True,
            "component": component,
            "pid": rec.pid,
            "applied_before": applied,
            "paused_at_utc": paused_at,
            "resumed_at_utc": utc_now_iso(),
            "paused_s": BACKPRESSURE_PAUSE_S,
            "backlog_samples": samples,
            "backlog_first": samples[0],
            "backlog_peak": max(samples),
        }


def worker_crash(h: Handles, run_id: str, stop: threading.Event, log: Log) -> dict[str, Any]:
    """SIGKILL the decision processor (which hosts DF) mid-stream (no chance to finish its micro-batch), then let
    the supervisor restart it."""
    lane = (pack(h, h.get("PACK_ID_RTDL_CORE")),)
    with db.connect(h, autocommit=True) as conn:
        component, applied, rec, cannot = _processor_in_run(h, conn, run_id, stop)
        if cannot:
            return cannot
        os.kill(rec.pid, signal.SIGKILL)
        killed_at = utc_now_iso()
        log(f"drill worker_crash: {component} pid {rec.pid} killed at {applied} applied")
        restarted = None
        deadline = time.monotonic() + 60
        while restarted is None and time.monotonic() < deadline:
            time.sleep(1.0)
            for s in supervisor.reconcile(h, conn, run_id, lane, log=log):
                if s.component == component and s.pid and s.pid != rec.pid:
                    restarted = {"pid": s.pid, "restarts": s.restarts}
        return {
            "acted": True,
            "component": component,
            "killed_pid": rec.pid,
            "applied_before": applied,
            "killed_at_utc": killed_at,
            "restarted": restarted,
        }


PROCESS_DRILL_ACTIONS = {"backpressure": backpressure, "worker_crash": worker_crash}


@contextmanager
def process_drills(h: Handles, run_id: str, drill_ids: tuple[str, ...], log: Log) -> Iterator[dict[str, Any]]:
    """Run the process drills among `drill_ids` in threads for the duration of the block; yields their records,
    filled in once the block ends."""
    records: dict[str, Any] = {}
    stop = threading.Event()
    threads = []
    for drill_id in drill_ids:
        action = PROCESS_DRILL_ACTIONS.get(drill_id)
        if action is None:
            continue

        def body(drill_id: str = drill_id, action=action) -> None:
            try:
                records[drill_id] = action(h, run_id, stop, log)
            except Exception as exc:  # noqa: BLE001 - a drill that breaks is recorded, never silent
                records[drill_id] = {"acted": False, "reason": f"{type(exc).__name__}: {exc}"}

        t = threading.Thread(target=body, name=f"drill-{drill_id}", daemon=True)
        t.start()
        threads.append(t)
    try:
        yield records
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=BACKPRESSURE_PAUSE_S + 90)

"""Worker heartbeats, written off the hot thread.

A heartbeat is a `worker_heartbeats` row and two derived summaries in the run's evidence
(`<component>/health/last_health.json` and its metrics file, refreshed every HEALTH_FILE_INTERVAL_S
while the worker runs): one Postgres statement and two object store PUTs, tens of milliseconds.
Written on the thread that consumes, they would sit in the latency of whatever batch is due next; so
the worker hands each beat to a writer thread with its own connection and store client, which keeps
only the latest beat (an older one is obsolete). The first beat (run scope confirmed) and the last
(STOPPED / RED) are written synchronously, after the thread is gone, so nothing can overwrite them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg

from fp_platform.handles import Handles
from fp_platform.substrate import db
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.object_store import S3ObjectStore

log = logging.getLogger("fp_platform.heartbeat")


@dataclass(frozen=True)
class Beat:
    """One component's health at one moment (a process may host several components)."""

    component: str
    pack_id: str
    phase_id: str
    platform_run_id: str
    consumer_group: str
    state: str  # GREEN / AMBER / RED / STOPPED
    counters: dict[str, Any]
    started_at_utc: str


HEALTH_FILE_INTERVAL_S = 30.0  # the evidence files follow the heartbeat rows at most this often while running


def write_beats(
    h: Handles, conn: psycopg.Connection, store: S3ObjectStore, beats: list[Beat], files: bool = True
) -> None:
    """The heartbeat rows (one transaction) and, with `files`, each component's health and metrics summaries."""
    with conn.transaction():
        for b in beats:
            conn.execute(
                "INSERT INTO worker_heartbeats (component, pack_id, platform_run_id, consumer_group, pid, host,"
                " health_state, counters, started_at, beat_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())"
                " ON CONFLICT (component) DO UPDATE SET pack_id = EXCLUDED.pack_id,"
                " platform_run_id = EXCLUDED.platform_run_id, consumer_group = EXCLUDED.consumer_group,"
                " pid = EXCLUDED.pid, host = EXCLUDED.host, health_state = EXCLUDED.health_state,"
                " counters = EXCLUDED.counters, started_at = EXCLUDED.started_at, beat_at = now()",
                (
                    b.component,
                    b.pack_id,
                    b.platform_run_id,
                    b.consumer_group,
                    os.getpid(),
                    socket.gethostname(),
                    b.state,
                    orjson.dumps(b.counters).decode(),
                    b.started_at_utc,
                ),
            )
    for b in beats if files else ():
        writer = run_evidence(h, b.platform_run_id, store=store)
        health = {
            "component": b.component,
            "pack_id": b.pack_id,
            "health_state": b.state,
            "pid": os.getpid(),
            "consumer_group": b.consumer_group,
            "counters": b.counters,
        }
        writer.write_summary(
            h.pattern("COMPONENT_HEALTH_PATH_PATTERN", component=b.component), health, phase_id=b.phase_id
        )
        writer.write_summary(
            h.pattern("COMPONENT_METRICS_PATH_PATTERN", component=b.component),
            {"component": b.component, "metrics": b.counters},
            phase_id=b.phase_id,
        )


class BeatWriter:
    """Writes the latest submitted beats on a thread of its own (its own connection and store client)."""

    def __init__(self, h: Handles) -> None:
        self.h = h
        self._latest: queue.Queue[list[Beat] | None] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._loop, name="heartbeat-writer", daemon=True)
        self.failures = 0
        self._thread.start()

    def submit(self, beats: list[Beat]) -> None:
        """Queue `beats`, replacing any not yet written (never blocks the caller)."""
        with contextlib.suppress(queue.Empty):
            self._latest.get_nowait()
        with contextlib.suppress(queue.Full):
            self._latest.put_nowait(beats)

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        with contextlib.suppress(queue.Full):  # waits for the thread to take what is queued
            self._latest.put(None, timeout=timeout_s)
        self._thread.join(timeout_s)

    def _loop(self) -> None:
        conn, store = None, None
        files_at = time.monotonic()  # the synchronous first beat wrote them
        try:
            while (beats := self._latest.get()) is not None:
                try:
                    if conn is None or conn.closed:
                        conn, store = db.connect(self.h, autocommit=True), S3ObjectStore(self.h)
                    files = time.monotonic() - files_at >= HEALTH_FILE_INTERVAL_S
                    write_beats(self.h, conn, store, beats, files)
                    files_at = time.monotonic() if files else files_at
                except Exception as exc:  # noqa: BLE001 - a missed beat shows as a stale heartbeat, never a crash
                    self.failures += 1
                    log.warning("heartbeat not written: %s", exc)
                    with contextlib.suppress(Exception):
                        conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()

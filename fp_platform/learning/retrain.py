"""What a retrain would learn from: the newest closed spine run, unless the learning lane already ran on
it (pass or fail: a refused corridor is not retried on every tick), and how many label assertions
arrived past the label sensor's cursor."""

from __future__ import annotations

import psycopg

from fp_platform.contracts.gates import gate_evidence_name
from fp_platform.contracts.phases import P12
from fp_platform.handles import Handles
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.object_store import S3ObjectStore

FIRST_LEARNING_GATE = gate_evidence_name(P12, "learning_input_basis")


def run_to_learn_from(h: Handles, conn: psycopg.Connection, newest: int = 20) -> str | None:
    """The newest closed run (P11's `run_completed.json`) among the newest pinned, when P12 has not run on it."""
    runs = [
        r
        for (r,) in conn.execute("SELECT platform_run_id FROM run_registry ORDER BY pinned_at DESC LIMIT %s", (newest,))
    ]
    store = S3ObjectStore(h)
    for run_id in runs:
        writer = run_evidence(h, run_id, store=store)
        if writer.exists(h.get("RUN_CLOSURE_MARKER_PATH_PATTERN")):
            return None if writer.exists(FIRST_LEARNING_GATE) else run_id
    return None


def labels_past(conn: psycopg.Connection, seq: int) -> tuple[int, int]:
    """(assertions past `seq`, the label store's newest sequence number) in one snapshot."""
    count, high = conn.execute(
        "SELECT count(*) FILTER (WHERE seq > %s), coalesce(max(seq), 0) FROM ls_assertions", (seq,)
    ).fetchone()
    return count, high

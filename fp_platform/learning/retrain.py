"""What a retrain would learn from: the newest closed spine run not yet taken through the corridor, and how
many label assertions arrived since a given point (the label sensor's cursor)."""

from __future__ import annotations

import psycopg

from fp_platform.handles import Handles
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.object_store import S3ObjectStore


def run_to_learn_from(h: Handles, conn: psycopg.Connection, newest: int = 20) -> str | None:
    """The newest closed run (P11's `run_completed.json`) without a P15 promotion receipt, or None."""
    runs = [r for (r,) in conn.execute("SELECT platform_run_id FROM run_registry ORDER BY pinned_at DESC LIMIT %s",
                                       (newest,))]
    closed, promoted = h.get("RUN_CLOSURE_MARKER_PATH_PATTERN"), h.get("MPR_PROMOTION_RECEIPT_PATH_PATTERN")
    store = S3ObjectStore(h)
    for run_id in runs:
        writer = run_evidence(h, run_id, store=store)
        if writer.exists(closed) and not writer.exists(promoted):
            return run_id
    return None


def label_high_water(conn: psycopg.Connection) -> int:
    """The label store's newest assertion sequence number (0 when it holds none)."""
    return conn.execute("SELECT coalesce(max(seq), 0) FROM ls_assertions").fetchone()[0]


def labels_since(conn: psycopg.Connection, seq: int) -> int:
    return conn.execute("SELECT count(*) FROM ls_assertions WHERE seq > %s", (seq,)).fetchone()[0]

"""Preserve refused envelopes: one write-once object per (identity tuple, payload hash), indexed by its exact URI.

The object key is derived from a digest of the identity tuple, with a readable prefix: two ids that read
alike once sanitised (`a/b:c`, `a_b_c`) get different objects, and no id (`..`, a NUL, 8,000 characters)
can make a key the store refuses or one outside the run's prefix.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import ConnectionPool

from fp_platform.contracts.canonical import canonical_json, sha256_hex
from fp_platform.contracts.evidence import ObjectExistsError
from fp_platform.handles import Handles
from fp_platform.substrate.object_store import S3ObjectStore

_READABLE = re.compile(r"[^A-Za-z0-9_-]")
_CLASS = re.compile(r"[^A-Za-z0-9._-]")
READABLE_CHARS = 40


@dataclass(frozen=True)
class Refused:
    """One envelope to preserve, with the receipt that refused it."""

    event_class: str
    event_id: str
    payload_hash: str
    decision: str
    reason: str
    receipt_id: str
    received_at: datetime | None
    envelope: Any


def identity_digest(run_id: str, event_class: str, event_id: str) -> str:
    return sha256_hex(canonical_json([run_id, event_class, event_id]))[:32]


def object_key(h: Handles, run_id: str, event_class: str, event_id: str, payload_hash: str) -> str:
    """`QUARANTINE_PAYLOAD_PATTERN` with a safe class segment and `<readable id>-<digest of the tuple>`."""
    cls = _CLASS.sub("_", event_class)[:64].strip(".") or "_"
    readable = _READABLE.sub("_", event_id)[:READABLE_CHARS]
    digest = identity_digest(run_id, event_class, event_id)
    key = h.pattern(
        "QUARANTINE_PAYLOAD_PATTERN",
        platform_run_id=run_id,
        event_class=cls,
        event_id=f"{readable}-{digest}" if readable else digest,
        payload_hash=re.sub(r"[^0-9a-f]", "", payload_hash) or "nohash",
    )
    segments = key.split("/")
    if run_id not in segments or any(s in ("", ".", "..") for s in segments):
        raise ValueError(f"quarantine key {key!r} is not a plain path under run {run_id!r}")
    return key


def preserve(h: Handles, store: S3ObjectStore, pool: ConnectionPool, run_id: str, items: Iterable[Refused]) -> None:
    """Write each refused envelope once and index the exact URI (ON CONFLICT: the first preserved stays)."""
    bucket = h.get("S3_QUARANTINE_BUCKET")
    rows = []
    for it in items:
        key = object_key(h, run_id, it.event_class, it.event_id, it.payload_hash)
        body = canonical_json(
            {
                "platform_run_id": run_id,
                "event_class": it.event_class,
                "event_id": it.event_id,
                "payload_hash": it.payload_hash,
                "decision": it.decision,
                "reason": it.reason,
                "receipt_id": it.receipt_id,
                "received_at_utc": (it.received_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "envelope": it.envelope,
            }
        )
        with contextlib.suppress(ObjectExistsError):  # the same tuple with the same payload is already preserved
            store.put(bucket, key, body, write_once=True)
        rows.append(
            (run_id, it.event_class, it.event_id, it.payload_hash, it.decision, it.reason, f"s3://{bucket}/{key}")
        )
    if rows:
        with pool.connection() as conn:
            conn.cursor().executemany(
                "INSERT INTO ig_quarantine (platform_run_id, event_class, event_id, payload_hash, decision,"
                " reason, object_uri) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                rows,
            )

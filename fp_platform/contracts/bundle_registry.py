"""The MPR registry (append-only Postgres tables): bundles, and the events that make one active.

DF resolves the active bundle from it and the decision loop registers the rules-only bootstrap bundle;
MF registers candidates; MPR promotes and rolls back. Two planes meet here, so the registry's one
definition is a contract (like `labels.py`) rather than one plane's module the other imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row


@dataclass(frozen=True)
class Bundle:
    bundle_id: str
    bundle_version: str
    policy_rev: str
    model_ref: str | None
    feature_version: str
    feature_list: tuple[str, ...]
    thresholds: dict[str, float]
    registry_seq: int
    registry_event: str

    def ref(self) -> dict[str, Any]:
        return {
            "bundle_id": self.bundle_id,
            "bundle_version": self.bundle_version,
            "policy_rev": self.policy_rev,
            "model_ref": self.model_ref,
            "registry_seq": self.registry_seq,
        }


def register(
    conn: psycopg.Connection,
    *,
    bundle_id: str,
    bundle_version: str,
    policy_rev: str,
    model_ref: str | None,
    feature_version: str,
    feature_list: list[str],
    thresholds: dict[str, float],
    provenance: dict[str, Any] | None = None,
) -> None:
    """Add a bundle to the registry (idempotent: the same id and version is the same bundle)."""
    conn.execute(
        "INSERT INTO mpr_bundles (bundle_id, bundle_version, policy_rev, model_ref, feature_version,"
        " feature_list, thresholds, provenance) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (
            bundle_id,
            bundle_version,
            policy_rev,
            model_ref,
            feature_version,
            list(feature_list),
            orjson.dumps(thresholds).decode(),
            orjson.dumps(provenance or {}).decode(),
        ),
    )


def activate(
    conn: psycopg.Connection,
    *,
    event_id: str,
    event_type: str,
    bundle_id: str,
    bundle_version: str,
    reason: str,
    actor: str,
) -> bool:
    """Append a registry event making the bundle active; False when `event_id` was appended before."""
    row = conn.execute(
        "INSERT INTO mpr_registry_events (event_id, event_type, bundle_id, bundle_version, reason,"
        " actor) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING seq",
        (event_id, event_type, bundle_id, bundle_version, reason, actor),
    ).fetchone()
    return row is not None


_SELECT = (
    "SELECT e.seq, e.event_type, b.* FROM mpr_registry_events e JOIN mpr_bundles b USING (bundle_id, bundle_version)"
)


def _bundle(row: dict[str, Any]) -> Bundle:
    return Bundle(
        row["bundle_id"],
        row["bundle_version"],
        row["policy_rev"],
        row["model_ref"],
        row["feature_version"],
        tuple(row["feature_list"]),
        dict(row["thresholds"]),
        row["seq"],
        row["event_type"],
    )


def active_bundle(conn: psycopg.Connection, before_seq: int | None = None) -> Bundle | None:
    """The bundle of the latest registry event (before `before_seq` when given), or None when there is none."""
    where, params = ("", ()) if before_seq is None else (" WHERE e.seq < %s", (before_seq,))
    row = conn.cursor(row_factory=dict_row).execute(_SELECT + where + " ORDER BY e.seq DESC LIMIT 1", params).fetchone()
    return None if row is None else _bundle(row)


def registered_bundle(conn: psycopg.Connection, bundle_id: str, bundle_version: str) -> Bundle | None:
    """A registered bundle (active or not; registry_seq 0 and event REGISTERED when never activated)."""
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT 0 AS seq, 'REGISTERED' AS event_type, * FROM mpr_bundles"
            " WHERE bundle_id = %s AND bundle_version = %s",
            (bundle_id, bundle_version),
        )
        .fetchone()
    )
    return None if row is None else _bundle(row)


def events_for(conn: psycopg.Connection, event_ids: list[str]) -> list[dict[str, Any]]:
    """The registry events with these ids, in registry order."""
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT seq, event_id, event_type, bundle_id, bundle_version, reason, actor, at FROM mpr_registry_events"
            " WHERE event_id = ANY(%s) ORDER BY seq",
            (event_ids,),
        )
        .fetchall()
    )

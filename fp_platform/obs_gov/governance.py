"""The governance log: append-only events in Postgres (`gov_events`), exported to the run's
`obs/governance/events.jsonl`, which only ever grows.

Events are collected from the planes' own append-only records (refused label writes, quarantined and
anomalous admissions, degrade posture changes, worker restarts) and from the reporter (drills, closures,
refused reporters). Each event id is a hash of what it records, so collecting twice appends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from fp_platform.contracts.canonical import canonical_json, digest
from fp_platform.contracts.evidence import EvidenceError, EvidenceWriter

APPEND_LOCK = 0x6F76  # pg_advisory_xact_lock key: seq order = commit order


@dataclass(frozen=True)
class GovEvent:
    platform_run_id: str
    event_type: str
    severity: str  # INFO | WARN | ANOMALY
    component: str
    source_key: str  # what makes it this event (a receipt id, a table seq ...)
    detail: dict[str, Any]
    occurred_at: datetime

    @property
    def event_id(self) -> str:
        return "gov_" + digest([self.platform_run_id, self.event_type, self.source_key])[:32]


def append(conn: psycopg.Connection, events: list[GovEvent]) -> int:
    """Append `events` (those not yet in the log) in one transaction; returns how many were new."""
    if not events:
        return 0
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
        new = 0
        for e in events:
            cur = conn.execute(
                "INSERT INTO gov_events (event_id, platform_run_id, event_type, severity, component, detail,"
                " occurred_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
                (e.event_id, e.platform_run_id, e.event_type, e.severity, e.component, Jsonb(e.detail), e.occurred_at),
            )
            new += cur.rowcount
    return new


def collect(conn: psycopg.Connection, run_id: str, components: dict[str, str]) -> list[GovEvent]:
    """The governance events the planes' append-only records hold for the run. `components` names the
    component ids (handle values) the events are attributed to: ig, ls, dl (a restart, to the worker itself)."""
    events = [
        GovEvent(
            run_id,
            "LABEL_WRITE_REFUSED",
            "ANOMALY",
            components["ls"],
            f"ls_refused_writes:{seq}",
            {"writer_id": w, "source": src, "label_subject_key": subject, "reason": reason},
            at,
        )
        for seq, w, src, subject, reason, at in conn.execute(
            "SELECT seq, writer_id, source, label_subject_key, reason, refused_at FROM ls_refused_writes"
            " WHERE platform_run_id = %s ORDER BY seq",
            (run_id,),
        )
    ]
    events += [
        GovEvent(
            run_id,
            f"INGEST_{decision}",
            "ANOMALY",
            components["ig"],
            f"ig_receipts:{receipt_id}",
            {"event_class": cls, "event_id": eid, "reason": reason, "receipt_id": receipt_id},
            at,
        )
        for receipt_id, decision, cls, eid, reason, at in conn.execute(
            "SELECT receipt_id, decision, event_class, event_id, reason, received_at FROM ig_receipts"
            " WHERE platform_run_id = %s AND decision IN ('QUARANTINE', 'ANOMALY', 'PUBLISH_AMBIGUOUS')"
            " ORDER BY seq",
            (run_id,),
        )
    ]
    events += [
        GovEvent(
            run_id,
            "DEGRADE_POSTURE_CHANGED",
            "INFO" if posture == "NORMAL" else "WARN",
            components["dl"],
            f"dl_posture_events:{seq}",
            {"posture": posture, "previous": prev, "reasons": list(reasons)},
            at,
        )
        for seq, posture, prev, reasons, at in conn.execute(
            "SELECT seq, posture, previous_posture, reasons, at FROM dl_posture_events"
            " WHERE platform_run_id = %s ORDER BY seq",
            (run_id,),
        )
    ]
    now = datetime.now(UTC)
    events += [
        GovEvent(
            run_id,
            "WORKER_RESTARTED",
            "WARN",
            comp,
            f"restart:{comp}:{n}",
            {"worker": comp, "restart": n, "last_exit": last_exit},
            started or now,
        )
        for comp, restarts, last_exit, started in conn.execute(
            "SELECT component, restarts, last_exit, last_start_at FROM supervision_state"
            " WHERE platform_run_id = %s AND restarts > 0",
            (run_id,),
        )
        for n in range(1, restarts + 1)
    ]
    return events


def log(conn: psycopg.Connection, run_id: str) -> list[dict[str, Any]]:
    """The run's governance log in append order."""
    return [
        {
            "seq": seq,
            "event_id": eid,
            "event_type": t,
            "severity": sev,
            "component": comp,
            "detail": detail,
            "occurred_at_utc": occ.astimezone(UTC).isoformat(),
            "appended_at_utc": app.astimezone(UTC).isoformat(),
        }
        for seq, eid, t, sev, comp, detail, occ, app in conn.execute(
            "SELECT seq, event_id, event_type, severity, component, detail, occurred_at, appended_at"
            " FROM gov_events WHERE platform_run_id = %s ORDER BY seq",
            (run_id,),
        )
    ]


def export(writer: EvidenceWriter, name: str, events: list[dict[str, Any]]) -> int:
    """Write the log as JSON lines; the object on the store must be a prefix of it (append-only), else
    nothing is written and EvidenceError says why. Returns how many lines were added."""
    body = b"".join(canonical_json(e) + b"\n" for e in events)
    key = writer.key(name)
    prior = writer.store.get(writer.bucket, key) if writer.store.exists(writer.bucket, key) else b""
    if not body.startswith(prior):
        raise EvidenceError(
            f"{writer.uri(name)} is not a prefix of the governance log: it was altered or truncated;"
            " refusing to rewrite it"
        )
    if body != prior:
        writer.store.put(writer.bucket, key, body, write_once=False)
    return len(events) - prior.count(b"\n")

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


# The governance events the planes' append-only records hold, one query per record: each row is (component,
# event type, severity, source key, detail, when). `%(ig)s`, `%(ls)s` and `%(dl)s` are the component ids the
# events are attributed to; a restart is attributed to the worker itself. The source key is what makes the
# event that event (`GovEvent.event_id`), so the same record always gives the same event.
_PLANE_EVENTS = (
    "SELECT %(ls)s, 'LABEL_WRITE_REFUSED', 'ANOMALY', 'ls_refused_writes:' || seq, jsonb_build_object('writer_id',"
    " writer_id, 'source', source, 'label_subject_key', label_subject_key, 'reason', reason), refused_at"
    " FROM ls_refused_writes WHERE platform_run_id = %(run)s ORDER BY seq",
    "SELECT %(ig)s, 'INGEST_' || decision, 'ANOMALY', 'ig_receipts:' || receipt_id, jsonb_build_object('event_class',"
    " event_class, 'event_id', event_id, 'reason', reason, 'receipt_id', receipt_id), received_at FROM ig_receipts"
    " WHERE platform_run_id = %(run)s AND decision IN ('QUARANTINE', 'ANOMALY', 'PUBLISH_AMBIGUOUS') ORDER BY seq",
    "SELECT %(dl)s, 'DEGRADE_POSTURE_CHANGED', CASE WHEN posture = 'NORMAL' THEN 'INFO' ELSE 'WARN' END,"
    " 'dl_posture_events:' || seq, jsonb_build_object('posture', posture, 'previous', previous_posture, 'reasons',"
    " reasons), at FROM dl_posture_events WHERE platform_run_id = %(run)s ORDER BY seq",
    "SELECT component, 'WORKER_RESTARTED', 'WARN', 'restart:' || component || ':' || n, jsonb_build_object('worker',"
    " component, 'restart', n, 'last_exit', last_exit), coalesce(last_start_at, now()) FROM supervision_state,"
    " generate_series(1, restarts) n WHERE platform_run_id = %(run)s AND restarts > 0 ORDER BY component, n",
)


def collect(conn: psycopg.Connection, run_id: str, components: dict[str, str]) -> list[GovEvent]:
    """The governance events the planes' append-only records hold for the run (`_PLANE_EVENTS`). `components`
    names the component ids (handle values) the events are attributed to: ig, ls, dl."""
    params = {"run": run_id, **components}
    return [
        GovEvent(run_id, event_type, severity, component, source_key, detail, at)
        for query in _PLANE_EVENTS
        for component, event_type, severity, source_key, detail, at in conn.execute(query, params)
    ]


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

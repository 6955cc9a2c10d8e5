"""CM, case management: an append-only timeline per case (CASE_OPENED, EVIDENCE_ATTACHED, ASSIGNED,
DISPOSITION, CLOSED), each event under an idempotency key, so a re-delivered trigger or a retried
disposition appends nothing. Evidence is attached by reference (audit event, decision and IG receipt
ids) — CM never copies payloads. The current case is the `cm_cases` view over the timeline; `cases`
and `timeline` are the investigator's read API (`fp-platform cases`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import psycopg

from fp_platform.case_labels import label_store
from fp_platform.case_labels.policy import Investigation, label_subject
from fp_platform.contracts import components
from fp_platform.handles import Handles
from fp_platform.substrate.worker import BusRecord, Worker

TRIGGER = "case.trigger"
EVIDENCE_REFS = ("audit_event_id", "decision_id", "ig_receipt_id")


def append_events(conn: psycopg.Connection, events: list[tuple]) -> int:
    """Append timeline events (run, case, type, key, actor, at, detail, origin topic/partition/offset);
    an event whose idempotency key is already on the timeline is skipped. Returns how many were new."""
    n = 0
    for run_id, case_id, kind, key, actor, at, detail, *origin in events:
        n += conn.execute(
            "INSERT INTO cm_case_events (platform_run_id, case_id, event_type, idempotency_key, actor, at, detail,"
            " origin_topic, origin_partition, origin_offset) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (idempotency_key) DO NOTHING",
            (run_id, case_id, kind, key, actor, at, orjson.dumps(detail).decode(), *origin),
        ).rowcount
    return n


def opened(conn: psycopg.Connection, run_id: str, case_ids: list[str]) -> dict[str, dict[str, Any]]:
    """CASE_OPENED detail (and origin) of those cases that CM has opened."""
    rows = conn.execute(
        "SELECT case_id, detail, origin_topic, origin_partition, origin_offset FROM cm_case_events"
        " WHERE platform_run_id = %s AND case_id = ANY(%s) AND event_type = 'CASE_OPENED'",
        (run_id, case_ids),
    ).fetchall()
    return {c: {**d, "origin": (t, p, o)} for c, d, t, p, o in rows}


def work_case(
    h: Handles,
    conn: psycopg.Connection,
    run_id: str,
    case_id: str,
    work: Investigation,
    transaction_id: int,
    effective_at: datetime,
    outbox_group: str | None = None,
) -> bool:
    """An investigator works an opened case: ASSIGNED, DISPOSITION, CLOSED on its timeline and the
    disposition asserted to LS as CM (source INVESTIGATOR). False when CM has not opened the case yet."""
    case = opened(conn, run_id, [case_id]).get(case_id)
    if case is None:
        return False
    cm = h.get("COMPONENT_ID_CM")
    origin = case["origin"]
    append_events(
        conn,
        [
            (
                run_id,
                case_id,
                "ASSIGNED",
                f"{case_id}:ASSIGNED",
                cm,
                work.assigned_at,
                {"investigator": work.investigator},
                *origin,
            ),
            (
                run_id,
                case_id,
                "DISPOSITION",
                f"{case_id}:DISPOSITION",
                work.investigator,
                work.disposed_at,
                {"label": work.label},
                *origin,
            ),
            (run_id, case_id, "CLOSED", f"{case_id}:CLOSED", work.investigator, work.disposed_at, {}, *origin),
        ],
    )
    label_store.append(
        h,
        conn,
        cm,
        [
            label_store.Assertion(
                label_subject(h, run_id, case["event_id"]),
                transaction_id,
                work.label,
                "INVESTIGATOR",
                effective_at,
                work.disposed_at,
                origin,
                case_id,
            )
        ],
        outbox_group,
    )
    return True


def cases(conn: psycopg.Connection, run_id: str, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The run's cases as the timeline says they are now, oldest first."""
    cur = conn.execute(
        "SELECT case_id, status, trigger_reason, event_id, opened_at, assigned_to, disposition, closed_at,"
        " evidence_refs, events FROM cm_cases WHERE platform_run_id = %s AND (%s::text IS NULL OR status = %s)"
        " ORDER BY opened_at, case_id LIMIT %s",
        (run_id, status, status, limit),
    )
    keys = [c.name for c in cur.description]
    return [dict(zip(keys, r, strict=True)) for r in cur.fetchall()]


def timeline(conn: psycopg.Connection, case_id: str) -> list[dict[str, Any]]:
    """One case's events in the order they were appended."""
    cur = conn.execute(
        "SELECT seq, platform_run_id, event_type, actor, at, detail, origin_topic, origin_partition,"
        " origin_offset, recorded_at FROM cm_case_events WHERE case_id = %s ORDER BY seq",
        (case_id,),
    )
    keys = [c.name for c in cur.description]
    return [dict(zip(keys, r, strict=True)) for r in cur.fetchall()]


class CaseManagement(Worker):
    identity = components.CASE_MANAGEMENT

    def apply(self, conn: psycopg.Connection, records: list[BusRecord]) -> None:
        triggers = [r for r in records if r.envelope["event_class"] == TRIGGER]
        if not triggers:
            return
        case_ids = list({r.payload["case_id"] for r in triggers})
        first = dict(
            conn.execute(
                "SELECT DISTINCT ON (case_id) case_id, payload_hash FROM cm_trigger_deliveries"
                " WHERE platform_run_id = %s"
                " AND case_id = ANY(%s) AND outcome = 'NEW' ORDER BY case_id, received_at",
                (self.run_id, case_ids),
            )
        )
        deliveries, events = [], []
        for r in triggers:
            p, digest = r.payload, r.envelope["payload_hash"]
            case_id = p["case_id"]
            if case_id not in first:
                outcome = "NEW"
                first[case_id] = digest
                events += self._opening(r)
            else:
                outcome = "DUPLICATE" if first[case_id] == digest else "CONFLICT"
            deliveries.append((self.run_id, case_id, r.envelope["event_id"], digest, outcome, *r.origin))
        new_deliveries = 0
        for row in deliveries:  # a re-read offset is the same delivery: recorded once
            n = conn.execute(
                "INSERT INTO cm_trigger_deliveries (platform_run_id, case_id, trigger_event_id,"
                " payload_hash, outcome, origin_topic, origin_partition, origin_offset)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                row,
            ).rowcount
            new_deliveries += n
            if n:
                self.stats.counters[f"deliveries_{row[4].lower()}"] += 1
        self.stats.counters["timeline_events"] += append_events(conn, events)
        self.stats.counters["deliveries_reread"] += len(deliveries) - new_deliveries

    def _opening(self, r: BusRecord) -> list[tuple]:
        p, case_id, cm = r.payload, r.payload["case_id"], self.component
        subject = p["case_subject_key"]
        opening = [
            (
                self.run_id,
                case_id,
                "CASE_OPENED",
                f"{case_id}:CASE_OPENED",
                cm,
                r.ts,
                {
                    "trigger_event_id": r.envelope["event_id"],
                    "trigger_reason": p["trigger_reason"],
                    "decision": p["decision"],
                    "event_class": subject["event_class"],
                    "event_id": subject["event_id"],
                    "transaction_id": p["transaction_id"],
                },
                *r.origin,
            )
        ]
        for kind in EVIDENCE_REFS:
            opening.append(
                (
                    self.run_id,
                    case_id,
                    "EVIDENCE_ATTACHED",
                    f"{case_id}:EVIDENCE:{kind}",
                    cm,
                    r.ts,
                    {"ref_kind": kind, "ref_id": p["refs"][kind]},
                    *r.origin,
                )
            )
        return opening

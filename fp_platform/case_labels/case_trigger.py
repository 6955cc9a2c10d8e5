"""CaseTrigger: reads DLA's closed decision chains from the audit topic and opens a case for each
decision the policy names (REVIEW, DECLINE, a deterministic sample of APPROVE) — a `case.trigger` keyed
by `case_id = hash(CaseSubjectKey)`. The trigger is recorded in `case_triggers` with the batch's offsets,
so a re-read audit event finds its case and emits nothing again."""

from __future__ import annotations

from typing import Any

import orjson
import psycopg

from fp_platform.case_labels.policy import case_subject, load_case_policy
from fp_platform.contracts import components, ids
from fp_platform.substrate import db
from fp_platform.substrate.worker import BusRecord, Worker

AUDIT_CHAIN = "audit.decision_chain"
_TRIGGER_COLUMNS = (
    "case_id",
    "platform_run_id",
    "subject",
    "trigger_event_id",
    "trigger_reason",
    "decision_id",
    "audit_event_id",
    "origin_topic",
    "origin_partition",
    "origin_offset",
)


class CaseTrigger(Worker):
    identity = components.CASE_TRIGGER

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = load_case_policy(self.h)

    def apply(self, conn: psycopg.Connection, records: list[BusRecord]) -> None:
        wanted = {}
        for r in records:
            if r.envelope["event_class"] != AUDIT_CHAIN:
                continue
            p = r.payload
            reason = self.policy.trigger_reason(p["decision"], p["event_id"])
            if reason is None:
                continue
            subject = case_subject(self.h, self.run_id, p["event_class"], p["event_id"])
            wanted.setdefault(ids.case_id(subject), (r, subject, reason))
        self.stats.counters["chains_read"] += len(records)
        if not wanted:
            return
        known = {
            c for (c,) in conn.execute("SELECT case_id FROM case_triggers WHERE case_id = ANY(%s)", (list(wanted),))
        }
        self.stats.counters["retriggers_skipped"] += len(known)
        rows = []
        for case_id, (r, subject, reason) in wanted.items():
            if case_id in known:
                continue
            p = r.payload
            trigger_id = ids.case_trigger_event_id(case_id)
            rows.append(
                (
                    case_id,
                    self.run_id,
                    orjson.dumps(subject).decode(),
                    trigger_id,
                    reason,
                    p["decision_id"],
                    r.envelope["event_id"],
                    *r.origin,
                )
            )
            self.emit(
                r.derive(
                    self.component,
                    trigger_id,
                    "case.trigger",
                    {
                        "case_id": case_id,
                        "case_subject_key": subject,
                        "trigger_reason": reason,
                        "decision": p["decision"],
                        "refs": {
                            "audit_event_id": r.envelope["event_id"],
                            "decision_id": p["decision_id"],
                            "ig_receipt_id": p["receipt_id"],
                        },
                        "transaction_id": p["transaction_id"],
                        "audit_origin": {"topic": r.topic, "partition": r.partition, "offset": r.offset},
                    },
                ),
                case_id,
            )
            self.stats.counters[f"triggers_{reason.lower()}"] += 1
        db.copy_rows(conn, "case_triggers", _TRIGGER_COLUMNS, rows)
        self.stats.counters["triggers"] += len(rows)

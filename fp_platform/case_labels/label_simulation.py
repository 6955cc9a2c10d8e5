"""The simulated world's answer to the platform's cases: investigators and chargebacks.

It reads DLA's closed chains from the audit topic (the decided transactions) and, for each, plans once
what the world will do, from the oracle's truth (read here and by evaluation only) and the policy's
deterministic draws: a case the trigger policy opens is disposed by an investigator after a delay
(wrong at the error rate); fraud not confirmed by an investigator before then comes back later as a
chargeback. The world clock is the latest audited event time; work falls due when the clock passes it
and is done in due order through CM (timeline + INVESTIGATOR assertion) or LS (CHARGEBACK assertion).
Everything is planned from the event, not from timing, so a rerun gives the same labels.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import orjson
import psycopg

from fp_platform.case_labels import case_management, label_store
from fp_platform.case_labels.policy import Investigation, case_subject, label_subject, load_case_policy
from fp_platform.contracts import components, ids
from fp_platform.contracts.oracle_truth import TruthMissing, oracle_frauds
from fp_platform.substrate.worker import BusRecord, Worker, WorkerError

AUDIT_CHAIN = "audit.decision_chain"


def _at(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


class LabelSimulation(Worker):
    identity = components.LABEL_SIMULATION
    _frauds: set[int] | None = None
    _last_work = 0.0

    def __init__(self, *args: Any, ls_group: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = load_case_policy(self.h)
        self.ls_group = ls_group  # a test's own LS outbox; LS's consumer group otherwise

    def apply(self, conn: psycopg.Connection, records: list[BusRecord]) -> None:
        chains = [r for r in records if r.envelope["event_class"] == AUDIT_CHAIN]
        if not chains:
            return
        if self._frauds is None:  # truth is sealed at P3, after the packs start: read it with the first chain
            try:
                self._frauds = oracle_frauds(self.h, self.store, self.run_id)
            except TruthMissing as exc:
                raise WorkerError(str(exc)) from None
        plan = [item for r in chains for item in self._plan(r)]
        if plan:
            conn.cursor().executemany(
                "INSERT INTO label_sim_plan (plan_id, platform_run_id, kind, due_at, event_class, event_id,"
                " transaction_id, case_id, label, effective_at, detail, origin_topic, origin_partition, origin_offset)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                plan,
            )
        conn.execute(
            "INSERT INTO label_sim_clock (platform_run_id, world_clock) VALUES (%s, %s)"
            " ON CONFLICT (platform_run_id) DO UPDATE SET world_clock = GREATEST(label_sim_clock.world_clock,"
            " EXCLUDED.world_clock), updated_at = now()",
            (self.run_id, max(_at(r.ts) for r in chains)),
        )
        self.stats.counters["chains_read"] += len(chains)
        self.stats.counters["planned"] += len(plan)
        self._work(conn)

    def _plan(self, r: BusRecord) -> list[tuple]:
        """What the world will do about this decided transaction (nothing, an investigation, a chargeback)."""
        p, at = r.payload, _at(r.ts)
        key = ids.label_subject_key(label_subject(self.h, self.run_id, p["event_id"]))
        is_fraud = p["transaction_id"] in self._frauds
        common = (p["event_class"], p["event_id"], p["transaction_id"])
        out = []
        work: Investigation | None = None
        if self.policy.trigger_reason(p["decision"], p["event_id"]) is not None:
            case_id = ids.case_id(case_subject(self.h, self.run_id, p["event_class"], p["event_id"]))
            work = self.policy.investigation(p["event_id"], is_fraud, at)
            detail = {
                "investigator": work.investigator,
                "assigned_at": work.assigned_at.isoformat(),
                "erred": work.erred,
            }
            out.append(
                (
                    ids.label_plan_id("INVESTIGATION", key),
                    self.run_id,
                    "INVESTIGATION",
                    work.disposed_at,
                    *common,
                    case_id,
                    work.label,
                    at,
                    orjson.dumps(detail).decode(),
                    *r.origin,
                )
            )
        chargeback = self.policy.chargeback_at(p["event_id"], at) if is_fraud else None
        if chargeback is not None and not (work and work.label == "FRAUD" and work.disposed_at <= chargeback):
            out.append(
                (
                    ids.label_plan_id("CHARGEBACK", key),
                    self.run_id,
                    "CHARGEBACK",
                    chargeback,
                    *common,
                    None,
                    "FRAUD",
                    at,
                    "{}",
                    *r.origin,
                )
            )
        return out

    def on_idle(self, conn: psycopg.Connection) -> None:
        """Investigations that waited for CM to open their case go on without new chains."""
        if time.monotonic() - self._last_work > 1.0:
            self._last_work = time.monotonic()
            with self.unit_of_work(conn):
                self._work(conn)

    def _work(self, conn: psycopg.Connection) -> None:
        """Do the work the clock has reached, in due order; stop at an investigation whose case CM has
        not opened yet (it is next once CM catches up)."""
        due = conn.execute(
            "SELECT p.plan_id, p.kind, p.due_at, p.event_id, p.transaction_id, p.case_id, p.label, p.effective_at,"
            " p.detail, p.origin_topic, p.origin_partition, p.origin_offset FROM label_sim_plan p"
            " JOIN label_sim_clock c ON c.platform_run_id = p.platform_run_id"
            " WHERE p.platform_run_id = %s AND p.due_at <= c.world_clock"
            " AND NOT EXISTS (SELECT 1 FROM label_sim_done d WHERE d.plan_id = p.plan_id)"
            " ORDER BY p.due_at, p.plan_id",
            (self.run_id,),
        ).fetchall()
        done = []
        for plan_id, kind, due_at, event_id, tx, case_id, label, effective_at, detail, *origin in due:
            if kind == "INVESTIGATION":
                work = Investigation(
                    detail["investigator"],
                    datetime.fromisoformat(detail["assigned_at"]),
                    due_at,
                    label,
                    detail["erred"],
                )
                if not case_management.work_case(
                    self.h, conn, self.run_id, case_id, work, tx, effective_at, self.ls_group
                ):
                    self.stats.counters["waits_for_cm"] += 1
                    break
                done.append((plan_id, self.run_id, f"DISPOSED_{label}"))
            else:
                result = label_store.append(
                    self.h,
                    conn,
                    self.component,
                    [
                        label_store.Assertion(
                            label_subject(self.h, self.run_id, event_id),
                            tx,
                            label,
                            "CHARGEBACK",
                            effective_at,
                            due_at,
                            tuple(origin),
                        )
                    ],
                    self.ls_group,
                )
                done.append(
                    (plan_id, self.run_id, "CHARGED_BACK" if result.appended or result.duplicates else "REFUSED")
                )
            self.stats.counters[f"done_{kind.lower()}"] += 1
        if done:
            conn.cursor().executemany(
                "INSERT INTO label_sim_done (plan_id, platform_run_id, outcome)"
                " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                done,
            )

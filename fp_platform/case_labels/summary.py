"""P10 CASE_LABELS_COMMITTED: what the case and labels plane did for a run, read from its append-only
tables — triggers against the audited decisions, timelines against triggers, label assertions against
the simulation's work — and whether it has caught up. The two P10 assets judge these summaries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from fp_platform.case_labels import label_store
from fp_platform.case_labels.case_management import EVIDENCE_REFS, CaseManagement
from fp_platform.case_labels.case_trigger import CaseTrigger
from fp_platform.case_labels.label_simulation import LabelSimulation
from fp_platform.case_labels.label_store import LabelStore
from fp_platform.case_labels.policy import CasePolicy
from fp_platform.contracts import ids, labels
from fp_platform.handles import Handles
from fp_platform.substrate import db
from fp_platform.substrate.worker import Worker, outbox_unsent, run_intake

CASE_LABELS_WORKERS: tuple[type[Worker], ...] = (CaseTrigger, CaseManagement, LabelStore, LabelSimulation)
APPEND_ONLY_TABLES = (
    "case_triggers",
    "cm_trigger_deliveries",
    "cm_case_events",
    "ls_writers",
    "ls_assertions",
    "ls_refused_writes",
    "label_sim_plan",
    "label_sim_done",
)


def _one(conn: psycopg.Connection, sql: str, run_id: str) -> Any:
    return conn.execute(sql, (run_id,)).fetchone()[0]


def world_clock(conn: psycopg.Connection, run_id: str) -> datetime | None:
    return _one(conn, "SELECT max(world_clock) FROM label_sim_clock WHERE platform_run_id = %s", run_id)


def progress(
    h: Handles, policy: CasePolicy, conn: psycopg.Connection, run_id: str, groups: dict[str, str] | None = None
) -> dict[str, int]:
    """Where the plane stands for the run: audited chains and how many each reader took in (redeliveries
    count there, so also: triggers and planned investigations against what the policy asks of the chains,
    and the simulation's clock against the last decided event), cases opened, simulated work due but not
    done, label events unsent or not yet in OFP."""
    g = {
        k: (groups or {}).get(k) or h.get(k)
        for k in ("CONSUMER_GROUP_ID_CASE_TRIGGER", "CONSUMER_GROUP_ID_LABEL_SIMULATION", "CONSUMER_GROUP_ID_LS")
    }
    clock_behind = conn.execute(
        "SELECT coalesce((SELECT max(world_clock) FROM label_sim_clock WHERE platform_run_id = %(r)s)"
        " < (SELECT max(event_ts) FROM df_decisions WHERE platform_run_id = %(r)s), true)",
        {"r": run_id},
    ).fetchone()[0]
    return {
        "chains": _one(conn, "SELECT count(*) FROM dla_chains WHERE platform_run_id = %s", run_id),
        "trigger_intake": run_intake(conn, g["CONSUMER_GROUP_ID_CASE_TRIGGER"], run_id),
        "simulation_intake": run_intake(conn, g["CONSUMER_GROUP_ID_LABEL_SIMULATION"], run_id),
        "triggers_expected": sum(expected_triggers(policy, conn, run_id).values()),
        "triggers": _one(conn, "SELECT count(*) FROM case_triggers WHERE platform_run_id = %s", run_id),
        "investigations_planned": _one(
            conn, "SELECT count(*) FROM label_sim_plan WHERE platform_run_id = %s AND kind = 'INVESTIGATION'", run_id
        ),
        "world_clock_behind": int(clock_behind),
        "cases_opened": _one(
            conn,
            "SELECT count(*) FROM cm_case_events WHERE platform_run_id = %s AND event_type = 'CASE_OPENED'",
            run_id,
        ),
        "work_due": _one(
            conn,
            "SELECT count(*) FROM label_sim_plan p JOIN label_sim_clock c USING (platform_run_id)"
            " WHERE p.platform_run_id = %s AND p.due_at <= c.world_clock AND NOT EXISTS"
            " (SELECT 1 FROM label_sim_done d WHERE d.plan_id = p.plan_id)",
            run_id,
        ),
        "assertions": _one(conn, "SELECT count(*) FROM ls_assertions WHERE platform_run_id = %s", run_id),
        "label_events_unsent": outbox_unsent(conn, g["CONSUMER_GROUP_ID_LS"]),
        "ofp_labels": _one(conn, "SELECT count(*) FROM ofp_labels WHERE platform_run_id = %s", run_id),
    }


def caught_up(p: dict[str, int]) -> tuple[bool, str]:
    done = (
        p["chains"] > 0
        and p["trigger_intake"] >= p["chains"]
        and p["simulation_intake"] >= p["chains"]
        and p["triggers"] == p["investigations_planned"] == p["triggers_expected"]
        and not p["world_clock_behind"]
        and p["cases_opened"] >= p["triggers"]
        and p["work_due"] == 0
        and p["label_events_unsent"] == 0
        and p["ofp_labels"] >= p["assertions"]
    )
    return done, (
        f"chains {p['chains']} (trigger read {p['trigger_intake']}, simulation read"
        f" {p['simulation_intake']}{', its clock behind' if p['world_clock_behind'] else ''});"
        f" triggers {p['triggers']}/{p['triggers_expected']}, investigations planned"
        f" {p['investigations_planned']}; cases {p['cases_opened']}; work due {p['work_due']};"
        f" labels {p['assertions']} ({p['label_events_unsent']} unsent, {p['ofp_labels']} in OFP)"
    )


def expected_triggers(policy: CasePolicy, conn: psycopg.Connection, run_id: str) -> dict[str, int]:
    """Triggers the policy asks for over the run's closed chains, by reason."""
    out: dict[str, int] = {}
    for decision, event_id in conn.execute(
        "SELECT decision, event_id FROM dla_chains WHERE platform_run_id = %s", (run_id,)
    ):
        reason = policy.trigger_reason(decision, event_id)
        if reason:
            out[reason] = out.get(reason, 0) + 1
    return out


def _unresolved_refs(conn: psycopg.Connection, run_id: str) -> list[dict[str, str]]:
    """Evidence references on the run's timelines that do not resolve: a decision without its audit chain,
    an audit event id that is not that chain's, an IG receipt the run did not admit."""
    by_case: dict[str, dict[str, str]] = {}
    for case_id, kind, ref in conn.execute(
        "SELECT case_id, detail->>'ref_kind', detail->>'ref_id' FROM cm_case_events"
        " WHERE platform_run_id = %s AND event_type = 'EVIDENCE_ATTACHED'",
        (run_id,),
    ):
        by_case.setdefault(case_id, {})[kind] = ref
    wanted = lambda kind: [refs.get(kind) for refs in by_case.values()]  # noqa: E731
    chains = {
        d
        for (d,) in conn.execute(
            "SELECT decision_id FROM dla_chains WHERE platform_run_id = %s AND decision_id = ANY(%s)",
            (run_id, wanted("decision_id")),
        )
    }
    receipts = {
        r
        for (r,) in conn.execute(
            "SELECT receipt_id FROM ig_receipts WHERE receipt_id = ANY(%s)"
            " AND platform_run_id = %s AND decision = 'ADMIT'",
            (wanted("ig_receipt_id"), run_id),
        )
    }
    out = []
    for case_id, refs in by_case.items():
        decision = refs.get("decision_id")
        ok = {
            "decision_id": decision in chains,
            "ig_receipt_id": refs.get("ig_receipt_id") in receipts,
            "audit_event_id": decision in chains and refs.get("audit_event_id") == ids.audit_event_id(decision),
        }
        out += [{"case_id": case_id, "ref_kind": k, "ref_id": refs.get(k)} for k, good in ok.items() if not good]
    return out


def case_summary(policy: CasePolicy, conn: psycopg.Connection, run_id: str) -> dict[str, Any]:
    rows = lambda sql: conn.execute(sql, (run_id,)).fetchall()  # noqa: E731
    expected = expected_triggers(policy, conn, run_id)
    by_type = dict(rows("SELECT event_type, count(*) FROM cm_case_events WHERE platform_run_id = %s GROUP BY 1"))
    opened_twice = _one(
        conn,
        "SELECT count(*) FROM (SELECT case_id FROM cm_case_events WHERE platform_run_id = %s"
        " AND event_type = 'CASE_OPENED' GROUP BY 1 HAVING count(*) > 1) x",
        run_id,
    )
    unopened = _one(
        conn,
        "SELECT count(*) FROM case_triggers t WHERE t.platform_run_id = %s AND NOT EXISTS"
        " (SELECT 1 FROM cm_case_events e WHERE e.case_id = t.case_id"
        " AND e.event_type = 'CASE_OPENED')",
        run_id,
    )
    short_evidence = conn.execute(
        "SELECT count(*) FROM cm_cases WHERE platform_run_id = %s AND evidence_refs <> %s", (run_id, len(EVIDENCE_REFS))
    ).fetchone()[0]
    investigations = dict(
        rows(
            "SELECT coalesce(d.outcome, CASE WHEN p.due_at <= c.world_clock THEN 'DUE'"
            " ELSE 'BEYOND_WORLD_CLOCK' END), count(*) FROM label_sim_plan p"
            " JOIN label_sim_clock c USING (platform_run_id)"
            " LEFT JOIN label_sim_done d ON d.plan_id = p.plan_id"
            " WHERE p.platform_run_id = %s AND p.kind = 'INVESTIGATION' GROUP BY 1"
        )
    )
    deliveries = dict(rows("SELECT outcome, count(*) FROM cm_trigger_deliveries WHERE platform_run_id = %s GROUP BY 1"))
    unresolved = _unresolved_refs(conn, run_id)
    return {
        "chains": _one(conn, "SELECT count(*) FROM dla_chains WHERE platform_run_id = %s", run_id),
        "policy_rev": policy.policy_rev,
        "triggers_expected": sum(expected.values()),
        "triggers_expected_by_reason": expected,
        "triggers": _one(conn, "SELECT count(*) FROM case_triggers WHERE platform_run_id = %s", run_id),
        "triggers_by_reason": dict(
            rows("SELECT trigger_reason, count(*) FROM case_triggers WHERE platform_run_id = %s GROUP BY 1")
        ),
        "trigger_deliveries": deliveries,
        "cases": _one(conn, "SELECT count(*) FROM cm_cases WHERE platform_run_id = %s", run_id),
        "cases_by_status": dict(rows("SELECT status, count(*) FROM cm_cases WHERE platform_run_id = %s GROUP BY 1")),
        "dispositions": {
            str(k): v
            for k, v in rows(
                "SELECT disposition, count(*) FROM cm_cases"
                " WHERE platform_run_id = %s AND disposition IS NOT NULL"
                " GROUP BY 1"
            )
        },
        "timeline_events": sum(by_type.values()),
        "timeline_events_by_type": by_type,
        "cases_opened_twice": opened_twice,
        "triggers_without_case": unopened,
        "cases_with_incomplete_evidence": short_evidence,
        "evidence_refs_unresolved": len(unresolved),
        "evidence_refs_unresolved_sample": unresolved[:10],
        "investigations": investigations,
        "world_clock": (world_clock(conn, run_id) or datetime.min).isoformat(),
        "append_only_tables": db.append_only(conn, APPEND_ONLY_TABLES),
        "exemplar_case_ids": [
            c
            for (c,) in rows(
                "SELECT case_id FROM cm_cases WHERE platform_run_id = %s ORDER BY opened_at, case_id LIMIT 10"
            )
        ],
    }


def label_summary(h: Handles, conn: psycopg.Connection, run_id: str, ls_group: str | None = None) -> dict[str, Any]:
    rows = lambda sql: conn.execute(sql, (run_id,)).fetchall()  # noqa: E731
    work = {
        f"{k}:{o}": n
        for k, o, n in rows(
            "SELECT p.kind, coalesce(d.outcome, CASE WHEN p.due_at <= c.world_clock THEN 'DUE' "
            " ELSE 'BEYOND_WORLD_CLOCK'"
            " END), count(*) FROM label_sim_plan p JOIN label_sim_clock c USING (platform_run_id)"
            " LEFT JOIN label_sim_done d ON d.plan_id = p.plan_id WHERE p.platform_run_id = %s GROUP BY 1, 2"
        )
    }
    expected = sum(n for k, n in work.items() if k.split(":")[1] not in ("DUE", "BEYOND_WORLD_CLOCK", "REFUSED"))
    first, last = conn.execute(
        "SELECT min(observed_at), max(observed_at) FROM ls_assertions WHERE platform_run_id = %s", (run_id,)
    ).fetchone()
    clock = world_clock(conn, run_id)
    refused = [
        {"writer_id": w, "source": s, "label_subject_key": k, "reason": r, "refused_at": t.isoformat()}
        for w, s, k, r, t in rows(
            "SELECT writer_id, source, label_subject_key, reason, refused_at"
            " FROM ls_refused_writes WHERE platform_run_id = %s ORDER BY seq LIMIT 20"
        )
    ]
    known_at_clock = labels.as_of(conn, run_id, clock) if clock else {}
    return {
        "assertions": _one(conn, "SELECT count(*) FROM ls_assertions WHERE platform_run_id = %s", run_id),
        "assertions_expected": expected,
        "by_source_label": {
            f"{s}:{lab}": n
            for s, lab, n in rows(
                "SELECT source, label, count(*) FROM ls_assertions WHERE platform_run_id = %s GROUP BY 1, 2"
            )
        },
        "subjects": _one(
            conn, "SELECT count(DISTINCT label_subject_key) FROM ls_assertions WHERE platform_run_id = %s", run_id
        ),
        "same_source_repeats": _one(
            conn,
            "SELECT count(*) FROM (SELECT 1 FROM ls_assertions WHERE platform_run_id = %s"
            " GROUP BY label_subject_key, source HAVING count(*) > 1) x",
            run_id,
        ),
        "ungranted_assertions": _one(
            conn,
            "SELECT count(*) FROM ls_assertions a WHERE a.platform_run_id = %s AND NOT"
            " EXISTS (SELECT 1 FROM ls_writers w WHERE w.writer_id = a.writer_id"
            " AND w.source = a.source)",
            run_id,
        ),
        "writers": [{"writer_id": w, "source": s} for w, s in sorted(label_store.granted(conn))],
        "refused_writes": _one(conn, "SELECT count(*) FROM ls_refused_writes WHERE platform_run_id = %s", run_id),
        "refused_writes_sample": refused,
        "simulated_work": work,
        "investigator_errors": _one(
            conn,
            "SELECT count(*) FROM label_sim_plan WHERE platform_run_id = %s"
            " AND kind = 'INVESTIGATION' AND (detail->>'erred')::boolean",
            run_id,
        ),
        "observed_at_first": first.isoformat() if first else None,
        "observed_at_last": last.isoformat() if last else None,
        "world_clock": clock.isoformat() if clock else None,
        "as_of_world_clock": {
            "subjects_labelled": len(known_at_clock),
            "fraud": sum(v["label"] == "FRAUD" for v in known_at_clock.values()),
        },
        "as_of_policy": "latest assertion with observed_at <= T per LabelSubjectKey; ties by source precedence "
        + " < ".join(labels.SOURCE_PRECEDENCE),
        "label_events_unsent": outbox_unsent(conn, ls_group or h.get("CONSUMER_GROUP_ID_LS")),
        "ofp_labels": _one(conn, "SELECT count(*) FROM ofp_labels WHERE platform_run_id = %s", run_id),
    }


def case_slice(conn: psycopg.Connection, run_id: str, limit: int = 5) -> list[dict[str, Any]]:
    """A bounded sample for people: the first closed cases with their whole timelines."""
    out = []
    for (case_id,) in conn.execute(
        "SELECT case_id FROM cm_cases WHERE platform_run_id = %s AND status = 'CLOSED'"
        " ORDER BY opened_at, case_id LIMIT %s",
        (run_id, limit),
    ).fetchall():
        events = conn.execute(
            "SELECT event_type, actor, at, detail FROM cm_case_events WHERE case_id = %s ORDER BY seq", (case_id,)
        ).fetchall()
        out.append(
            {
                "case_id": case_id,
                "timeline": [{"event_type": t, "actor": a, "at": at.isoformat(), **d} for t, a, at, d in events],
            }
        )
    return out


def label_slice(conn: psycopg.Connection, run_id: str, limit: int = 25) -> list[dict[str, Any]]:
    """The first assertions of each source."""
    cur = conn.execute(
        "SELECT assertion_id, subject, transaction_id, label, source, writer_id, effective_at, observed_at, case_id"
        " FROM (SELECT *, row_number() OVER (PARTITION BY source ORDER BY observed_at, seq) AS n FROM ls_assertions"
        " WHERE platform_run_id = %s) a WHERE n <= %s ORDER BY source, observed_at",
        (run_id, limit),
    )
    keys = [c.name for c in cur.description]
    return [
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in zip(keys, r, strict=True)}
        for r in cur.fetchall()
    ]

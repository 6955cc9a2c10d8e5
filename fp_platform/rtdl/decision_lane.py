"""P9 DECISION_CHAIN_COMMITTED: what the decision lane did for a run, read from its append-only tables
— decisions against admitted traffic, intents against outcomes, chains against decisions — and how
long to wait for it to catch up. The three P9 assets judge these summaries."""

from __future__ import annotations

from typing import Any

import psycopg

from fp_platform.handles import Handles
from fp_platform.rtdl import action_layer, decision_log
from fp_platform.rtdl.action_layer import ActionLayer
from fp_platform.rtdl.decision_log import DecisionLogAudit
from fp_platform.substrate import db
from fp_platform.substrate.worker import Worker, outbox_unsent

# DL and DF run chained in the decision processor (a core worker); the lane's own processes are these.
DECISION_LANE_WORKERS: tuple[type[Worker], ...] = (ActionLayer, DecisionLogAudit)
APPEND_ONLY_TABLES = (
    "df_decisions",
    "dl_posture_events",
    "al_outcomes",
    "al_intake",
    "dla_audit_records",
    "dla_chains",
    "dla_redeliveries",
    "dla_audit_segments",
    "mpr_registry_events",
    "worker_outbox",
)


def admitted_traffic(conn: psycopg.Connection, run_id: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM ig_receipts WHERE platform_run_id = %s AND decision = 'ADMIT'"
        " AND event_class LIKE 'traffic.%%'",
        (run_id,),
    ).fetchone()[0]


def counts(conn: psycopg.Connection, run_id: str) -> dict[str, int]:
    """The chain's counts for the run: admitted traffic → decisions → intents/outcomes → audit chains."""
    one = lambda sql: conn.execute(sql, (run_id,)).fetchone()[0]  # noqa: E731
    return {
        "admitted_traffic": admitted_traffic(conn, run_id),
        "decisions": one("SELECT count(*) FROM df_decisions WHERE platform_run_id = %s"),
        "outcomes": one("SELECT count(*) FROM al_outcomes WHERE platform_run_id = %s"),
        "chains": one("SELECT count(*) FROM dla_chains WHERE platform_run_id = %s"),
    }


def decision_summary(conn: psycopg.Connection, run_id: str) -> dict[str, Any]:
    rows = lambda sql: conn.execute(sql, (run_id,)).fetchall()  # noqa: E731
    c = counts(conn, run_id)
    postures = [
        {
            "seq": s,
            "posture": p,
            "previous": prev,
            "reasons": list(r),
            "at": at.isoformat(),
            "origin": {"topic": t, "partition": pt, "offset": o} if t else None,
        }
        for s, p, prev, r, at, t, pt, o in rows(
            "SELECT seq, posture, previous_posture, reasons, at, origin_topic, origin_partition,"
            " origin_offset FROM dl_posture_events WHERE platform_run_id = %s ORDER BY seq"
        )
    ]
    unexplained = conn.execute(
        "SELECT count(*) FROM df_decisions WHERE platform_run_id = %s AND cardinality(degrade_reasons) = 0"
        " AND (posture <> 'NORMAL' OR binding_status IS DISTINCT FROM 'READY' OR features IS NULL)",
        (run_id,),
    ).fetchone()[0]
    with conn.transaction():
        conn.execute("SET LOCAL enable_nestloop = off")  # one hash anti-join over the run, not a probe per decision
        not_admitted = conn.execute(
            "SELECT count(*) FROM df_decisions d WHERE d.platform_run_id = %s AND NOT EXISTS (SELECT 1 FROM ig_receipts"
            " r WHERE r.platform_run_id = d.platform_run_id AND r.event_id = d.event_id AND r.decision = 'ADMIT')",
            (run_id,),
        ).fetchone()[0]
    reasons = rows(
        "SELECT split_part(r, ':', 1), count(*) FROM df_decisions, unnest(degrade_reasons) r"
        " WHERE platform_run_id = %s GROUP BY 1 ORDER BY 2 DESC"
    )
    return {
        **c,
        "by_decision": dict(rows("SELECT decision, count(*) FROM df_decisions WHERE platform_run_id = %s GROUP BY 1")),
        "by_posture": dict(rows("SELECT posture, count(*) FROM df_decisions WHERE platform_run_id = %s GROUP BY 1")),
        "by_score_source": dict(
            rows("SELECT score_source, count(*) FROM df_decisions WHERE platform_run_id = %s GROUP BY 1")
        ),
        "by_binding_status": {
            str(k): v
            for k, v in rows("SELECT binding_status, count(*) FROM df_decisions WHERE platform_run_id = %s GROUP BY 1")
        },
        "degraded": conn.execute(
            "SELECT count(*) FROM df_decisions WHERE platform_run_id = %s AND cardinality(degrade_reasons) > 0",
            (run_id,),
        ).fetchone()[0],
        "degrade_reason_counts": dict(reasons),
        "degraded_without_reason": unexplained,
        "decisions_not_admitted": not_admitted,
        "bundles": [
            {"bundle_id": b, "bundle_version": v, "policy_rev": p, "decisions": n}
            for b, v, p, n in rows(
                "SELECT bundle_id, bundle_version, policy_rev, count(*) FROM df_decisions WHERE platform_run_id = %s"
                " GROUP BY 1, 2, 3"
            )
        ],
        "reason_code_counts": dict(
            rows(
                "SELECT r, count(*) FROM df_decisions, unnest(reason_codes) r"
                " WHERE platform_run_id = %s GROUP BY 1 ORDER BY 2 DESC"
            )
        ),
        "posture_events": postures,
    }


def action_summary(conn: psycopg.Connection, run_id: str) -> dict[str, Any]:
    parity = action_layer.intake_parity(conn, run_id)
    decisions = counts(conn, run_id)["decisions"]
    acted_twice = conn.execute(
        "SELECT count(*) FROM (SELECT decision_id FROM al_outcomes WHERE platform_run_id = %s"
        " GROUP BY 1 HAVING count(*) > 1) x",
        (run_id,),
    ).fetchone()[0]
    return {
        "intents_emitted": decisions,
        **parity,
        "decisions_acted_twice": acted_twice,
        "by_action": dict(
            conn.execute(
                "SELECT action_kind, count(*) FROM al_outcomes WHERE platform_run_id = %s GROUP BY 1", (run_id,)
            ).fetchall()
        ),
        "by_status": dict(
            conn.execute(
                "SELECT status, count(*) FROM al_outcomes WHERE platform_run_id = %s GROUP BY 1", (run_id,)
            ).fetchall()
        ),
        "idempotency_key": "action_id = hash(decision_id, action_kind)",
    }


def audit_summary(h: Handles, conn: psycopg.Connection, store, run_id: str) -> dict[str, Any]:
    one = lambda sql: conn.execute(sql, (run_id,)).fetchone()[0]  # noqa: E731
    c = counts(conn, run_id)
    segments = conn.execute(
        "SELECT object_key, records FROM dla_audit_segments WHERE platform_run_id = %s", (run_id,)
    ).fetchall()
    bucket = h.get("S3_ARCHIVE_BUCKET")
    prefix = h.pattern("DLA_AUDIT_SEGMENT_PATTERN", platform_run_id=run_id, segment_id="").rsplit("/", 1)[0]
    on_s3 = set(store.list_keys(bucket, prefix + "/"))
    unsent = outbox_unsent(conn, h.get("CONSUMER_GROUP_ID_DLA"))
    records = one("SELECT count(*) FROM dla_audit_records WHERE platform_run_id = %s")
    redeliveries = one("SELECT count(*) FROM dla_redeliveries WHERE platform_run_id = %s")
    return {
        **c,
        "audit_records": records,
        "audit_records_by_class": dict(
            conn.execute(
                "SELECT event_class, count(*) FROM dla_audit_records WHERE platform_run_id = %s GROUP BY 1", (run_id,)
            ).fetchall()
        ),
        "redeliveries": redeliveries,
        "redeliveries_conflicting": one(
            "SELECT count(*) FROM dla_redeliveries WHERE platform_run_id = %s AND NOT same_payload"
        ),
        "lineage_unresolved_total": decision_log.lineage_unresolved(conn, run_id),
        "degraded_chains": one("SELECT count(*) FROM dla_chains WHERE platform_run_id = %s AND degraded"),
        "segments": len(segments),
        "segment_records": sum(n for _, n in segments),
        "segments_missing_on_s3": sorted(k for k, _ in segments if k not in on_s3)[:10],
        "audit_events_unsent": unsent,
        "append_only_tables": db.append_only(conn, APPEND_ONLY_TABLES),
        "segment_bucket": bucket,
    }


def audit_slice(conn: psycopg.Connection, run_id: str, limit: int = 25) -> list[dict[str, Any]]:
    """A bounded sample of closed chains for people: the first ones and the degraded ones."""
    rows = conn.execute(
        "(SELECT decision_id, event_id, receipt_id, decision, posture, degraded, lineage FROM dla_chains"
        " WHERE platform_run_id = %(run)s ORDER BY closed_at, decision_id LIMIT %(n)s) UNION ALL"
        " (SELECT decision_id, event_id, receipt_id, decision, posture, degraded, lineage FROM dla_chains"
        " WHERE platform_run_id = %(run)s AND degraded ORDER BY closed_at, decision_id LIMIT %(n)s)",
        {"run": run_id, "n": limit},
    ).fetchall()
    keys = ("decision_id", "event_id", "receipt_id", "decision", "posture", "degraded", "lineage")
    return [dict(zip(keys, r, strict=True)) for r in rows]

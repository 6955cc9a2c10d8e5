"""Each drill's outcome, observed in the stores, against what it injected (recorded by WSP and by the
process drills at P6). One `drills/<drill_id>.json` per drill the run carried."""

from __future__ import annotations

from typing import Any

import psycopg

from fp_platform.contracts.drills import DRILLS
from fp_platform.handles import Handles


def _ids(events: list[list[str]]) -> tuple[list[str], list[str]]:
    return [c for c, _ in events], [e for _, e in events]


def duplicates(conn: psycopg.Connection, run_id: str, injected: dict[str, Any], docs: dict) -> dict[str, Any]:
    classes, ids = _ids(injected["events"])
    dup, admits = conn.execute(
        "SELECT count(DISTINCT (r.event_class, r.event_id)) FILTER (WHERE r.decision = 'DUPLICATE'),"
        " count(*) FILTER (WHERE r.decision = 'ADMIT') FROM ig_receipts r"
        " JOIN unnest(%s::text[], %s::text[]) AS d(event_class, event_id) USING (event_class, event_id)"
        " WHERE r.platform_run_id = %s",
        (classes, ids, run_id),
    ).fetchone()
    expected = {"duplicate_receipts": len(ids), "admitted_once": len(ids), "decisions_acted_twice": 0}
    observed = {
        "duplicate_receipts": dup,
        "admitted_once": admits,
        "decisions_acted_twice": docs["actions"]["decisions_acted_twice"],
    }
    return {"expected": expected, "observed": observed}


def payload_mismatch(conn: psycopg.Connection, run_id: str, injected: dict[str, Any], docs: dict) -> dict[str, Any]:
    classes, ids = _ids(injected["events"])
    anomalies, quarantined, admits = conn.execute(
        "SELECT (SELECT count(DISTINCT (r.event_class, r.event_id)) FROM ig_receipts r JOIN unnest(%s::text[],"
        " %s::text[]) AS d(event_class, event_id) USING (event_class, event_id) WHERE r.platform_run_id = %s"
        " AND r.decision = 'ANOMALY'),"
        " (SELECT count(DISTINCT (q.event_class, q.event_id)) FROM ig_quarantine q JOIN unnest(%s::text[],"
        " %s::text[]) AS d(event_class, event_id) USING (event_class, event_id) WHERE q.platform_run_id = %s"
        " AND q.decision = 'ANOMALY'),"
        " (SELECT count(*) FROM ig_receipts r JOIN unnest(%s::text[], %s::text[]) AS d(event_class, event_id)"
        " USING (event_class, event_id) WHERE r.platform_run_id = %s AND r.decision = 'ADMIT')",
        (classes, ids, run_id) * 3,
    ).fetchone()
    n = len(ids)
    return {
        "expected": {"anomaly_receipts": n, "quarantined_payloads": n, "admitted_once": n},
        "observed": {"anomaly_receipts": anomalies, "quarantined_payloads": quarantined, "admitted_once": admits},
    }


def missing_context(conn: psycopg.Connection, run_id: str, injected: dict[str, Any], docs: dict) -> dict[str, Any]:
    flows = injected["flows"]
    bound, missing, decided, degraded = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE b.status = 'MISSING_CONTEXT' AND cardinality(b.reasons) > 0),"
        " count(d.decision_id), count(d.decision_id) FILTER (WHERE cardinality(d.degrade_reasons) > 0)"
        " FROM csfb_flow_bindings b LEFT JOIN df_decisions d"
        " ON d.platform_run_id = b.platform_run_id AND d.event_id = b.event_id"
        " WHERE b.platform_run_id = %s AND b.flow_id = ANY(%s)",
        (run_id, flows),
    ).fetchone()
    return {
        "expected": {
            "transactions_bound_missing_context": bound,
            "decided": bound,
            "decided_with_degrade_reasons": bound,
        },
        "observed": {
            "transactions_bound_missing_context": missing,
            "decided": decided,
            "decided_with_degrade_reasons": degraded,
        },
        "exercised": bound > 0,
        "flows_without_context": len(flows),
        "transactions_of_those_flows": bound,
    }


def backpressure(conn: psycopg.Connection, run_id: str, injected: dict[str, Any], docs: dict) -> dict[str, Any]:
    coverage = docs["caught_up"]["derived_coverage"]
    return {
        "expected": {
            "backlog_grew": True,
            "lag_after_catch_up": 0,
            "vectors": coverage["traffic_admitted"],
            "decisions": docs["decisions"]["admitted_traffic"],
        },
        "observed": {
            "backlog_grew": injected.get("backlog_peak", 0) > injected.get("backlog_first", 0),
            "lag_after_catch_up": docs["caught_up"]["max_lag"],
            "vectors": coverage["ofp_features"],
            "decisions": docs["decisions"]["decisions"],
        },
        "exercised": bool(injected.get("acted")),
    }


def worker_crash(conn: psycopg.Connection, run_id: str, injected: dict[str, Any], docs: dict) -> dict[str, Any]:
    restarts = conn.execute(
        "SELECT restarts FROM supervision_state WHERE component = %s AND platform_run_id = %s",
        (injected.get("component"), run_id),
    ).fetchone()
    once = conn.execute(
        "SELECT count(*) - count(DISTINCT event_id) FROM df_decisions WHERE platform_run_id = %s", (run_id,)
    ).fetchone()[0]
    decisions, actions = docs["decisions"], docs["actions"]
    return {
        "expected": {
            "restarted": True,
            "decisions": decisions["admitted_traffic"],
            "outcomes": decisions["admitted_traffic"],
            "events_decided_twice": 0,
            "decisions_acted_twice": 0,
        },
        "observed": {
            "restarted": bool(injected.get("restarted")) and bool(restarts and restarts[0] > 0),
            "decisions": decisions["decisions"],
            "outcomes": actions["outcomes"],
            "events_decided_twice": once,
            "decisions_acted_twice": actions["decisions_acted_twice"],
        },
        "exercised": bool(injected.get("acted")),
        "restarts": restarts[0] if restarts else 0,
    }


OBSERVERS = {
    "duplicates": duplicates,
    "payload_mismatch": payload_mismatch,
    "missing_context": missing_context,
    "backpressure": backpressure,
    "worker_crash": worker_crash,
}


def drill_ids_of(wsp_summary: dict[str, Any], process: dict[str, Any]) -> tuple[str, ...]:
    """The drills the run carried: stream drills from WSP's options, process drills from their records."""
    options = wsp_summary.get("options", {})
    carried = {d for d, spec in DRILLS.items() if spec.wsp_option and options.get(spec.wsp_option)}
    return tuple(d for d in DRILLS if d in carried or d in process)


def observe(
    h: Handles, conn: psycopg.Connection, run_id: str, docs: dict, process: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """drill_id → its record: what was injected, expected vs observed, and PASS only if they agree and the drill
    actually exercised something."""
    injected_by_stream = docs["wsp"].get("drills_injected", {})
    out = {}
    for drill_id in drill_ids_of(docs["wsp"], process):
        spec = DRILLS[drill_id]
        injected = injected_by_stream.get(drill_id) if spec.wsp_option else process.get(drill_id, {})
        if injected is None:
            out[drill_id] = {"drill_id": drill_id, "verdict": "FAIL", "reason": "WSP recorded no injection"}
            continue
        seen = OBSERVERS[drill_id](conn, run_id, injected, docs)
        exercised = seen.pop("exercised", injected.get("injected", 0) > 0)
        agree = seen["expected"] == seen["observed"]
        reason = (
            "expected = observed"
            if agree and exercised
            else "the drill injected nothing"
            if not exercised
            else "; ".join(
                f"{k}: expected {v}, observed {seen['observed'].get(k)}"
                for k, v in seen["expected"].items()
                if seen["observed"].get(k) != v
            )
        )
        summary = {k: v for k, v in injected.items() if k not in ("events", "flows", "backlog_samples")}
        out[drill_id] = {
            "drill_id": drill_id,
            "injects": spec.injects,
            "expects": spec.expects,
            "injected": summary,
            **seen,
            "verdict": "PASS" if agree and exercised else "FAIL",
            "reason": reason,
        }
    return out

"""The single-writer reporter (P11): close a run under a run-scoped lock and write its closure bundle.

Under `REPORTER_LOCK_KEY_PATTERN` (a Postgres advisory lock held for the whole closure) it gathers the
phases' evidence (a missing required file fails closed, naming it), then writes, in order:
`reconciliation.json`, `replay_anchors.json`, `obs/environment_conformance.json`, `drills/<id>.json`,
`obs/anomaly_summary.json`, the governance log `obs/governance/events.jsonl` (it only grows),
`run_report.json`, `run_report.html` and last `run_completed.json`. All are derived summaries: a rerun
regenerates them and never touches the planes' truth. A second reporter finds the lock held and fails
closed without writing anything.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg

from fp_platform.contracts.evidence import EvidenceError, EvidenceWriter, utc_now_iso
from fp_platform.contracts.phases import P0, P10, P11, P_M1, PHASES, phases_until
from fp_platform.handles import Handles
from fp_platform.obs_gov import conformance, drills, governance, reconciliation, replay_anchors, report_html
from fp_platform.substrate import db
from fp_platform.substrate.settings import WorkerSettings

SPINE = tuple(p.phase_id for p in phases_until(P10) if p.phase_id not in (P_M1, P0))
Log = Callable[[str], None]

# role → handle of the phase evidence the closure reads (all required)
REQUIRED_EVIDENCE = {
    "run": "EVIDENCE_RUN_JSON_KEY",
    "daemons": "DAEMONS_READY_PATH_PATTERN",
    "oracle": "ORACLE_CHECKER_PASS_PATH_PATTERN",
    "ig_ready": "IG_READY_PATH_PATTERN",
    "sr": "SR_PASS_PATH_PATTERN",
    "wsp_start": "WSP_START_PATH_PATTERN",
    "wsp": "WSP_SUMMARY_PATH_PATTERN",
    "receipts": "RECEIPT_SUMMARY_PATH_PATTERN",
    "offsets": "KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN",
    "quarantine": "QUARANTINE_SUMMARY_PATH_PATTERN",
    "rtdl_offsets": "OFFSETS_SNAPSHOT_PATH_PATTERN",
    "caught_up": "RTDL_CAUGHT_UP_PATH_PATTERN",
    "archive": "ARCHIVE_CLOSURE_MARKER_PATH_PATTERN",
    "decisions": "DECISION_SUMMARY_PATH_PATTERN",
    "actions": "ACTION_SUMMARY_PATH_PATTERN",
    "audit": "DLA_EVIDENCE_PATH_PATTERN",
    "cases": "CASE_EVIDENCE_PATH_PATTERN",
    "labels": "LABEL_EVIDENCE_PATH_PATTERN",
}
CLOSEOUT_HEALTH = ("COMPONENT_ID_DF", "COMPONENT_ID_AL", "COMPONENT_ID_DLA")  # judged by a beat after the closure began


class ReporterBusy(RuntimeError):
    """Another reporter holds the run's lock: this one fails closed and writes nothing."""


class ClosureRefused(RuntimeError):
    """The closure cannot be proven (e.g. required evidence missing); `missing` names what."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


def reporter_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def run_lock(h: Handles, run_id: str) -> Iterator[str]:
    """Hold the run's reporter lock for the block (a session advisory lock on its own connection); raises
    ReporterBusy naming the holder when another reporter has it. Yields the lock key."""
    backend = h.get("REPORTER_LOCK_BACKEND")
    if backend != "postgres_advisory_lock":
        raise ReporterBusy(f"REPORTER_LOCK_BACKEND {backend!r} is not supported; failing closed")
    key = h.pattern("REPORTER_LOCK_KEY_PATTERN", platform_run_id=run_id)
    me = f"fp-reporter {run_id} {reporter_identity()}"
    with db.connect(h, autocommit=True, application_name=me[:63]) as conn:
        if not conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchone()[0]:
            holders = [
                r[0]
                for r in conn.execute(
                    "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE %s"
                    " AND pid <> pg_backend_pid()",
                    (f"fp-reporter {run_id} %",),
                )
            ]
            raise ReporterBusy(
                f"reporter lock {key} is held by {', '.join(holders) or 'another session'}; this"
                " reporter fails closed and writes nothing"
            )
        try:
            yield key
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))


def gather(h: Handles, writer: EvidenceWriter, expect_gates: list[str]) -> tuple[dict[str, Any], list[str]]:
    """(docs by role, missing or unreadable required files). Gate verdicts go under docs['gates']."""
    docs: dict[str, Any] = {"gates": {}}
    missing = []

    def read(name: str) -> dict[str, Any] | None:
        try:
            return writer.read(name)
        except EvidenceError as exc:
            missing.append(f"{name} ({exc})")
            return None

    for role, key in REQUIRED_EVIDENCE.items():
        docs[role] = read(h.get(key))
    present = [n for n in writer.list() if n.startswith("gates/")]
    names = sorted(set(expect_gates) | {n for n in present if n.split("/")[1] in SPINE})
    for name in names:
        docs["gates"][name] = read(name)
    absent = [p for p in SPINE if not any(n.split("/")[1] == p for n in names)]
    missing += [f"gates/{p}/ (no gate verdict for phase {p})" for p in absent]
    return docs, missing


def phase_table(gates: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    by_phase: dict[str, list[dict[str, Any]]] = {}
    for name, doc in gates.items():
        by_phase.setdefault(name.split("/")[1], []).append(doc)
    rows = []
    for ph in PHASES:
        verdicts = by_phase.get(ph.phase_id)
        if not verdicts:
            continue
        rows.append(
            {
                "phase_id": ph.phase_id,
                "name": ph.name,
                "verdict": "PASS" if all(v["verdict"] == "PASS" for v in verdicts) else "FAIL",
                "gates": [
                    {"asset": v["asset"], **{k: g[k] for k in ("name", "passed", "detail")}}
                    for v in verdicts
                    for g in v["gates"]
                ],
            }
        )
    return rows


def decision_latency(conn: psycopg.Connection, run_id: str, buckets: int = 40) -> dict[str, Any]:
    """IG receipt (the request's arrival) → DF decision, per traffic event: percentiles and a histogram (up
    to p99.5), and its hops — receipt → on the bus → decision processor intake → decided — with the degraded and parked
    shares (decided → published is on the bus: `fp-platform bench decision` measures it)."""
    with conn.transaction():
        conn.execute("SET LOCAL enable_nestloop = off")  # one hash join over the run, not a probe per decision
        rows = np.array(
            conn.execute(
                "SELECT extract(epoch FROM d.decided_at - r.received_at) * 1000,"
                " extract(epoch FROM coalesce(d.bus_at, d.intake_at, d.decided_at) - r.received_at) * 1000,"
                " extract(epoch FROM coalesce(d.intake_at, d.decided_at)"
                " - coalesce(d.bus_at, d.intake_at, d.decided_at))"
                " * 1000,"
                " extract(epoch FROM d.decided_at - coalesce(d.intake_at, d.decided_at)) * 1000,"
                " (cardinality(d.degrade_reasons) > 0)::int, (coalesce(d.parked_ms, 0) > 0)::int"
                " FROM df_decisions d JOIN ig_receipts r"
                " ON r.platform_run_id = d.platform_run_id AND r.event_id = d.event_id AND r.decision = 'ADMIT'"
                " WHERE d.platform_run_id = %s",
                (run_id,),
            ).fetchall(),
            dtype=float,
        ).reshape(-1, 6)
    if not rows.size:
        return {
            "decisions": 0,
            "p50_ms": 0.0,
            "p95_ms": 0.0,
            "p99_ms": 0.0,
            "max_ms": 0.0,
            "bucket_edges_ms": [],
            "bucket_counts": [],
            "hops": {},
            "degraded_share": 0.0,
            "parked_share": 0.0,
        }
    ms = rows[:, 0]
    p50, p95, p99, top = np.percentile(ms, [50, 95, 99, 99.5])
    counts, edges = np.histogram(ms, bins=buckets, range=(0.0, max(float(top), 1.0)))
    hops = {
        hop: {f"p{q}_ms": round(float(np.percentile(rows[:, i], q)), 1) for q in (50, 99)}
        for i, hop in ((1, "receipt_to_bus"), (2, "bus_to_intake"), (3, "intake_to_decided"))
    }
    return {
        "decisions": int(ms.size),
        "p50_ms": round(float(p50), 1),
        "p95_ms": round(float(p95), 1),
        "p99_ms": round(float(p99), 1),
        "max_ms": round(float(ms.max()), 1),
        "bucket_edges_ms": [round(float(e), 1) for e in edges],
        "bucket_counts": counts.tolist(),
        "hops": hops,
        "degraded_share": round(float(rows[:, 4].mean()), 4),
        "parked_share": round(float(rows[:, 5].mean()), 4),
    }


def anomaly_summary(
    conn: psycopg.Connection, run_id: str, docs: dict[str, Any], gov: list[dict[str, Any]]
) -> dict[str, Any]:
    receipts, decisions, labels = docs["receipts"], docs["decisions"], docs["labels"]
    restarts = dict(
        conn.execute(
            "SELECT component, restarts FROM supervision_state WHERE platform_run_id = %s AND restarts > 0", (run_id,)
        ).fetchall()
    )
    return {
        "ingest": {k: receipts["counts"][k] for k in ("DUPLICATE", "QUARANTINE", "ANOMALY", "PUBLISH_AMBIGUOUS")},
        "ingest_request_rejections": receipts["request_rejections"],
        "quarantine_by_decision": docs["quarantine"]["by_decision"],
        "degraded_decisions": decisions["degraded"],
        "degrade_reasons": decisions["degrade_reason_counts"],
        "binding_status": decisions["by_binding_status"],
        "postures": decisions["by_posture"],
        "dla_redeliveries_conflicting": docs["audit"]["redeliveries_conflicting"],
        "lineage_unresolved_total": docs["audit"]["lineage_unresolved_total"],
        "label_writes_refused": labels["refused_writes"],
        "worker_restarts": restarts,
        "governance_events_by_type": dict(Counter(e["event_type"] for e in gov)),
    }


def closeout_heartbeats(
    conn: psycopg.Connection, run_id: str, components: list[str], wait_s: float, poll_s: float = 0.5
) -> dict[str, Any]:
    """The heartbeat rows (`worker_heartbeats`) of `components` for the run once each has beaten since this call
    began (one that has not within `wait_s`: None), with that start as `since_utc`.

    Why not the health files: a worker rewrites them at most every `HEALTH_FILE_INTERVAL_S` while it runs, so
    the file P11 reads may predate the last chains DLA closed. A beat taken after the closure began reflects
    every record the run's phases saw applied (P9 waited for them). The clock is the database's, which stamps
    the rows."""
    since = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    deadline = time.monotonic() + wait_s
    while True:
        beats = {
            component: {"health_state": state, "counters": counters, "beat_at_utc": beat_at.isoformat()}
            for component, state, counters, beat_at in conn.execute(
                "SELECT component, health_state, counters, beat_at FROM worker_heartbeats"
                " WHERE component = ANY(%s) AND platform_run_id = %s AND beat_at > %s",
                (components, run_id, since),
            )
        }
        if len(beats) == len(components) or time.monotonic() >= deadline:
            return {"since_utc": since.isoformat(), "beats": {c: beats.get(c) for c in components}}
        time.sleep(poll_s)


def spine_closeout(h: Handles, docs: dict[str, Any], conformance_doc: dict[str, Any]) -> dict[str, Any]:
    """Local parity §11.1: conformance PASS, DF/AL/DLA GREEN (AL intake/outcome parity, DLA lineage resolved)
    by a heartbeat taken after the closure began (`docs["heartbeats"]`, see `closeout_heartbeats`; none fails
    closed), and WSP's bounded counts: every event of each output in scope emitted once (or withheld by a
    drill)."""
    problems = [] if conformance_doc["status"] == "PASS" else [f"conformance {conformance_doc['failed']}"]
    beats = docs["heartbeats"]["beats"]
    for component, beat in beats.items():
        if beat is None:
            problems.append(f"{component}: no heartbeat for the run since {docs['heartbeats']['since_utc']}")
        elif beat["health_state"] != "GREEN":
            problems.append(f"{component} {beat['health_state']}")
    al = beats[h.get("COMPONENT_ID_AL")]
    if al is not None and (parity := al["counters"].get("run_parity", {})).get("intents") != parity.get("outcomes"):
        problems.append(f"AL intake/outcome parity {parity}")
    dla = beats[h.get("COMPONENT_ID_DLA")]
    if dla is not None and (unresolved := dla["counters"].get("lineage_unresolved_total")) != 0:
        problems.append(f"DLA lineage_unresolved_total = {unresolved}")
    bound = docs["wsp"]["options"].get("max_events_per_output")
    rows = {o: v["rows"] for o, v in docs["wsp_start"]["stream_view"].items()}
    injected = docs["wsp"].get("drills_injected", {}).get("by_output", {})
    emitted = {}
    for output_id, counts in docs["wsp"]["outputs"].items():
        drill = injected.get(output_id, {})
        emitted[output_id] = counts["sent"] - drill.get("duplicate_copies", 0) - drill.get("mismatch_copies", 0)
        expected = min(bound, rows[output_id]) if bound else rows[output_id]
        if emitted[output_id] + drill.get("context_withheld", 0) != expected:
            problems.append(
                f"WSP {output_id}: emitted {emitted[output_id]} + withheld"
                f" {drill.get('context_withheld', 0)} != {expected}"
            )
    return {
        "holds": not problems,
        "problems": problems,
        "wsp_emitted": emitted,
        "bound": bound,
        "heartbeats": docs["heartbeats"],
    }


def close_run(
    h: Handles, writer: EvidenceWriter, expect_gates: list[str], log: Log, process_drills_name: str | None = None
) -> dict[str, Any]:
    """Close the run (see the module doc). Returns the closure result; raises ReporterBusy or ClosureRefused."""
    run_id = writer.platform_run_id
    closure_id = f"closure_{uuid.uuid4().hex[:16]}"
    started = utc_now_iso()
    components = {
        "ig": h.get("COMPONENT_ID_IG"),
        "ls": h.get("COMPONENT_ID_LS"),
        "dl": h.get("COMPONENT_ID_DL"),
        "reporter": h.get("COMPONENT_ID_REPORTER"),
    }
    try:
        with run_lock(h, run_id) as key:
            log(f"reporter lock {key} acquired by {reporter_identity()} ({closure_id})")
            with db.connect(h, autocommit=True) as conn:
                result = _close(
                    h,
                    conn,
                    writer,
                    run_id,
                    closure_id,
                    key,
                    started,
                    expect_gates,
                    components,
                    log,
                    process_drills_name,
                )
            log(f"reporter lock {key} released")
            return result
    except ReporterBusy as exc:
        with db.connect(h, autocommit=True) as conn:
            governance.append(
                conn,
                [
                    governance.GovEvent(
                        run_id,
                        "REPORTER_REFUSED",
                        "WARN",
                        components["reporter"],
                        f"refused:{closure_id}",
                        {"reporter": reporter_identity(), "reason": str(exc)},
                        datetime.now(UTC),
                    )
                ],
            )
        raise


def _close(
    h: Handles,
    conn: psycopg.Connection,
    writer: EvidenceWriter,
    run_id: str,
    closure_id: str,
    key: str,
    started: str,
    expect_gates: list[str],
    components: dict[str, str],
    log: Log,
    process_drills_name: str | None,
) -> dict[str, Any]:
    docs, missing = gather(h, writer, expect_gates)
    if missing:
        governance.append(
            conn,
            [
                governance.GovEvent(
                    run_id,
                    "CLOSURE_REFUSED",
                    "ANOMALY",
                    components["reporter"],
                    closure_id,
                    {"missing": missing},
                    datetime.now(UTC),
                )
            ],
        )
        raise ClosureRefused(f"required evidence missing or unreadable: {'; '.join(missing)}", missing)
    log(f"gathered {len(REQUIRED_EVIDENCE)} phase summaries and {len(docs['gates'])} gate verdicts")
    written: list[str] = []

    def put(handle_key: str, doc: dict[str, Any], **fields: str) -> dict[str, Any]:
        name = h.pattern(handle_key, **fields) if fields else h.get(handle_key)
        written.append(name)
        return writer.write_summary(name, {**doc, "closure_id": closure_id}, phase_id=P11)

    docs["wsp_producer"] = h.get("COMPONENT_ID_WSP")
    docs["receipts_by_producer"] = dict(
        conn.execute(
            "SELECT producer, count(*) FROM ig_receipts WHERE platform_run_id = %s AND source = 'ingest' GROUP BY 1",
            (run_id,),
        ).fetchall()
    )
    recon = reconciliation.reconcile(docs)
    put("RECONCILIATION_PATH_PATTERN", recon)
    anchors, anchor_problems = replay_anchors.build(h, conn, run_id, docs["offsets"], docs["rtdl_offsets"])
    put(
        "REPLAY_ANCHORS_PATH_PATTERN",
        {
            "topics": anchors,
            "offset_kind": "kafka_offset",
            "source": "every record of the run on every topic, read from the bus",
            "consistent_with": [
                "ig_receipts (ADMIT)",
                "sr_ready_publications",
                "consumers' origin offsets",
                "consumers' committed offsets",
                "ingest/kafka_offsets_snapshot.json",
                "rtdl_core/offsets_snapshot.json",
            ],
            "problems": anchor_problems,
        },
    )
    conf = conformance.check(h, conn)
    put("ENV_CONFORMANCE_PATH_PATTERN", conf)
    process = writer.read(process_drills_name) if process_drills_name and writer.exists(process_drills_name) else {}
    drill_records = drills.observe(h, conn, run_id, docs, process.get("drills", {}))
    for drill_id, record in drill_records.items():
        put("DRILL_RECORD_PATH_PATTERN", record, drill_id=drill_id)
    now = datetime.now(UTC)
    events = governance.collect(conn, run_id, components)
    events += [
        governance.GovEvent(
            run_id,
            "DRILL_OBSERVED",
            "INFO" if r["verdict"] == "PASS" else "ANOMALY",
            components["reporter"],
            f"drill:{d}:{r['verdict']}",
            {"drill_id": d, "verdict": r["verdict"], "reason": r["reason"]},
            now,
        )
        for d, r in drill_records.items()
    ]
    events.append(
        governance.GovEvent(
            run_id,
            "ENVIRONMENT_CONFORMANCE",
            "INFO" if conf["status"] == "PASS" else "ANOMALY",
            components["reporter"],
            closure_id,
            {"status": conf["status"], "failed": conf["failed"]},
            now,
        )
    )
    new_events = governance.append(conn, events)
    gov = governance.log(conn, run_id)
    anomalies = anomaly_summary(conn, run_id, docs, gov)
    put("ANOMALY_SUMMARY_PATH_PATTERN", anomalies)
    docs["heartbeats"] = closeout_heartbeats(
        conn, run_id, [h.get(k) for k in CLOSEOUT_HEALTH], WorkerSettings.load(h).heartbeat_stale_seconds
    )
    closeout = spine_closeout(h, docs, conf)
    failures = (
        recon["mismatches"]
        + [f"replay anchors: {p}" for p in anchor_problems]
        + [f"conformance: {c}" for c in conf["failed"]]
        + [f"drill {d}: {r['reason']}" for d, r in drill_records.items() if r["verdict"] != "PASS"]
        + [f"spine closeout: {p}" for p in closeout["problems"]]
    )
    phases = phase_table(docs["gates"])
    failures += [f"{p['phase_id']} {p['name']} FAIL" for p in phases if p["verdict"] != "PASS"]
    report = {
        "platform_run_id": run_id,
        "status": "PASS" if not failures else "FAIL",
        "failures": failures,
        "closure_id": closure_id,
        "reporter": reporter_identity(),
        "lock_key": key,
        "profile": h.profile,
        "scale": docs["run"].get("config", {}).get("params", {}).get("scale"),
        "phases": phases,
        "reconciliation": recon,
        "replay_anchor_problems": anchor_problems,
        "decisions": {
            k: docs["decisions"][k]
            for k in ("by_decision", "by_binding_status", "by_posture", "degrade_reason_counts", "bundles")
        },
        "decision_latency": decision_latency(conn, run_id),
        "drills": drill_records,
        "anomalies": anomalies,
        "environment_conformance": conf["status"],
        "spine_closeout": closeout,
        "governance_events": len(gov),
        "evidence_root": writer.uri(""),
        "closed_at_utc": utc_now_iso(),
    }
    gov_name = h.get("GOVERNANCE_EVENTS_PATH_PATTERN")
    report["evidence_files"] = sorted(
        set(writer.list())
        | set(written)
        | {gov_name, h.get("RUN_REPORT_PATH_PATTERN"), h.get("RUN_REPORT_HTML_PATH_PATTERN")}
    )
    governance.append(
        conn,
        [
            governance.GovEvent(
                run_id,
                "RUN_CLOSED",
                "INFO" if not failures else "ANOMALY",
                components["reporter"],
                closure_id,
                {"status": report["status"], "failures": failures[:20]},
                datetime.now(UTC),
            )
        ],
    )
    gov = governance.log(conn, run_id)
    added = governance.export(writer, gov_name, gov)
    written.append(gov_name)
    put("RUN_REPORT_PATH_PATTERN", report)
    html_name = publish_html(h, writer)
    written.append(html_name)
    log(f"closure written: {len(written)} files, {new_events} new governance events ({added} lines added)")
    marker = put(
        "RUN_CLOSURE_MARKER_PATH_PATTERN",
        {
            "run_status": report["status"],
            "failures": failures,
            "reporter": reporter_identity(),
            "lock_key": key,
            "started_at_utc": started,
            "finished_at_utc": utc_now_iso(),
            "files": written,
        },
    )
    return {
        "status": report["status"],
        "closure_id": closure_id,
        "lock_key": key,
        "written": written,
        "failures": failures,
        "missing": [],
        "reconciliation_holds": recon["holds"],
        "reconciliation_mismatches": recon["mismatches"],
        "anchor_problems": anchor_problems,
        "conformance": conf["status"],
        "drills": {d: r["verdict"] for d, r in drill_records.items()},
        "spine_closeout": closeout,
        "governance_events": len(gov),
        "report_html": writer.uri(html_name),
        "marker_written_at_utc": marker["written_at_utc"],
        "funnel": recon["funnel"],
        "decision_latency_p99_ms": report["decision_latency"]["p99_ms"],
    }


def publish_html(h: Handles, writer: EvidenceWriter) -> str:
    """Render run_report.html from run_report.json and, once the learning lane ran on the run, P14's
    evaluation report and P15's promotion receipt: P11 writes it, P16 writes it again with the learning
    section. Returns its evidence name."""
    learning = None
    if writer.exists(eval_name := h.get("MF_EVAL_REPORT_PATH_PATTERN")):
        receipt = h.get("MPR_PROMOTION_RECEIPT_PATH_PATTERN")
        learning = {
            "eval": writer.read(eval_name),
            "promotion": writer.read(receipt) if writer.exists(receipt) else None,
        }
    html_name = h.get("RUN_REPORT_HTML_PATH_PATTERN")
    page = report_html.render(writer.read(h.get("RUN_REPORT_PATH_PATTERN")), learning)
    writer.store.put(writer.bucket, writer.key(html_name), page.encode(), write_once=False)
    return html_name

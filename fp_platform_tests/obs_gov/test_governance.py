"""The governance events P11 collects from the planes' append-only records: one per record, attributed and keyed
as the log's readers expect, and the same record always the same event (collecting twice appends nothing)."""

from __future__ import annotations

from fp_platform.obs_gov import governance
from fp_platform.substrate import db
from fp_platform_tests.support import unique_run_id

COMPONENTS = {"ig": "ig.test", "ls": "ls.test", "dl": "dl.test", "reporter": "reporter.test"}


def test_each_plane_record_gives_its_event_once(h, stack):
    run_id = unique_run_id()
    worker = f"gov_test.{run_id}"
    with db.connect(h, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ls_refused_writes (platform_run_id, writer_id, source, label_subject_key, reason, attempted)"
            " VALUES (%s, 'cm', 'case', 'txn:1', 'not the writer', '{}')",
            (run_id,),
        )
        conn.execute(
            "INSERT INTO ig_receipts (receipt_id, platform_run_id, event_class, event_id, payload_hash, decision,"
            " reason, source) VALUES (%s, %s, 'traffic.fraud', 'e1', 'h', 'QUARANTINE', 'schema', 'ingest'),"
            " (%s, %s, 'traffic.fraud', 'e2', 'h', 'ADMIT', NULL, 'ingest')",
            (f"rcpt_q_{run_id}", run_id, f"rcpt_a_{run_id}", run_id),
        )
        conn.execute(
            "INSERT INTO dl_posture_events (platform_run_id, posture, previous_posture, reasons, signals, policy_rev)"
            " VALUES (%s, 'RULES_ONLY', 'NORMAL', ARRAY['ofp_stale'], '{}', 'r1'),"
            " (%s, 'NORMAL', 'RULES_ONLY', '{}', '{}', 'r1')",
            (run_id, run_id),
        )
        conn.execute(
            "INSERT INTO supervision_state (component, pack_id, platform_run_id, restarts, last_exit)"
            " VALUES (%s, 'test', %s, 2, 'exit 1')",
            (worker, run_id),
        )
        try:
            events = governance.collect(conn, run_id, COMPONENTS)
            again = governance.collect(conn, run_id, COMPONENTS)
        finally:
            conn.execute("DELETE FROM supervision_state WHERE component = %s", (worker,))
    seen = [(e.event_type, e.severity, e.component, e.source_key, e.detail) for e in events]
    assert seen == [
        (
            "LABEL_WRITE_REFUSED",
            "ANOMALY",
            "ls.test",
            seen[0][3],
            {"writer_id": "cm", "source": "case", "label_subject_key": "txn:1", "reason": "not the writer"},
        ),
        (
            "INGEST_QUARANTINE",
            "ANOMALY",
            "ig.test",
            f"ig_receipts:rcpt_q_{run_id}",
            {"event_class": "traffic.fraud", "event_id": "e1", "reason": "schema", "receipt_id": f"rcpt_q_{run_id}"},
        ),
        (
            "DEGRADE_POSTURE_CHANGED",
            "WARN",
            "dl.test",
            seen[2][3],
            {"posture": "RULES_ONLY", "previous": "NORMAL", "reasons": ["ofp_stale"]},
        ),
        (
            "DEGRADE_POSTURE_CHANGED",
            "INFO",
            "dl.test",
            seen[3][3],
            {"posture": "NORMAL", "previous": "RULES_ONLY", "reasons": []},
        ),
        (
            "WORKER_RESTARTED",
            "WARN",
            worker,
            f"restart:{worker}:1",
            {"worker": worker, "restart": 1, "last_exit": "exit 1"},
        ),
        (
            "WORKER_RESTARTED",
            "WARN",
            worker,
            f"restart:{worker}:2",
            {"worker": worker, "restart": 2, "last_exit": "exit 1"},
        ),
    ]
    assert seen[0][3].startswith("ls_refused_writes:") and seen[2][3].startswith("dl_posture_events:")
    assert int(seen[3][3].split(":")[1]) == int(seen[2][3].split(":")[1]) + 1  # one per row, in row order
    assert [e.event_id for e in again] == [e.event_id for e in events]
    assert all(e.occurred_at is not None for e in events)

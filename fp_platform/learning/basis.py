"""P12 LEARNING_INPUT_READY: what a dataset will be built from, pinned before it is built.

The basis names the closed spine run, the protocol windows (world time), the label as-of cutoff, the
archive segments (verified against their digests) and the label snapshot (the assertions observed by
the cutoff), each fingerprinted; OFS later reads exactly these and refuses if any fingerprint moved.
Anti-leakage: no assertion in the label snapshot may have been observed after the test week began
(a cutoff moved past that point is caught, naming the assertions), and no feature window of the shared
definition may end after its event.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from fp_platform.contracts.canonical import digest
from fp_platform.contracts.evidence import EvidenceError
from fp_platform.contracts.features import DELAY_DAYS, FEATURE_VERSION, WINDOW_END_DAYS_BEFORE_EVENT
from fp_platform.contracts.phases import P12
from fp_platform.learning import archive_reader
from fp_platform.learning.policy import LearningPolicy
from fp_platform.learning.step import Step
from fp_platform.substrate.job_channel import Log


class BasisRefused(RuntimeError):
    """The basis cannot be pinned (the run is not closed, the archive is incomplete); the message says why."""


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def windows(policy: LearningPolicy, last_event: datetime) -> dict[str, datetime]:
    """Train, delay and test weeks back to back, the test week ending with the last whole day of traffic; before
    them, the history model selection validates on."""
    end = datetime(last_event.year, last_event.month, last_event.day, tzinfo=UTC) + timedelta(days=1)
    test_start = end - timedelta(days=policy.test_days)
    train_end = test_start - timedelta(days=policy.delay_days)
    train_start = train_end - timedelta(days=policy.train_days)
    return {
        # model selection's folds reach this far back: the oldest trains from here (`learning/selection.py`)
        "history_start": train_start - timedelta(days=policy.delay_days + policy.test_days * policy.selection.folds),
        "train_start": train_start,
        "train_end": train_end,
        "test_start": test_start,
        "test_end": end,
    }


def label_snapshot(conn: psycopg.Connection, run_id: str, cutoff: datetime, test_start: datetime) -> dict[str, Any]:
    """The assertions observed by the cutoff: count, per label, digest; those observed after the test began."""
    rows = conn.execute(
        "SELECT assertion_id, label, observed_at, transaction_id FROM ls_assertions"
        " WHERE platform_run_id = %s AND observed_at <= %s ORDER BY assertion_id",
        (run_id, cutoff),
    ).fetchall()
    by_label: dict[str, int] = {}
    for _, label, _, _ in rows:
        by_label[label] = by_label.get(label, 0) + 1
    late = [
        {"assertion_id": a, "label": lab, "observed_at": iso(o), "transaction_id": tx}
        for a, lab, o, tx in rows
        if o > test_start
    ]
    return {
        "cutoff": iso(cutoff),
        "assertions": len(rows),
        "by_label": by_label,
        "max_observed_at": iso(max(r[2] for r in rows)) if rows else None,
        "digest": digest([r[0] for r in rows]),
        "observed_after_test_start": len(late),
        "observed_after_test_start_examples": late[:20],
    }


def feature_leakage(features: tuple[str, ...]) -> list[str]:
    """Feature windows that reach past their event (or, for label-based ones, inside the label delay)."""
    problems = [
        f"{f}: window ends {-d} days after its event"
        for f, d in WINDOW_END_DAYS_BEFORE_EVENT.items()
        if f in features and d < 0
    ]
    problems += [
        f"{f}: label window ends {d} days before its event, inside the {DELAY_DAYS}-day label delay"
        for f, d in WINDOW_END_DAYS_BEFORE_EVENT.items()
        if f in features and "risk" in f and d < DELAY_DAYS
    ]
    return problems


def _wait_for_label_archive(
    conn: psycopg.Connection, run_id: str, labels_topic: str, log: Log, timeout_s: float
) -> tuple[int, int]:
    """Wait until the archive holds every label event LS published for the run: (assertions, archived)."""
    deadline = time.monotonic() + timeout_s
    while True:
        assertions, archived = conn.execute(
            "SELECT (SELECT count(*) FROM ls_assertions WHERE platform_run_id = %(r)s),"
            " (SELECT coalesce(sum(records), 0) FROM archive_segments WHERE platform_run_id = %(r)s"
            "  AND topic = %(t)s)",
            {"r": run_id, "t": labels_topic},
        ).fetchone()
        if archived >= assertions or time.monotonic() > deadline:
            return assertions, int(archived)
        log(f"waiting for the archive: {archived}/{assertions} label events archived")
        time.sleep(2)


def pin_basis(
    step: Step,
    label_cutoff: datetime | None = None,
    archive_wait_s: float = 120.0,
) -> dict[str, Any]:
    """Pin and write `learning/input_basis.json` and `learning/leakage_check.json`; return the result."""
    h, conn, store, writer, run_id, policy, log = step.unpack()
    try:
        closure = writer.read(h.get("RUN_CLOSURE_MARKER_PATH_PATTERN"))
    except EvidenceError as exc:
        raise BasisRefused(f"the spine run is not closed (P11): {exc}") from None
    labels_topic = h.topic("FP_BUS_LABELS_EVENTS_V1").name
    assertions, archived = _wait_for_label_archive(conn, run_id, labels_topic, log, archive_wait_s)
    segments = archive_reader.manifest(conn, run_id)
    traffic_topic = h.topic("FP_BUS_TRAFFIC_FRAUD_V1").name
    log(f"verifying {len(segments)} archive segments against the manifest")
    last_event = None
    for seg, table in archive_reader.read_segments(store, h.get("S3_ARCHIVE_BUCKET"), segments):
        if seg["topic"] == traffic_topic and table.num_rows:
            latest = parse_time(max(table.column("ts_utc").to_pylist()))
            last_event = latest if last_event is None else max(last_event, latest)
    if last_event is None:
        raise BasisRefused(f"the archive of {run_id} holds no traffic")
    w = windows(policy, last_event)
    cutoff = label_cutoff or w["test_start"]
    labels = label_snapshot(conn, run_id, cutoff, w["test_start"])
    feature_problems = feature_leakage(policy.features)
    per_topic: dict[str, int] = {}
    for s in segments:
        per_topic[s["topic"]] = per_topic.get(s["topic"], 0) + s["records"]
    archive = {
        "bucket": h.get("S3_ARCHIVE_BUCKET"),
        "segment_count": len(segments),
        "records_by_topic": per_topic,
        "fingerprint": archive_reader.fingerprint(segments),
        "segments": segments,
        "label_events_archived": archived,
        "label_assertions": assertions,
    }
    basis = {
        "source_run": run_id,
        "closure_id": closure.get("closure_id"),
        "policy_rev": policy.policy_rev,
        "protocol": {"train_days": policy.train_days, "delay_days": policy.delay_days, "test_days": policy.test_days},
        "windows": {k: iso(v) for k, v in w.items()},
        "last_event_ts": iso(last_event),
        "label_cutoff": iso(cutoff),
        "label_cutoff_source": "operator" if label_cutoff else "policy (test start)",
        "label_snapshot": labels,
        "archive": archive,
        "feature_definition": {
            "feature_version": FEATURE_VERSION,
            "features": list(policy.features),
            "window_end_days_before_event": WINDOW_END_DAYS_BEFORE_EVENT,
        },
    }
    basis["basis_fingerprint"] = digest(
        {k: basis[k] for k in ("source_run", "policy_rev", "windows", "label_cutoff", "feature_definition")}
        | {"archive": archive["fingerprint"], "labels": labels["digest"]}
    )
    leakage = {
        "label": {
            "passed": labels["observed_after_test_start"] == 0,
            "cutoff": iso(cutoff),
            "test_start": iso(w["test_start"]),
            **{k: labels[k] for k in ("observed_after_test_start", "observed_after_test_start_examples")},
        },
        "feature": {"passed": not feature_problems, "problems": feature_problems},
    }
    writer.write_summary(h.get("LEARNING_INPUT_BASIS_PATH_PATTERN"), basis, phase_id=P12)
    writer.write_summary(h.get("LEARNING_LEAKAGE_CHECK_PATH_PATTERN"), leakage, phase_id=P12)
    return {
        "basis_fingerprint": basis["basis_fingerprint"],
        "windows": basis["windows"],
        "label_cutoff": iso(cutoff),
        "label_assertions": labels["assertions"],
        "archive_segments": len(segments),
        "label_events_archived": archived,
        "label_assertions_total": assertions,
        "label_leakage": leakage["label"],
        "feature_leakage": feature_problems,
        "closure_id": basis["closure_id"],
    }

"""The gates of P4 INGEST_READY, P5 READY_PUBLISHED, P6 STREAMING_ACTIVE and P7 INGEST_COMMITTED, each declared
once: name, meaning and predicate over the phase's evidence document (the facts the asset gathered).
Dagster-free: the assets turn them into blocking checks; the unit tests judge them on documents of their own."""

from __future__ import annotations

from typing import Any

import orjson

from fp_platform.contracts.gates import Gate, Judgement
from fp_platform.control.ig.admission import AMBIGUOUS

Doc = dict[str, Any]


# --- P4 ig_ready: doc = ingest_ready.probe + the run id --------------------------------------------------
def _ig_healthy(d: Doc) -> Judgement:
    health = d["health"]
    return (
        health["state"] == "GREEN" and health["required_platform_run_id"] == d["platform_run_id"],
        f"state {health['state']} for {health['required_platform_run_id']} {health['reasons'] or ''}",
    )


def _writer_boundary(d: Doc) -> Judgement:
    auth = d["auth"]
    return (
        auth["unauthenticated_health_status"] == 401
        and auth["unauthenticated_push_status"] == 401
        and auth["authenticated_health_status"] == 200,
        f"unauthenticated health {auth['unauthenticated_health_status']}, push "
        f"{auth['unauthenticated_push_status']}; authenticated {auth['authenticated_health_status']}",
    )


IG_READY = (
    Gate("ig_healthy", "IG daemon running for this run, health GREEN", _ig_healthy),
    Gate("writer_boundary", "unauthenticated requests get 401; the API key is accepted", _writer_boundary),
    Gate(
        "kafka_writable",
        "a smoke event is admitted, its offset advanced and it reads back",
        lambda d: (d["publish_smoke"]["ok"], str(d["publish_smoke"].get("eb_ref") or d["publish_smoke"].get("detail"))),
    ),
    Gate(
        "s3_writable",
        "IG wrote its receipt segment to S3",
        lambda d: (d["s3_smoke"]["ok"], str(d["s3_smoke"]["receipt_segment"])),
    ),
)


# --- P5 ready_published: doc = SR's report + `ready_at` (partition, offset of READY on the topic, or None)
#     + `ready_duplicates` (READYs skipped as duplicates; None when none was found) --------------------------
def _ready_on_topic(d: Doc) -> Judgement:
    ready = d.get("ready") or {}
    at = d["ready_at"]
    return (
        at is not None and tuple(at) == (ready.get("partition"), ready.get("offset")),
        f"receipt {ready.get('partition')}@{ready.get('offset')}, topic has {tuple(at) if at else None}",
    )


READY_PUBLISHED = (
    Gate(
        "sr_gates_passed",
        "sealed pack, checker PASS and stream-view receipts (no PASS, no read)",
        lambda d: (
            all(g["passed"] for g in d["gates"].values()),
            "; ".join(f"{k}: {v['detail']}" for k, v in d["gates"].items()),
        ),
    ),
    Gate(
        "lease_respected",
        "the equivalence-key lease was taken without conflict",
        lambda d: (
            "conflict" not in (d.get("lease") or {}) and bool(d.get("lease")),
            (d.get("lease") or {}).get("conflict") or (d.get("lease") or {}).get("key", "no lease"),
        ),
    ),
    Gate(
        "ready_on_topic",
        "READY for this run and scenario is on the control topic at the receipted offset",
        _ready_on_topic,
    ),
    Gate(
        "single_ready",
        "exactly one READY for this run on the control topic",
        lambda d: (
            d["ready_duplicates"] == 0,
            f"duplicates: {d['ready_duplicates'] if d['ready_duplicates'] is not None else 'no READY'}",
        ),
    ),
)


# --- P6 wsp_stream: doc = WSP's report + view_root, drills (id -> injected count or the process drill's
#     outcome) -------------------------------------------------------------------------------------------
def _sources(d: Doc) -> list[str]:
    return [k for keys in d.get("sources", {}).values() for k in keys]


def _drills_injected(d: Doc) -> Judgement:
    drills = d["drills"]
    return (
        all(v["injected"] for v in drills.values()),
        ", ".join(f"{k}: {v['detail']}" for k, v in drills.items()) or "no drill",
        {"drills": list(drills)},
    )


WSP_STREAM = (
    Gate(
        "ready_consumed",
        "WSP found READY for this run",
        lambda d: (bool(d.get("ready")), str(d.get("ready") or d.get("stopped"))),
    ),
    Gate(
        "stream_view_only",
        "every source is a stream-view shard of this run",
        lambda d: (
            bool(_sources(d)) and all(k.startswith(d["view_root"]) for k in _sources(d)),
            f"{len(_sources(d))} shards under {d['view_root']}",
        ),
    ),
    Gate(
        "streaming_completed",
        "the stream ran to its end",
        lambda d: (bool(d.get("completed")), d.get("stopped") or "complete"),
    ),
    Gate(
        "nonretryable_zero",
        "no non-retryable failure",
        lambda d: (
            d.get("totals", {}).get("nonretryable", 1) == 0,
            orjson.dumps(d.get("nonretryable", [])[:3]).decode(),
        ),
    ),
    Gate(
        "drills_injected",
        "every drill the run carries injected its fault (stream drills: events selected;"
        " process drills: the worker paused or killed)",
        _drills_injected,
    ),
)


# --- P7 ingest_receipt_summary: doc = ingest_commit.receipt_summary + segment_problems + wsp_unreceipted ----
def _totals_coherent(d: Doc) -> Judgement:
    uncovered = d["wsp_unreceipted"]
    settled = d["settled_unpublishable"]
    claims_ok = d["claims"] == d["admitted_distinct"] + settled + d["unresolved_in_doubt"]
    return (
        d["attempts"] > 0 and claims_ok and not uncovered,
        f"{d['counts']} = {d['attempts']} attempts; {d['claims']} claims = "
        f"{d['admitted_distinct']} admitted + {settled} settled unpublishable + {d['unresolved_in_doubt']} in doubt"
        + (f"; WSP answers without an IG receipt: {uncovered}" if uncovered else ""),
        {"counts": d["counts"]},
    )


INGEST_RECEIPT_SUMMARY = (
    Gate(
        "totals_coherent",
        "ADMIT+DUPLICATE+QUARANTINE+ANOMALY+PUBLISH_AMBIGUOUS = attempts > 0; every claim "
        "admitted, settled as unpublishable (a terminal receipt) or in doubt; every answer WSP got is receipted",
        _totals_coherent,
    ),
    Gate(
        "no_publish_ambiguous",
        "no claim left in doubt",
        lambda d: (
            d["unresolved_in_doubt"] == 0,
            f"{d['unresolved_in_doubt']} in doubt; {d['counts'][AMBIGUOUS]} {AMBIGUOUS} receipts, "
            f"{d['resolved_by_reconcile']} resolved by reconcile",
        ),
    ),
    Gate(
        "receipts_append_only",
        "every receipt is in a write-once S3 segment with its recorded digest",
        lambda d: (
            d["segments_cover_through_seq"]
            and not d["segment_problems"]
            and d["receipts_in_segments"] == d["receipts_total"],
            "; ".join(d["segment_problems"]) or f"{d['receipts_in_segments']}/{d['receipts_total']} in segments",
        ),
    ),
)


# --- P7 kafka_offsets_snapshot: doc = ingest_commit.offsets_snapshot + wanted_topics ------------------------
def _empty_topics(d: Doc) -> list[str]:
    return sorted(t for t in d["wanted_topics"] if sum(p["admitted"] for p in d["topics"].get(t, [])) == 0)


def _stale_partitions(d: Doc) -> tuple[list[dict], int]:
    parts = [p for rows in d["topics"].values() for p in rows]
    return [p for p in parts if not p["advanced"]], len(parts)


KAFKA_OFFSETS_SNAPSHOT = (
    Gate(
        "topics_populated",
        "every streamed output's topic holds admitted records of the run",
        lambda d: (
            not _empty_topics(d),
            f"no admitted records on {_empty_topics(d)}"
            if _empty_topics(d)
            else f"{len(d['wanted_topics'])} topics populated",
        ),
    ),
    Gate(
        "offsets_advanced",
        "each partition, read to its end, is past the run's last admitted offset",
        lambda d: (
            not _stale_partitions(d)[0],
            f"{len(_stale_partitions(d)[0])} partitions behind"
            if _stale_partitions(d)[0]
            else f"{_stale_partitions(d)[1]} partitions advanced",
        ),
    ),
    Gate(
        "dedupe_drift_zero",
        "records of the run on the bus = ADMIT receipts, each event once",
        lambda d: (d["dedupe_drift"] == 0, f"drift {d['dedupe_drift']}"),
    ),
)


# --- P7 quarantine_summary: doc = ingest_commit.quarantine_summary + refused_receipts ----------------------
QUARANTINE_SUMMARY = (
    Gate(
        "quarantine_durable",
        "every QUARANTINE/ANOMALY payload is indexed and present in the quarantine bucket",
        lambda d: (
            not d["missing_payloads"] and (d["count"] > 0) == (d["refused_receipts"] > 0),
            f"{d['count']} indexed for {d['refused_receipts']} refused receipts; "
            f"missing payloads: {d['missing_payloads'][:3]}",
            {"by_decision": d["by_decision"]},
        ),
    ),
)

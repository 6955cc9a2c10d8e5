"""The gates of P8 RTDL_CAUGHT_UP and P9 DECISION_CHAIN_COMMITTED, each declared once: name, meaning and
predicate over the phase's evidence document (the facts the asset gathered). Dagster-free: the assets
turn them into blocking checks, and the unit tests judge them on documents of their own."""

from __future__ import annotations

from typing import Any

from fp_platform.contracts.gates import Gate, Judgement, none_listed, tables_append_only, workers_green

Doc = dict[str, Any]


# --- P8 rtdl_caught_up: doc = the lag report, Kafka commits, archive closure, coverage and degrade counts ---
def _caught_up(d: Doc) -> Judgement:
    behind = [
        f"{c} {p['topic']}[{p['partition']}] lag {p['lag']}"
        for c, w in d["report"]["workers"].items()
        for p in w["partitions"]
        if p["lag"] > d["lag_max_allowed"]
    ]
    if not d["admitted_partitions"]:
        return False, "no admitted records for the run"
    return not behind, (
        "; ".join(behind)
        or f"max lag {d['report']['max_lag']} over "
        f"{d['report']['partitions_covered']} partitions after {d['waited_s']}s"
    )


def _archive_closed(d: Doc) -> Judgement:
    c = d["closure"]
    return (
        c["closed"] and d["closure_problem"] is None,
        d["closure_problem"]
        or "; ".join(c["coverage_problems"][:3])
        or f"{c['segment_count']} segments, {c['records']} records ({len(c['orphan_segments'])} orphan objects"
        " from replays)",
    )


RTDL_CAUGHT_UP = (
    Gate(
        "workers_healthy",
        "archive, IEG, OFP and CSFB run for this run with fresh GREEN heartbeats",
        workers_green(lambda d: f"{d['workers']} workers GREEN"),
    ),
    Gate(
        "commit_after_write",
        "no Kafka-committed offset is ahead of the offset written with the state",
        none_listed("kafka_ahead_of_db", "Kafka commits at or behind the DB offsets"),
    ),
    Gate(
        "caught_up", "lag <= RTDL_CAUGHT_UP_LAG_MAX on every partition holding the run's admitted records", _caught_up
    ),
    Gate(
        "origin_offsets_complete",
        "every admitted traffic event has a feature vector and a flow binding, each with its origin offset",
        lambda d: (
            d["coverage"]["complete"],
            f"{d['coverage']['traffic_admitted']} traffic admitted; vectors"
            f" {d['coverage']['ofp_features']}, bindings {d['coverage']['csfb_flow_bindings']}",
        ),
    ),
    Gate(
        "archive_closed", "archive segments cover every admitted record once; closure marker written", _archive_closed
    ),
    Gate(
        "degrades_recorded",
        "every binding short of READY carries its reasons; degrade counts in evidence",
        lambda d: (
            d["degrades"]["csfb_degrades_without_reason"] == 0,
            f"bindings {d['degrades']['csfb_bindings']}; {d['degrades']['ofp_context_incomplete']} vectors"
            f" without context, {d['degrades']['ofp_risk_without_labels']} with no label yet",
            {"degrade_counts": d["degrades"]["csfb_bindings"]},
        ),
    ),
)


# --- P9 decision_summary: doc = decision_lane.decision_summary + waited_s + unhealthy -----------------------
def _postures_recorded(d: Doc) -> Judgement:
    no_reason = [p["seq"] for p in d["posture_events"] if not p["reasons"]]
    return (
        bool(d["posture_events"]) and not no_reason,
        " → ".join(p["posture"] for p in d["posture_events"]) or "DL published no posture for the run",
        {"by_posture": d["by_posture"]},
    )


DECISION_SUMMARY = (
    Gate(
        "decisions_cover_traffic",
        "one decision per admitted traffic event, none for anything else",
        lambda d: (
            d["decisions"] == d["admitted_traffic"] > 0 and d["decisions_not_admitted"] == 0,
            f"{d['decisions']} decisions for {d['admitted_traffic']} admitted traffic events"
            f" ({d['decisions_not_admitted']} not admitted) after {d['waited_s']}s",
            {"by_decision": d["by_decision"]},
        ),
    ),
    Gate(
        "degrade_explicit",
        "every decision short of full context, features or NORMAL posture says why",
        lambda d: (
            d["degraded_without_reason"] == 0,
            f"{d['degraded']} degraded decisions, {d['degraded_without_reason']} without a reason",
            {"degrade_reason_counts": d["degrade_reason_counts"]},
        ),
    ),
    Gate("postures_recorded", "DL published the run's postures, each with its reasons", _postures_recorded),
    Gate("df_dl_green", "DF and DL run for this run with fresh GREEN heartbeats", workers_green("DF and DL GREEN")),
)


# --- P9 action_summary: doc = decision_lane.action_summary + waited_s + unhealthy ---------------------------
def _duplicates_prevented(d: Doc) -> Judgement:
    extra = d["intent_deliveries"] - d["intents"]
    return (
        extra == d["duplicates_prevented"] and d["decisions_acted_twice"] == 0,
        f"{d['duplicates_prevented']} duplicate intents prevented of {extra} repeats;"
        f" {d['decisions_acted_twice']} decisions acted twice",
    )


ACTION_SUMMARY = (
    Gate(
        "intents_equal_outcomes",
        "every decision's intent reached AL and has exactly one outcome",
        lambda d: (
            d["intents_emitted"] == d["intents"] == d["outcomes"] > 0,
            f"{d['intents_emitted']} emitted, {d['intents']} taken in, {d['outcomes']} outcomes",
            {"by_action": d["by_action"]},
        ),
    ),
    Gate(
        "duplicates_prevented",
        "every repeated intent delivery was counted as prevented, none acted twice",
        _duplicates_prevented,
    ),
    Gate(
        "al_green",
        "AL runs for this run with a fresh GREEN heartbeat and intake/outcome parity",
        workers_green("AL GREEN with intake/outcome parity"),
    ),
)


# --- P9 audit_summary: doc = decision_lane.audit_summary + waited_s + unhealthy -----------------------------
def _audit_durable(d: Doc) -> Judgement:
    consumed = d["audit_records"] + d["redeliveries"]
    return (
        d["segment_records"] == consumed and not d["segments_missing_on_s3"] and d["audit_events_unsent"] == 0,
        f"{d['segments']} segments hold {d['segment_records']} of {consumed} records consumed;"
        f" missing on S3: {d['segments_missing_on_s3'][:3]}; {d['audit_events_unsent']} audit events unsent",
    )


AUDIT_SUMMARY = (
    Gate(
        "one_chain_per_decision",
        "DLA closed exactly one decision→intent→outcome chain per decision",
        lambda d: (d["chains"] == d["decisions"] > 0, f"{d['chains']} chains for {d['decisions']} decisions"),
    ),
    Gate(
        "lineage_resolved",
        "lineage_unresolved_total = 0: each chain reaches the IG receipt of its admitted offset",
        lambda d: (d["lineage_unresolved_total"] == 0, f"lineage_unresolved_total = {d['lineage_unresolved_total']}"),
    ),
    Gate(
        "audit_durable",
        "audit segments on S3 hold every record DLA consumed; audit events all published",
        _audit_durable,
    ),
    Gate(
        "audit_append_only", "the database refuses UPDATE/DELETE on every decision-lane truth table", tables_append_only
    ),
    Gate(
        "dla_green",
        "DLA runs for this run with a fresh GREEN heartbeat",
        workers_green("DLA GREEN, lineage_unresolved_total = 0"),
    ),
)

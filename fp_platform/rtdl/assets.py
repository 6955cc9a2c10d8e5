"""RTDL assets: P8 RTDL_CAUGHT_UP (`rtdl_caught_up`) and P9 DECISION_CHAIN_COMMITTED (`decision_summary`,
`action_summary`, `audit_summary`).

The rtdl_core workers run as supervised daemons from P2; this asset keeps them supervised while it
waits for them to consume everything IG admitted for the run, then proves it from Postgres (the
offsets written with the state), Kafka (commits never ahead of the DB) and S3 (archive closure).
"""

import time

from dagster import AssetExecutionContext, MaterializeResult, asset

from fp_platform.checks import gate_check_results, gate_specs
from fp_platform.contracts.evidence import EvidenceError
from fp_platform.contracts.gates import GateResult
from fp_platform.contracts.phases import P8, P9, phase
from fp_platform.operate import supervisor
from fp_platform.operate.packs import pack
from fp_platform.resources import PlatformResource, platform_run_partitions
from fp_platform.rtdl import caught_up, decision_lane


@asset(group_name=phase(P8).group, partitions_def=platform_run_partitions,
       deps=["daemons_ready", "ingest_receipt_summary", "kafka_offsets_snapshot", "quarantine_summary"],
       kinds={"kafka", "postgres", "s3"},
       check_specs=gate_specs("rtdl_caught_up", {
           "workers_healthy": "archive, IEG, OFP and CSFB run for this run with fresh GREEN heartbeats",
           "commit_after_write": "no Kafka-committed offset is ahead of the offset written with the state",
           "caught_up": "lag <= RTDL_CAUGHT_UP_LAG_MAX on every partition holding the run's admitted records",
           "origin_offsets_complete": "every admitted traffic event has a feature vector and a flow binding, "
                                      "each with its origin offset",
           "archive_closed": "archive segments cover every admitted record once; closure marker written",
           "degrades_recorded": "every binding short of READY carries its reasons; degrade counts in evidence"}),
       description="P8: the RTDL core workers have durably consumed the run's admitted topics.")
def rtdl_caught_up(context: AssetExecutionContext, platform: PlatformResource):
    h, run_id, store = platform.handles, context.partition_key, platform.store
    lag_max = int(h.get("RTDL_CAUGHT_UP_LAG_MAX"))
    core = (pack(h, h.get("PACK_ID_RTDL_CORE")),)
    started = time.monotonic()
    deadline = started + float(h.get("RTDL_CAUGHT_UP_TIMEOUT_SECONDS"))
    with platform.connect() as conn:
        conn.autocommit = True
        ranges = caught_up.admitted_ranges(conn, run_id)
        last_log = 0.0
        while True:
            statuses = supervisor.reconcile(h, conn, run_id, core, log=context.log.info)
            report = caught_up.lag_report(h, conn, run_id, ranges)
            if report["max_lag"] == 0 or time.monotonic() > deadline:
                break
            if time.monotonic() - last_log > 10:
                last_log = time.monotonic()
                context.log.info("waiting for RTDL: " + ", ".join(f"{c} lag {w['max_lag']}"
                                                                  for c, w in report["workers"].items()))
            time.sleep(1.0)
        time.sleep(float(h.get("WORKER_HEARTBEAT_INTERVAL_SECONDS")))  # a heartbeat after the last batch
        statuses = supervisor.status(h, conn, core)
        committed = caught_up.kafka_committed(h, report)
        closure = caught_up.archive_closure(h, conn, store, run_id, ranges)
        degrades = caught_up.degrade_counts(conn, run_id)
        traffic_topic = h.topic("FP_BUS_TRAFFIC_FRAUD_V1").name
        coverage = caught_up.derived_coverage(conn, run_id, sum(n for (t, _), (_, _, n) in ranges.items()
                                                                 if t == traffic_topic))
    waited = round(time.monotonic() - started, 1)
    writer = platform.evidence(run_id)
    writer.write_summary(h.get("OFFSETS_SNAPSHOT_PATH_PATTERN"),
                         {**report, "kafka_committed": committed, "offset_kind": "kafka_offset",
                          "commit_policy": h.get("RTDL_CORE_OFFSET_COMMIT_POLICY")}, phase_id=P8)
    writer.write_summary(h.get("RTDL_CAUGHT_UP_PATH_PATTERN"),
                         {"max_lag": report["max_lag"], "lag_max_allowed": lag_max, "waited_s": waited,
                          "partitions_covered": report["partitions_covered"],
                          "lag_by_worker": {c: w["max_lag"] for c, w in report["workers"].items()},
                          "degrade_counts": degrades, "derived_coverage": coverage,
                          "workers": [s.to_dict() for s in statuses]}, phase_id=P8)
    writer.write_summary(h.get("ARCHIVE_WRITE_SUMMARY_PATH_PATTERN"),
                         {k: v for k, v in closure.items() if k != "segments"}, phase_id=P8)
    closure_problem = _close_archive(writer, h, closure)

    stale = float(h.get("WORKER_HEARTBEAT_STALE_SECONDS"))
    sick = [f"{s.component}: {s.state} {s.health_state} beat {s.heartbeat_age_s}s" for s in statuses
            if not (s.up and s.platform_run_id == run_id and s.health_state == "GREEN"
                    and s.heartbeat_age_s is not None and s.heartbeat_age_s <= stale)]
    behind = [f"{c} {p['topic']}[{p['partition']}] lag {p['lag']}" for c, w in report["workers"].items()
              for p in w["partitions"] if p["lag"] > lag_max]
    gates = [
        GateResult("workers_healthy", not sick, "; ".join(sick) or f"{len(statuses)} workers GREEN"),
        GateResult("commit_after_write", not committed["kafka_ahead_of_db"],
                   "; ".join(committed["kafka_ahead_of_db"]) or "Kafka commits at or behind the DB offsets"),
        GateResult("caught_up", bool(ranges) and not behind,
                   "; ".join(behind) or f"max lag {report['max_lag']} over {report['partitions_covered']} "
                   f"partitions after {waited}s" if ranges else "no admitted records for the run"),
        GateResult("origin_offsets_complete", coverage["complete"],
                   f"{coverage['traffic_admitted']} traffic admitted; vectors {coverage['ofp_features']},"
                   f" bindings {coverage['csfb_flow_bindings']}"),
        GateResult("archive_closed", closure["closed"] and closure_problem is None,
                   closure_problem or "; ".join(closure["coverage_problems"][:3])
                   or f"{closure['segment_count']} segments, {closure['records']} records"
                   f" ({len(closure['orphan_segments'])} orphan objects from replays)"),
        GateResult("degrades_recorded", degrades["csfb_degrades_without_reason"] == 0,
                   f"bindings {degrades['csfb_bindings']}; {degrades['ofp_context_incomplete']} vectors without"
                   f" context, {degrades['ofp_risk_without_labels']} with no label yet",
                   {"degrade_counts": degrades["csfb_bindings"]}),
    ]
    return MaterializeResult(metadata={"max_lag": report["max_lag"], "waited_s": waited,
                                       "archive_records": closure["records"]},
                             check_results=gate_check_results(writer, P8, "rtdl_caught_up", gates))


def _close_archive(writer, h, closure: dict) -> str | None:
    """Write the run's archive closure marker once; a rerun must find the same manifest."""
    if not closure["closed"]:
        return None
    name = h.get("ARCHIVE_CLOSURE_MARKER_PATH_PATTERN")
    if writer.exists(name):
        try:
            prior = writer.read(name)
        except EvidenceError as exc:
            return str(exc)
        if prior["manifest_sha256"] == closure["manifest_sha256"]:
            return None
        return f"closure marker holds manifest {prior['manifest_sha256'][:12]}, now {closure['manifest_sha256'][:12]}"
    writer.write_truth(name, closure, phase_id=P8)
    return None




def _wait_lane(context: AssetExecutionContext, platform: PlatformResource, conn, have: str, want: str) -> float:
    """Supervise the decision lane pack until the run's `have` count reaches its `want` count (names of
    `decision_lane.counts`); then a heartbeat after the last batch. Seconds waited."""
    h, run_id = platform.handles, context.partition_key
    lane = (pack(h, h.get("PACK_ID_RTDL_DECISION_LANE")),)

    def done() -> tuple[bool, str]:
        c = decision_lane.counts(conn, run_id)
        return c[have] >= c[want] > 0, f"{c[have]}/{c[want]} {have}"

    _, waited = supervisor.wait_until(done, float(h.get("DECISION_LANE_TIMEOUT_SECONDS")),
                                      lambda: supervisor.reconcile(h, conn, run_id, lane, log=context.log.info),
                                      context.log.info)
    time.sleep(float(h.get("WORKER_HEARTBEAT_INTERVAL_SECONDS")) + 0.5)
    return waited


@asset(group_name=phase(P9).group, partitions_def=platform_run_partitions, deps=[rtdl_caught_up],
       kinds={"kafka", "postgres"},
       check_specs=gate_specs("decision_summary", {
           "decisions_cover_traffic": "one decision per admitted traffic event, none for anything else",
           "degrade_explicit": "every decision short of full context, features or NORMAL posture says why",
           "postures_recorded": "DL published the run's postures, each with its reasons",
           "df_dl_green": "DF and DL run for this run with fresh GREEN heartbeats"}),
       description="P9: DF decided every admitted traffic event (rules + model, explicit degrade).")
def decision_summary(context: AssetExecutionContext, platform: PlatformResource):
    h, run_id = platform.handles, context.partition_key
    with platform.connect() as conn:
        conn.autocommit = True

        waited = _wait_lane(context, platform, conn, "decisions", "admitted_traffic")
        doc = decision_lane.decision_summary(conn, run_id)
        sick = supervisor.unhealthy(h, conn, "PACK_ID_RTDL_DECISION_LANE", "COMPONENT_ID_DF", "COMPONENT_ID_DL")
    writer = platform.evidence(run_id)
    writer.write_summary(h.get("DECISION_SUMMARY_PATH_PATTERN"), {**doc, "waited_s": waited}, phase_id=P9)
    no_reason = [p["seq"] for p in doc["posture_events"] if not p["reasons"]]
    gates = [
        GateResult("decisions_cover_traffic", doc["decisions"] == doc["admitted_traffic"] > 0
                   and doc["decisions_not_admitted"] == 0,
                   f"{doc['decisions']} decisions for {doc['admitted_traffic']} admitted traffic events"
                   f" ({doc['decisions_not_admitted']} not admitted) after {waited}s",
                   {"by_decision": doc["by_decision"]}),
        GateResult("degrade_explicit", doc["degraded_without_reason"] == 0,
                   f"{doc['degraded']} degraded decisions, {doc['degraded_without_reason']} without a reason",
                   {"degrade_reason_counts": doc["degrade_reason_counts"]}),
        GateResult("postures_recorded", bool(doc["posture_events"]) and not no_reason,
                   " → ".join(p["posture"] for p in doc["posture_events"]) or "DL published no posture for the run",
                   {"by_posture": doc["by_posture"]}),
        GateResult("df_dl_green", not sick, "; ".join(sick) or "DF and DL GREEN"),
    ]
    return MaterializeResult(metadata={"decisions": doc["decisions"], "degraded": doc["degraded"],
                                       "by_decision": doc["by_decision"]},
                             check_results=gate_check_results(writer, P9, "decision_summary", gates))


@asset(group_name=phase(P9).group, partitions_def=platform_run_partitions, deps=[decision_summary],
       kinds={"kafka", "postgres"},
       check_specs=gate_specs("action_summary", {
           "intents_equal_outcomes": "every decision's intent reached AL and has exactly one outcome",
           "duplicates_prevented": "every repeated intent delivery was counted as prevented, none acted twice",
           "al_green": "AL runs for this run with a fresh GREEN heartbeat and intake/outcome parity"}),
       description="P9: AL executed each intent once (idempotent on action_id) and recorded its outcome.")
def action_summary(context: AssetExecutionContext, platform: PlatformResource):
    h, run_id = platform.handles, context.partition_key
    with platform.connect() as conn:
        conn.autocommit = True

        waited = _wait_lane(context, platform, conn, "outcomes", "decisions")
        doc = decision_lane.action_summary(conn, run_id)
        sick = supervisor.unhealthy(h, conn, "PACK_ID_RTDL_DECISION_LANE", "COMPONENT_ID_AL")
    writer = platform.evidence(run_id)
    writer.write_summary(h.get("ACTION_SUMMARY_PATH_PATTERN"), {**doc, "waited_s": waited}, phase_id=P9)
    extra = doc["intent_deliveries"] - doc["intents"]
    gates = [
        GateResult("intents_equal_outcomes", doc["intents_emitted"] == doc["intents"] == doc["outcomes"] > 0,
                   f"{doc['intents_emitted']} emitted, {doc['intents']} taken in, {doc['outcomes']} outcomes",
                   {"by_action": doc["by_action"]}),
        GateResult("duplicates_prevented", extra == doc["duplicates_prevented"] and doc["decisions_acted_twice"] == 0,
                   f"{doc['duplicates_prevented']} duplicate intents prevented of {extra} repeats;"
                   f" {doc['decisions_acted_twice']} decisions acted twice"),
        GateResult("al_green", not sick, "; ".join(sick) or "AL GREEN with intake/outcome parity"),
    ]
    return MaterializeResult(metadata={"outcomes": doc["outcomes"],
                                       "duplicates_prevented": doc["duplicates_prevented"]},
                             check_results=gate_check_results(writer, P9, "action_summary", gates))


@asset(group_name=phase(P9).group, partitions_def=platform_run_partitions, deps=[action_summary],
       kinds={"kafka", "postgres", "s3"},
       check_specs=gate_specs("audit_summary", {
           "one_chain_per_decision": "DLA closed exactly one decision→intent→outcome chain per decision",
           "lineage_resolved": "lineage_unresolved_total = 0: each chain reaches the IG receipt of its admitted offset",
           "audit_durable": "audit segments on S3 hold every record DLA consumed; audit events all published",
           "audit_append_only": "the database refuses UPDATE/DELETE on every decision-lane truth table",
           "dla_green": "DLA runs for this run with a fresh GREEN heartbeat"}),
       description="P9: DLA's append-only audit: one closed chain per decision, lineage to the IG receipt.")
def audit_summary(context: AssetExecutionContext, platform: PlatformResource):
    h, run_id = platform.handles, context.partition_key
    with platform.connect() as conn:
        conn.autocommit = True

        waited = _wait_lane(context, platform, conn, "chains", "decisions")
        doc = decision_lane.audit_summary(h, conn, platform.store, run_id)
        chains = decision_lane.audit_slice(conn, run_id)
        sick = supervisor.unhealthy(h, conn, "PACK_ID_RTDL_DECISION_LANE", "COMPONENT_ID_DLA")
    writer = platform.evidence(run_id)
    slice_name = h.pattern("AUDIT_SLICE_PATH_PATTERN", slice_id="first_and_degraded")
    writer.write_summary(slice_name, {"chains": chains, "bounded_to": len(chains)}, phase_id=P9)
    writer.write_summary(h.get("DLA_EVIDENCE_PATH_PATTERN"), {**doc, "waited_s": waited, "slices": [slice_name]},
                         phase_id=P9)
    consumed = doc["audit_records"] + doc["redeliveries"]
    mutable = [t for t, ok in doc["append_only_tables"].items() if not ok]
    gates = [
        GateResult("one_chain_per_decision", doc["chains"] == doc["decisions"] > 0,
                   f"{doc['chains']} chains for {doc['decisions']} decisions"),
        GateResult("lineage_resolved", doc["lineage_unresolved_total"] == 0,
                   f"lineage_unresolved_total = {doc['lineage_unresolved_total']}"),
        GateResult("audit_durable", doc["segment_records"] == consumed and not doc["segments_missing_on_s3"]
                   and doc["audit_events_unsent"] == 0,
                   f"{doc['segments']} segments hold {doc['segment_records']} of {consumed} records consumed;"
                   f" missing on S3: {doc['segments_missing_on_s3'][:3]}; {doc['audit_events_unsent']} audit events"
                   " unsent"),
        GateResult("audit_append_only", not mutable, f"no append-only trigger on {mutable}" if mutable
                   else f"{len(doc['append_only_tables'])} tables refuse UPDATE/DELETE"),
        GateResult("dla_green", not sick, "; ".join(sick) or "DLA GREEN, lineage_unresolved_total = 0"),
    ]
    return MaterializeResult(metadata={"chains": doc["chains"], "lineage_unresolved_total":
                                       doc["lineage_unresolved_total"]},
                             check_results=gate_check_results(writer, P9, "audit_summary", gates))

"""Case and labels assets: P10 CASE_LABELS_COMMITTED (`case_summary`, `label_summary`).

The case_labels pack runs as supervised daemons from P2; these assets keep it (and OFP, which takes in
the label events) supervised while they wait for the plane to catch up with the run's audited
decisions, then judge it from its append-only tables.
"""

import time

from dagster import AssetExecutionContext, MaterializeResult, asset

from fp_platform.case_labels import summary
from fp_platform.case_labels.policy import load_case_policy
from fp_platform.checks import gate_check_results, gate_specs
from fp_platform.contracts.gates import GateResult
from fp_platform.contracts.phases import P10, phase
from fp_platform.operate import supervisor
from fp_platform.operate.packs import pack
from fp_platform.resources import PlatformResource, platform_run_partitions


def _wait_plane(context: AssetExecutionContext, platform: PlatformResource, conn) -> GateResult:
    """Supervise case_labels (and rtdl_core for OFP) until the plane has caught up with the run's audited
    decisions, or the timeout; the `caught_up` gate (with the seconds waited)."""
    h, run_id = platform.handles, context.partition_key
    packs = (pack(h, h.get("PACK_ID_CASE_LABELS")), pack(h, h.get("PACK_ID_RTDL_CORE")))
    policy = load_case_policy(h)
    ok, waited = supervisor.wait_until(lambda: summary.caught_up(summary.progress(h, policy, conn, run_id)),
                                       float(h.get("CASE_LABELS_TIMEOUT_SECONDS")),
                                       lambda: supervisor.reconcile(h, conn, run_id, packs, log=context.log.info),
                                       context.log.info)
    time.sleep(float(h.get("WORKER_HEARTBEAT_INTERVAL_SECONDS")) + 0.5)  # a heartbeat after the last batch
    _, where = summary.caught_up(summary.progress(h, policy, conn, run_id))
    return GateResult("caught_up", ok, f"{where} after {waited}s", {"waited_s": waited})


CAUGHT_UP = "the plane took in every audited chain of the run: triggers and planned investigations match the policy, " \
            "the simulation's clock reached the last decision, nothing due is undone, every label event reached OFP"


@asset(group_name=phase(P10).group, partitions_def=platform_run_partitions, deps=["audit_summary"],
       kinds={"kafka", "postgres"},
       check_specs=gate_specs("case_summary", {
           "caught_up": CAUGHT_UP,
           "triggers_match_policy": "one case trigger per decision the policy names (REVIEW, DECLINE, the APPROVE "
                                    "sample) among the run's audited chains, none for anything else",
           "timelines_appended": "every trigger opened exactly one case with its evidence attached by reference "
                                 "(resolving to audit chains and IG receipts); work due by the world clock is done",
           "duplicates_no_double_append": "re-delivered triggers were recorded as duplicates and appended nothing; "
                                          "no conflicting trigger",
           "append_only": "the database refuses UPDATE/DELETE on every case/labels truth table",
           "case_workers_green": "CaseTrigger and CM run for this run with fresh GREEN heartbeats"}),
       description="P10: cases opened for the run's decisions, their timelines appended (append-only, idempotent).")
def case_summary(context: AssetExecutionContext, platform: PlatformResource):
    h, run_id = platform.handles, context.partition_key
    with platform.connect() as conn:
        conn.autocommit = True
        caught = _wait_plane(context, platform, conn)
        doc = summary.case_summary(load_case_policy(h), conn, run_id)
        cases = summary.case_slice(conn, run_id)
        sick = supervisor.unhealthy(h, conn, "PACK_ID_CASE_LABELS", "COMPONENT_ID_CASE_TRIGGER", "COMPONENT_ID_CM")
    writer = platform.evidence(run_id)
    slice_name = h.pattern("CASE_LABELS_SLICE_PATH_PATTERN", slice_id="cases")
    writer.write_summary(slice_name, {"cases": cases, "bounded_to": len(cases)}, phase_id=P10)
    writer.write_summary(h.get("CASE_EVIDENCE_PATH_PATTERN"),
                         {**doc, **caught.metadata, "caught_up": caught.detail, "slices": [slice_name]}, phase_id=P10)
    deliveries = doc["trigger_deliveries"]
    due = doc["investigations"].get("DUE", 0)
    mutable = [t for t, ok in doc["append_only_tables"].items() if not ok]
    gates = [
        caught,
        GateResult("triggers_match_policy", doc["chains"] > 0 and doc["triggers"] == doc["triggers_expected"]
                   and doc["triggers_by_reason"] == doc["triggers_expected_by_reason"],
                   f"{doc['triggers']} triggers for {doc['triggers_expected']} expected over {doc['chains']} chains",
                   {"by_reason": doc["triggers_by_reason"]}),
        GateResult("timelines_appended", doc["cases"] == doc["triggers"] and doc["triggers_without_case"] == 0
                   and doc["cases_with_incomplete_evidence"] == 0 and doc["evidence_refs_unresolved"] == 0
                   and due == 0,
                   f"{doc['cases']} cases for {doc['triggers']} triggers, {doc['timeline_events']} timeline events;"
                   f" {doc['cases_with_incomplete_evidence']} with incomplete evidence,"
                   f" {doc['evidence_refs_unresolved']} unresolved refs; {due} investigations due but not done",
                   {"cases_by_status": doc["cases_by_status"]}),
        GateResult("duplicates_no_double_append", doc["cases_opened_twice"] == 0
                   and deliveries.get("NEW", 0) == doc["cases"] and deliveries.get("CONFLICT", 0) == 0,
                   f"deliveries {deliveries}; {doc['cases_opened_twice']} cases opened twice"),
        GateResult("append_only", not mutable, f"no append-only trigger on {mutable}" if mutable
                   else f"{len(doc['append_only_tables'])} tables refuse UPDATE/DELETE"),
        GateResult("case_workers_green", not sick, "; ".join(sick) or "CaseTrigger and CM GREEN"),
    ]
    return MaterializeResult(metadata={"cases": doc["cases"], "triggers": doc["triggers"],
                                       "by_reason": doc["triggers_by_reason"]},
                             check_results=gate_check_results(writer, P10, "case_summary", gates))


@asset(group_name=phase(P10).group, partitions_def=platform_run_partitions, deps=[case_summary],
       kinds={"kafka", "postgres"},
       check_specs=gate_specs("label_summary", {
           "caught_up": CAUGHT_UP,
           "assertions_appended": "every investigation and chargeback the world clock reached is one label "
                                  "assertion in LS (append-only, idempotent)",
           "writer_boundary_held": "only granted writers' assertions exist, the plane's own writers were never "
                                   "refused; refused writes are recorded as governance anomalies",
           "labels_published": "every assertion went out on the labels topic and OFP took it in",
           "ls_green": "LS and the label simulation run for this run with fresh GREEN heartbeats"}),
       description="P10: label assertions appended through LS's writer boundary and published.")
def label_summary(context: AssetExecutionContext, platform: PlatformResource):
    h, run_id = platform.handles, context.partition_key
    with platform.connect() as conn:
        conn.autocommit = True
        caught = _wait_plane(context, platform, conn)
        doc = summary.label_summary(h, conn, run_id)
        labels = summary.label_slice(conn, run_id)
        sick = supervisor.unhealthy(h, conn, "PACK_ID_CASE_LABELS", "COMPONENT_ID_LS", "COMPONENT_ID_LABEL_SIMULATION")
    writer = platform.evidence(run_id)
    slice_name = h.pattern("CASE_LABELS_SLICE_PATH_PATTERN", slice_id="labels")
    writer.write_summary(slice_name, {"assertions": labels, "bounded_to": len(labels)}, phase_id=P10)
    writer.write_summary(h.get("LABEL_EVIDENCE_PATH_PATTERN"),
                         {**doc, **caught.metadata, "caught_up": caught.detail, "slices": [slice_name]}, phase_id=P10)
    due = sum(n for k, n in doc["simulated_work"].items() if k.endswith(":DUE"))
    beyond = sum(n for k, n in doc["simulated_work"].items() if k.endswith(":BEYOND_WORLD_CLOCK"))
    refused = sum(n for k, n in doc["simulated_work"].items() if k.endswith(":REFUSED"))
    own = f", {refused} of them the plane's own work (its grants are out of step with its writers)" if refused else ""
    gates = [
        caught,
        GateResult("assertions_appended", doc["assertions"] == doc["assertions_expected"]
                   and doc["same_source_repeats"] == 0 and not due,
                   f"{doc['assertions']} assertions for {doc['assertions_expected']} done work items, {due} due"
                   f" but not done, {beyond} planned beyond the world clock {doc['world_clock']};"
                   f" {doc['same_source_repeats']} subjects asserted twice by one source",
                   {"by_source_label": doc["by_source_label"]}),
        GateResult("writer_boundary_held", doc["ungranted_assertions"] == 0 and refused == 0,
                   f"{doc['ungranted_assertions']} assertions from ungranted writers; {doc['refused_writes']} writes"
                   f" refused and recorded{own}", {"refused_writes": doc["refused_writes"]}),
        GateResult("labels_published", doc["label_events_unsent"] == 0 and doc["ofp_labels"] >= doc["assertions"],
                   f"{doc['label_events_unsent']} label events unsent; OFP holds {doc['ofp_labels']} of"
                   f" {doc['assertions']}"),
        GateResult("ls_green", not sick, "; ".join(sick) or "LS and the label simulation GREEN"),
    ]
    return MaterializeResult(metadata={"assertions": doc["assertions"], "refused_writes": doc["refused_writes"],
                                       "by_source_label": doc["by_source_label"]},
                             check_results=gate_check_results(writer, P10, "label_summary", gates))

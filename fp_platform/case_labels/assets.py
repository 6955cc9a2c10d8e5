"""Case and labels assets: P10 CASE_LABELS_COMMITTED (`case_summary`, `label_summary`).

The case_labels pack runs as supervised daemons from P2; these assets keep it (and OFP, which takes in
the label events) supervised while they wait for the plane to catch up with the run's audited
decisions, then judge it from its append-only tables.
"""

import time

from dagster import AssetExecutionContext

from fp_platform.case_labels import gates, summary
from fp_platform.case_labels.policy import load_case_policy
from fp_platform.checks import judged, phase_asset
from fp_platform.contracts.phases import P10
from fp_platform.operate import supervisor
from fp_platform.operate.packs import pack
from fp_platform.resources import PlatformResource


def _wait_plane(context: AssetExecutionContext, platform: PlatformResource, conn) -> dict:
    """Supervise case_labels (and rtdl_core for OFP) until the plane has caught up with the run's audited
    decisions, or the timeout: whether it did, where it stands and the seconds waited."""
    h, run_id = platform.handles, context.partition_key
    packs = (pack(h, h.get("PACK_ID_CASE_LABELS")), pack(h, h.get("PACK_ID_RTDL_CORE")))
    policy = load_case_policy(h)
    ok, waited = supervisor.wait_until(lambda: summary.caught_up(summary.progress(h, policy, conn, run_id)),
                                       float(h.get("CASE_LABELS_TIMEOUT_SECONDS")),
                                       lambda: supervisor.reconcile(h, conn, run_id, packs, log=context.log.info),
                                       context.log.info)
    time.sleep(float(h.get("WORKER_HEARTBEAT_INTERVAL_SECONDS")) + 0.5)  # a heartbeat after the last batch
    _, where = summary.caught_up(summary.progress(h, policy, conn, run_id))
    return {"plane_caught_up": ok, "caught_up": f"{where}", "waited_s": waited}


@phase_asset(P10, gates.CASE_SUMMARY, deps=["audit_summary"], kinds={"kafka", "postgres"},
             description="P10: cases opened for the run's decisions, their timelines appended (append-only, "
                         "idempotent).")
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
    writer.write_summary(h.get("CASE_EVIDENCE_PATH_PATTERN"), {**doc, **_caught_evidence(caught),
                                                                "slices": [slice_name]}, phase_id=P10)
    return judged(context, writer, P10, gates.CASE_SUMMARY, {**doc, **caught, "unhealthy": sick},
                  {"cases": doc["cases"], "triggers": doc["triggers"], "by_reason": doc["triggers_by_reason"]})


@phase_asset(P10, gates.LABEL_SUMMARY, deps=[case_summary], kinds={"kafka", "postgres"},
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
    writer.write_summary(h.get("LABEL_EVIDENCE_PATH_PATTERN"), {**doc, **_caught_evidence(caught),
                                                                 "slices": [slice_name]}, phase_id=P10)
    return judged(context, writer, P10, gates.LABEL_SUMMARY, {**doc, **caught, "unhealthy": sick},
                  {"assertions": doc["assertions"], "refused_writes": doc["refused_writes"],
                   "by_source_label": doc["by_source_label"]})


def _caught_evidence(caught: dict) -> dict:
    """The wait as the evidence has always recorded it: the seconds waited and the caught_up gate's detail."""
    return {"waited_s": caught["waited_s"], "caught_up": f"{caught['caught_up']} after {caught['waited_s']}s"}

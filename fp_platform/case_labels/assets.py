"""Case and labels assets: P10 CASE_LABELS_COMMITTED (`case_summary`, `label_summary`).

The case_labels pack runs as supervised daemons from P2; these assets keep it (and OFP, which takes in
the label events) supervised while they wait for the plane to catch up with the run's audited
decisions, then judge it from its append-only tables.
"""

from collections.abc import Callable

import psycopg
from dagster import AssetExecutionContext

from fp_platform.case_labels import gates, summary
from fp_platform.case_labels.policy import load_case_policy
from fp_platform.case_labels.settings import CaseLabelsSettings
from fp_platform.checks import phase_asset, summary_verdict
from fp_platform.contracts.phases import P10
from fp_platform.operate import supervisor
from fp_platform.operate.packs import pack
from fp_platform.resources import PlatformResource


def _plane_facts(
    context: AssetExecutionContext,
    platform: PlatformResource,
    components: tuple[str, ...],
    summarise: Callable[[psycopg.Connection], dict],
) -> dict:
    """Supervise case_labels (and rtdl_core for OFP) until the plane has caught up with the run's audited
    decisions, or the timeout; the plane's summary (`summarise`) with whether it caught up, where it stands,
    the seconds waited and the named workers that are not GREEN for the run (`unhealthy`)."""
    h, run_id = platform.handles, context.partition_key
    packs = (pack(h, h.get("PACK_ID_CASE_LABELS")), pack(h, h.get("PACK_ID_RTDL_CORE")))
    policy = load_case_policy(h)
    with platform.connect() as conn:
        conn.autocommit = True
        ok, waited = supervisor.supervise_until(
            h,
            conn,
            run_id,
            packs,
            lambda: summary.caught_up(summary.progress(h, policy, conn, run_id)),
            CaseLabelsSettings.load(h).timeout_seconds,
            context.log.info,
        )
        _, where = summary.caught_up(summary.progress(h, policy, conn, run_id))
        return {
            **summarise(conn),
            "plane_caught_up": ok,
            "caught_up": where,
            "waited_s": waited,
            "unhealthy": supervisor.unhealthy(h, conn, "PACK_ID_CASE_LABELS", *components),
        }


def _verdict(platform: PlatformResource, run_id: str, facts: dict, slice_id: str, path_key: str, shown: tuple):
    """The plane's verdict: its slice and its evidence file (the wait as the evidence has always recorded it: the
    seconds waited and the caught_up gate's detail)."""
    h = platform.handles
    sliced = facts.pop("slice")
    slice_name = h.pattern("CASE_LABELS_SLICE_PATH_PATTERN", slice_id=slice_id)
    return summary_verdict(
        platform.evidence(run_id),
        facts,
        h.get(path_key),
        shown,
        hidden=("plane_caught_up", "unhealthy"),
        overrides={"caught_up": f"{facts['caught_up']} after {facts['waited_s']}s"},
        slices={slice_name: {**sliced, "bounded_to": len(next(iter(sliced.values())))}},
    )


@phase_asset(P10, gates.CASE_SUMMARY, deps=["audit_summary"], kinds={"kafka", "postgres"})
def case_summary(context: AssetExecutionContext, platform: PlatformResource):
    """P10: cases opened for the run's decisions, their timelines appended (append-only, idempotent)."""
    h, run_id = platform.handles, context.partition_key
    facts = _plane_facts(
        context,
        platform,
        ("COMPONENT_ID_CASE_TRIGGER", "COMPONENT_ID_CM"),
        lambda conn: {
            **summary.case_summary(load_case_policy(h), conn, run_id),
            "slice": {"cases": summary.case_slice(conn, run_id)},
        },
    )
    shown = ("cases", "triggers", "triggers_by_reason")
    return _verdict(platform, run_id, facts, "cases", "CASE_EVIDENCE_PATH_PATTERN", shown)


@phase_asset(P10, gates.LABEL_SUMMARY, deps=[case_summary], kinds={"kafka", "postgres"})
def label_summary(context: AssetExecutionContext, platform: PlatformResource):
    """P10: label assertions appended through LS's writer boundary and published."""
    run_id = context.partition_key
    facts = _plane_facts(
        context,
        platform,
        ("COMPONENT_ID_LS", "COMPONENT_ID_LABEL_SIMULATION"),
        lambda conn: {
            **summary.label_summary(platform.handles, conn, run_id),
            "slice": {"assertions": summary.label_slice(conn, run_id)},
        },
    )
    shown = ("assertions", "refused_writes", "by_source_label")
    return _verdict(platform, run_id, facts, "labels", "LABEL_EVIDENCE_PATH_PATTERN", shown)

"""Case and labels assets: P10 CASE_LABELS_COMMITTED (`case_summary`, `label_summary`).

The case_labels pack runs as supervised daemons from P2; these assets keep it (and OFP, which takes in
the label events) supervised while they wait for the plane to catch up with the run's audited
decisions, then judge it from its append-only tables.
"""

from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from dagster import AssetExecutionContext

from fp_platform.case_labels import gates, summary
from fp_platform.case_labels.policy import load_case_policy
from fp_platform.case_labels.settings import CaseLabelsSettings
from fp_platform.checks import Verdict, phase_asset, summary_verdict
from fp_platform.contracts.phases import P10
from fp_platform.handles import Handles
from fp_platform.operate import supervisor
from fp_platform.operate.packs import pack
from fp_platform.resources import PlatformResource


@dataclass(frozen=True)
class _Summary:
    """What one P10 asset records: `components` name the plane's workers judged GREEN; `summarise` gives its facts
    and `bounded_slice` its bounded slice (`slice_id`, the rows under `slice_key`), written to the evidence file
    `evidence` (a path handle key) with the `shown` facts as the asset's metadata."""

    components: tuple[str, ...]
    summarise: Callable[[Handles, psycopg.Connection, str], dict]
    bounded_slice: Callable[[psycopg.Connection, str], list]
    slice_id: str
    slice_key: str
    evidence: str
    shown: tuple[str, ...]


def _plane_facts(context: AssetExecutionContext, platform: PlatformResource, plane: _Summary) -> dict:
    """Supervise case_labels (and rtdl_core for OFP) until the plane has caught up with the run's audited
    decisions, or the timeout; the plane's summary with whether it caught up, where it stands, the seconds
    waited, the named workers that are not GREEN for the run (`unhealthy`) and its bounded slice (`slice`)."""
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
            **plane.summarise(h, conn, run_id),
            "slice": {plane.slice_key: plane.bounded_slice(conn, run_id)},
            "plane_caught_up": ok,
            "caught_up": where,
            "waited_s": waited,
            "unhealthy": supervisor.unhealthy(h, conn, "PACK_ID_CASE_LABELS", *plane.components),
        }


def _verdict(context: AssetExecutionContext, platform: PlatformResource, plane: _Summary) -> Verdict:
    """The body both P10 assets share: wait for the plane, then its verdict with its slice and its evidence file
    (the wait as the evidence has always recorded it: the seconds waited and the caught_up gate's detail)."""
    h, run_id = platform.handles, context.partition_key
    facts = _plane_facts(context, platform, plane)
    sliced = facts.pop("slice")
    slice_name = h.pattern("CASE_LABELS_SLICE_PATH_PATTERN", slice_id=plane.slice_id)
    return summary_verdict(
        platform.evidence(run_id),
        facts,
        h.get(plane.evidence),
        plane.shown,
        hidden=("plane_caught_up", "unhealthy"),
        overrides={"caught_up": f"{facts['caught_up']} after {facts['waited_s']}s"},
        slices={slice_name: {**sliced, "bounded_to": len(sliced[plane.slice_key])}},
    )


_CASES = _Summary(
    ("COMPONENT_ID_CASE_TRIGGER", "COMPONENT_ID_CM"),
    lambda h, conn, run_id: summary.case_summary(load_case_policy(h), conn, run_id),
    summary.case_slice,
    "cases",
    "cases",
    "CASE_EVIDENCE_PATH_PATTERN",
    ("cases", "triggers", "triggers_by_reason"),
)
_LABELS = _Summary(
    ("COMPONENT_ID_LS", "COMPONENT_ID_LABEL_SIMULATION"),
    summary.label_summary,
    summary.label_slice,
    "labels",
    "assertions",
    "LABEL_EVIDENCE_PATH_PATTERN",
    ("assertions", "refused_writes", "by_source_label"),
)


@phase_asset(P10, gates.CASE_SUMMARY, deps=["audit_summary"], kinds={"kafka", "postgres"})
def case_summary(context: AssetExecutionContext, platform: PlatformResource):
    """P10: cases opened for the run's decisions, their timelines appended (append-only, idempotent)."""
    return _verdict(context, platform, _CASES)


@phase_asset(P10, gates.LABEL_SUMMARY, deps=[case_summary], kinds={"kafka", "postgres"})
def label_summary(context: AssetExecutionContext, platform: PlatformResource):
    """P10: label assertions appended through LS's writer boundary and published."""
    return _verdict(context, platform, _LABELS)

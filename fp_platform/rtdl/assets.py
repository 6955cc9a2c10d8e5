"""RTDL assets: P8 RTDL_CAUGHT_UP (`rtdl_caught_up`) and P9 DECISION_CHAIN_COMMITTED (`decision_summary`,
`action_summary`, `audit_summary`).

The rtdl_core workers run as supervised daemons from P2; this asset keeps them supervised while it
waits for them to consume everything IG admitted for the run, then proves it from Postgres (the
offsets written with the state), Kafka (commits never ahead of the DB) and S3 (archive closure).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from dagster import AssetExecutionContext

from fp_platform.checks import Verdict, phase_asset, summary_verdict
from fp_platform.contracts.evidence import EvidenceError
from fp_platform.contracts.phases import P8, P9
from fp_platform.operate import supervisor
from fp_platform.operate.packs import pack
from fp_platform.resources import PlatformResource
from fp_platform.rtdl import caught_up, decision_lane, gates
from fp_platform.rtdl.settings import RtdlSettings
from fp_platform.substrate.settings import WorkerSettings


@phase_asset(
    P8,
    gates.RTDL_CAUGHT_UP,
    deps=["daemons_ready", "ingest_receipt_summary", "kafka_offsets_snapshot", "quarantine_summary"],
    kinds={"kafka", "postgres", "s3"},
)
def rtdl_caught_up(context: AssetExecutionContext, platform: PlatformResource):
    """P8: the RTDL core workers have durably consumed the run's admitted topics."""
    h, run_id, store = platform.handles, context.partition_key, platform.store
    lag_max = RtdlSettings.load(h).caught_up_lag_max
    core = (pack(h, h.get("PACK_ID_RTDL_CORE")),)
    started = time.monotonic()
    deadline = started + RtdlSettings.load(h).caught_up_timeout_seconds
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
                context.log.info(
                    "waiting for RTDL: " + ", ".join(f"{c} lag {w['max_lag']}" for c, w in report["workers"].items())
                )
            time.sleep(1.0)
        time.sleep(WorkerSettings.load(h).heartbeat_interval_seconds)  # a heartbeat after the last batch
        statuses = supervisor.status(h, conn, core)
        committed = caught_up.kafka_committed(h, report)
        closure = caught_up.archive_closure(h, conn, store, run_id, ranges)
        degrades = caught_up.degrade_counts(conn, run_id)
        traffic_topic = h.topic("FP_BUS_TRAFFIC_FRAUD_V1").name
        coverage = caught_up.derived_coverage(
            conn, run_id, sum(n for (t, _), (_, _, n) in ranges.items() if t == traffic_topic)
        )
    waited = round(time.monotonic() - started, 1)
    writer = platform.evidence(run_id)
    evidence = {
        h.get("OFFSETS_SNAPSHOT_PATH_PATTERN"): {
            **report,
            "kafka_committed": committed,
            "offset_kind": "kafka_offset",
            "commit_policy": h.get("RTDL_CORE_OFFSET_COMMIT_POLICY"),
        },
        h.get("RTDL_CAUGHT_UP_PATH_PATTERN"): {
            "max_lag": report["max_lag"],
            "lag_max_allowed": lag_max,
            "waited_s": waited,
            "partitions_covered": report["partitions_covered"],
            "lag_by_worker": {c: w["max_lag"] for c, w in report["workers"].items()},
            "degrade_counts": degrades,
            "derived_coverage": coverage,
            "workers": [s.to_dict() for s in statuses],
        },
        h.get("ARCHIVE_WRITE_SUMMARY_PATH_PATTERN"): {k: v for k, v in closure.items() if k != "segments"},
    }
    stale = WorkerSettings.load(h).heartbeat_stale_seconds
    doc = {
        "report": report,
        "lag_max_allowed": lag_max,
        "waited_s": waited,
        "admitted_partitions": len(ranges),
        "kafka_ahead_of_db": committed["kafka_ahead_of_db"],
        "closure": closure,
        "closure_problem": _close_archive(writer, h, closure),
        "coverage": coverage,
        "degrades": degrades,
        "workers": len(statuses),
        "unhealthy": [
            f"{s.component}: {s.state} {s.health_state} beat {s.heartbeat_age_s}s"
            for s in statuses
            if not (
                s.up
                and s.platform_run_id == run_id
                and s.health_state == "GREEN"
                and s.heartbeat_age_s is not None
                and s.heartbeat_age_s <= stale
            )
        ],
    }
    metadata = {"max_lag": report["max_lag"], "waited_s": waited, "archive_records": closure["records"]}
    return Verdict(writer, doc, metadata, evidence)


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


@dataclass(frozen=True)
class _Lane:
    """What one P9 asset waits for and records: the lane has caught up when the run's `have` count reaches its
    `want` count (names of `decision_lane.counts`); `components` name the workers judged GREEN; `summarise` gives
    the lane's facts, written to the evidence file `evidence` (a path handle key) with the `shown` ones as the
    asset's metadata."""

    have: str
    want: str
    components: tuple[str, ...]
    summarise: Callable[[PlatformResource, psycopg.Connection, str], dict]
    evidence: str
    shown: tuple[str, ...]
    bounded_slice: Callable[[psycopg.Connection, str], list] | None = None  # the audit's bounded slice


def _lane_facts(context: AssetExecutionContext, platform: PlatformResource, lane: _Lane) -> dict:
    """Supervise the decision lane pack until `lane` has caught up, then a heartbeat after the last batch; the
    lane's summary with the seconds waited, the named workers that are not GREEN for the run (`unhealthy`) and
    its bounded slice (`slice`) where it has one."""
    h, run_id = platform.handles, context.partition_key
    pack_lane = (pack(h, h.get("PACK_ID_RTDL_DECISION_LANE")),)
    with platform.connect() as conn:
        conn.autocommit = True

        def done() -> tuple[bool, str]:
            c = decision_lane.counts(conn, run_id)
            return c[lane.have] >= c[lane.want] > 0, f"{c[lane.have]}/{c[lane.want]} {lane.have}"

        timeout_s = RtdlSettings.load(h).decision_lane_timeout_seconds
        _, waited = supervisor.supervise_until(h, conn, run_id, pack_lane, done, timeout_s, context.log.info)
        return {
            **lane.summarise(platform, conn, run_id),
            "waited_s": waited,
            "unhealthy": supervisor.unhealthy(h, conn, "PACK_ID_RTDL_DECISION_LANE", *lane.components),
            **({"slice": lane.bounded_slice(conn, run_id)} if lane.bounded_slice else {}),
        }


def _lane_verdict(context: AssetExecutionContext, platform: PlatformResource, lane: _Lane) -> Verdict:
    """The body every P9 asset shares: wait for the lane, then its summary judged and written."""
    h, run_id = platform.handles, context.partition_key
    facts = _lane_facts(context, platform, lane)
    slices = None
    if lane.bounded_slice:
        chains = facts.pop("slice")
        slice_name = h.pattern("AUDIT_SLICE_PATH_PATTERN", slice_id="first_and_degraded")
        slices = {slice_name: {"chains": chains, "bounded_to": len(chains)}}
    return summary_verdict(platform.evidence(run_id), facts, h.get(lane.evidence), lane.shown, slices=slices)


_DECISIONS = _Lane(
    "decisions",
    "admitted_traffic",
    ("COMPONENT_ID_DF", "COMPONENT_ID_DL"),
    lambda platform, conn, run_id: decision_lane.decision_summary(conn, run_id),
    "DECISION_SUMMARY_PATH_PATTERN",
    ("decisions", "degraded", "by_decision"),
)
_ACTIONS = _Lane(
    "outcomes",
    "decisions",
    ("COMPONENT_ID_AL",),
    lambda platform, conn, run_id: decision_lane.action_summary(conn, run_id),
    "ACTION_SUMMARY_PATH_PATTERN",
    ("outcomes", "duplicates_prevented"),
)
_AUDIT = _Lane(
    "chains",
    "decisions",
    ("COMPONENT_ID_DLA",),
    lambda platform, conn, run_id: decision_lane.audit_summary(platform.handles, conn, platform.store, run_id),
    "DLA_EVIDENCE_PATH_PATTERN",
    ("chains", "lineage_unresolved_total"),
    bounded_slice=decision_lane.audit_slice,
)


@phase_asset(P9, gates.DECISION_SUMMARY, deps=[rtdl_caught_up], kinds={"kafka", "postgres"})
def decision_summary(context: AssetExecutionContext, platform: PlatformResource):
    """P9: DF decided every admitted traffic event (rules + model, explicit degrade)."""
    return _lane_verdict(context, platform, _DECISIONS)


@phase_asset(P9, gates.ACTION_SUMMARY, deps=[decision_summary], kinds={"kafka", "postgres"})
def action_summary(context: AssetExecutionContext, platform: PlatformResource):
    """P9: AL executed each intent once (idempotent on action_id) and recorded its outcome."""
    return _lane_verdict(context, platform, _ACTIONS)


@phase_asset(P9, gates.AUDIT_SUMMARY, deps=[action_summary], kinds={"kafka", "postgres", "s3"})
def audit_summary(context: AssetExecutionContext, platform: PlatformResource):
    """P9: DLA's append-only audit: one closed chain per decision, lineage to the IG receipt."""
    return _lane_verdict(context, platform, _AUDIT)

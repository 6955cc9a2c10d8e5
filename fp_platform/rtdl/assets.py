"""RTDL core assets: P8 RTDL_CAUGHT_UP (`rtdl_caught_up`).

The rtdl_core workers run as supervised daemons from P2; this asset keeps them supervised while it
waits for them to consume everything IG admitted for the run, then proves it from Postgres (the
offsets written with the state), Kafka (commits never ahead of the DB) and S3 (archive closure).
"""

import time

from dagster import AssetExecutionContext, MaterializeResult, asset

from fp_platform.checks import gate_check_results, gate_specs
from fp_platform.contracts.evidence import EvidenceError
from fp_platform.contracts.gates import GateResult
from fp_platform.contracts.phases import phase
from fp_platform.operate import supervisor
from fp_platform.operate.packs import pack
from fp_platform.resources import PlatformResource, platform_run_partitions
from fp_platform.rtdl import caught_up

P8 = caught_up.PHASE_ID


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

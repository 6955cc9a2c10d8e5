"""Control & ingress assets: P4 INGEST_READY, P5 READY_PUBLISHED, P6 STREAMING_ACTIVE, P7 INGEST_COMMITTED.

IG is a daemon of the control_ingress pack, started (or reused) through the supervisor's code path;
SR and WSP are one-shot jobs launched through Dagster Pipes; P4 and P7 checks run in-process.
"""

from typing import Optional

import orjson
from dagster import AssetExecutionContext, Config, MaterializeResult, PipesSubprocessClient, asset
from psycopg_pool import ConnectionPool

from fp_platform.checks import fail_phase, gate_check_results, gate_specs, launch_job
from fp_platform.contracts.drills import DEFAULT_DRILLS, check_drills, wsp_shares
from fp_platform.contracts.envelope import OUTPUT_EVENT_CLASSES, topic_key_for
from fp_platform.contracts.evidence import EvidenceError
from fp_platform.contracts.gates import GateResult
from fp_platform.contracts.phases import P4, P5, P6, P7, phase
from fp_platform.control import ingest_commit, ingest_ready, wsp
from fp_platform.control.ig import receipt_segments
from fp_platform.control.ig.admission import AMBIGUOUS, ANOMALY, QUARANTINE
from fp_platform.operate import daemons, packs
from fp_platform.operate.drills import process_drills
from fp_platform.resources import PlatformResource, platform_run_partitions
from fp_platform.substrate import bus, db


def _launch(context: AssetExecutionContext, pipes: PipesSubprocessClient, platform: PlatformResource,
            phase_id: str, job: str, *extra: str) -> dict:
    return launch_job(context, pipes, platform.profile, platform.evidence(context.partition_key), phase_id,
                      "fp_platform.control.jobs", job, *extra)


@asset(group_name=phase(P4).group, partitions_def=platform_run_partitions, deps=["oracle_checker"],
       kinds={"python", "kafka"},
       check_specs=gate_specs("ig_ready", {
           "ig_healthy": "IG daemon running for this run, health GREEN",
           "writer_boundary": "unauthenticated requests get 401; the API key is accepted",
           "kafka_writable": "a smoke event is admitted, its offset advanced and it reads back",
           "s3_writable": "IG wrote its receipt segment to S3"}),
       description="P4: the Ingestion Gate daemon is up for this run and proven at its HTTP boundary.")
def ig_ready(context: AssetExecutionContext, platform: PlatformResource):
    h, run_id = platform.handles, context.partition_key
    writer = platform.evidence(run_id)
    try:
        record, started = daemons.ensure(h, packs.spec_for(h, "COMPONENT_ID_IG"), run_id, log=context.log.info)
    except daemons.DaemonError as exc:
        raise fail_phase(writer, P4, "ig_ready", "ig_healthy", str(exc)) from None
    consumer = bus.scan_consumer(h)
    try:
        doc = ingest_ready.probe(h, platform.store, consumer, run_id)
    finally:
        consumer.close()
    doc["daemon"] = {"pid": record.pid, "started_now": started, "log": record.log,
                     "platform_run_id": record.platform_run_id}
    writer.write_summary(h.get("IG_READY_PATH_PATTERN"), doc, phase_id=P4)
    health, auth, smoke = doc["health"], doc["auth"], doc["publish_smoke"]
    gates = [
        GateResult("ig_healthy", health["state"] == "GREEN" and health["required_platform_run_id"] == run_id,
                   f"state {health['state']} for {health['required_platform_run_id']} {health['reasons'] or ''}"),
        GateResult("writer_boundary", auth["unauthenticated_health_status"] == 401
                   and auth["unauthenticated_push_status"] == 401 and auth["authenticated_health_status"] == 200,
                   f"unauthenticated health {auth['unauthenticated_health_status']}, push "
                   f"{auth['unauthenticated_push_status']}; authenticated {auth['authenticated_health_status']}"),
        GateResult("kafka_writable", smoke["ok"], str(smoke.get("eb_ref") or smoke.get("detail"))),
        GateResult("s3_writable", doc["s3_smoke"]["ok"], str(doc["s3_smoke"]["receipt_segment"])),
    ]
    return MaterializeResult(metadata={"ig_pid": record.pid, "started_now": started},
                             check_results=gate_check_results(writer, P4, "ig_ready", gates))


@asset(group_name=phase(P5).group, partitions_def=platform_run_partitions, deps=[ig_ready],
       kinds={"python", "kafka"},
       check_specs=gate_specs("ready_published", {
           "sr_gates_passed": "sealed pack, checker PASS and stream-view receipts (no PASS, no read)",
           "lease_respected": "the equivalence-key lease was taken without conflict",
           "ready_on_topic": "READY for this run and scenario is on the control topic at the receipted offset",
           "single_ready": "exactly one READY for this run on the control topic"}),
       description="P5: Scenario Runner gates the oracle facts and publishes READY once.")
def ready_published(context: AssetExecutionContext, platform: PlatformResource, pipes: PipesSubprocessClient):
    h, run_id = platform.handles, context.partition_key
    doc = _launch(context, pipes, platform, P5, "sr")
    writer = platform.evidence(run_id)
    gates_detail = "; ".join(f"{k}: {v['detail']}" for k, v in doc["gates"].items())
    lease = doc.get("lease") or {}
    ready = doc.get("ready") or {}
    consumer = bus.scan_consumer(h)
    try:
        on_topic = wsp.find_ready(h, consumer, run_id, context.log.info)
    except wsp.WspStopped:
        on_topic = None
    finally:
        consumer.close()
    at = None
    if on_topic and on_topic["envelope"]["pins"].get("scenario_run_id") == doc["scenario_run_id"]:
        at = (on_topic["partition"], on_topic["offset"])
    gates = [
        GateResult("sr_gates_passed", all(g["passed"] for g in doc["gates"].values()), gates_detail),
        GateResult("lease_respected", "conflict" not in lease and bool(lease), lease.get("conflict") or lease.get("key",
                                                                                                        "no lease")),
        GateResult("ready_on_topic", at is not None and at == (ready.get("partition"), ready.get("offset")),
                   f"receipt {ready.get('partition')}@{ready.get('offset')}, topic has {at}"),
        GateResult("single_ready", on_topic is not None and not on_topic["skipped"].get("duplicate"),
                   f"duplicates: {on_topic['skipped'].get('duplicate', 0) if on_topic else 'no READY'}"),
    ]
    return MaterializeResult(metadata={"scenario_run_id": doc["scenario_run_id"], "verdict": doc["verdict"]},
                             check_results=gate_check_results(writer, P5, "ready_published", gates))


class WspConfig(Config):
    """Bounded runs and drills for the stream (defaults: the whole stream view; the duplicates and missing
    context drills, as the spec asks of every demo run). `drills` names drills of the catalogue
    (`contracts/drills.py`); the `drill_*` shares override a stream drill's share."""

    max_events_per_output: Optional[int] = None  # noqa: UP045 - Dagster Config needs typing.Optional
    speedup: Optional[float] = None  # noqa: UP045
    drills: list[str] = list(DEFAULT_DRILLS)
    drill_duplicates: float = 0.0
    drill_mismatch: float = 0.0
    drill_drop_context: float = 0.0


@asset(group_name=phase(P6).group, partitions_def=platform_run_partitions, deps=[ready_published],
       kinds={"python"},
       check_specs=gate_specs("wsp_stream", {
           "ready_consumed": "WSP found READY for this run",
           "stream_view_only": "every source is a stream-view shard of this run",
           "streaming_completed": "the stream ran to its end",
           "nonretryable_zero": "no non-retryable failure",
           "drills_injected": "every drill the run carries injected its fault (stream drills: events selected;"
                              " process drills: the worker paused or killed)"}),
       description="P6: World Stream Producer streams the run's stream view to IG, with the run's drills.")
def wsp_stream(context: AssetExecutionContext, config: WspConfig, platform: PlatformResource,
               pipes: PipesSubprocessClient):
    h, run_id = platform.handles, context.partition_key
    writer = platform.evidence(run_id)
    try:
        drill_ids = check_drills(config.drills)
    except ValueError as exc:
        raise fail_phase(writer, P6, "wsp_stream", "drills_injected", str(exc)) from None
    options = {**config.model_dump(exclude={"drills"}), **{k: max(v, getattr(config, k))
                                                          for k, v in wsp_shares(drill_ids).items()}}
    extra = [f"--{k.replace('_', '-')}={v}" for k, v in options.items() if v]
    with process_drills(h, run_id, drill_ids, context.log.info) as acted:
        doc = _launch(context, pipes, platform, P6, "wsp", *extra)
    if acted:
        writer.write_summary(h.get("PROCESS_DRILLS_PATH_PATTERN"), {"drills": acted}, phase_id=P6)
    injected = {d: (doc.get("drills_injected", {}).get(d, {}).get("injected", 0) if d not in acted
                    else int(bool(acted[d].get("acted")))) for d in drill_ids}
    view_root = h.pattern("S3_STREAM_VIEW_ROOT_PATTERN", platform_run_id=run_id)
    sources = [k for keys in doc.get("sources", {}).values() for k in keys]
    gates = [
        GateResult("ready_consumed", bool(doc.get("ready")), str(doc.get("ready") or doc.get("stopped"))),
        GateResult("stream_view_only", bool(sources) and all(k.startswith(view_root) for k in sources),
                   f"{len(sources)} shards under {view_root}"),
        GateResult("streaming_completed", bool(doc.get("completed")), doc.get("stopped") or "complete"),
        GateResult("nonretryable_zero", doc.get("totals", {}).get("nonretryable", 1) == 0,
                   orjson.dumps(doc.get("nonretryable", [])[:3]).decode()),
        GateResult("drills_injected", all(injected.values()),
                   ", ".join(f"{d}: {n if d not in acted else acted[d].get('reason', 'acted')}"
                             for d, n in injected.items()) or "no drill", {"drills": list(drill_ids)}),
    ]
    return MaterializeResult(metadata={"sent": doc.get("totals", {}).get("sent", 0),
                                       "retries": doc.get("totals", {}).get("retries", 0)},
                             check_results=gate_check_results(writer, P6, "wsp_stream", gates))


P7_GROUP = phase(P7).group


@asset(group_name=P7_GROUP, partitions_def=platform_run_partitions, deps=[wsp_stream], kinds={"postgres", "s3"},
       check_specs=gate_specs("ingest_receipt_summary", {
           "totals_coherent": "ADMIT+DUPLICATE+QUARANTINE+ANOMALY+PUBLISH_AMBIGUOUS = attempts > 0; every "
                              "claim admitted or in doubt; every answer WSP got is receipted",
           "no_publish_ambiguous": "no claim left in doubt",
           "receipts_append_only": "every receipt is in a write-once S3 segment with its recorded digest"}),
       description="P7: receipt outcomes per event class, from IG's append-only receipts.")
def ingest_receipt_summary(context: AssetExecutionContext, platform: PlatformResource):
    h, run_id = platform.handles, context.partition_key
    with ConnectionPool(db.dsn(h), min_size=1, max_size=1, kwargs={"autocommit": True}) as pool:
        receipt_segments.flush(h, pool, platform.store)
    with platform.connect() as conn:
        summary = ingest_commit.receipt_summary(conn, run_id)
        problems = ingest_commit.segment_problems(conn, platform.store, run_id)
    writer = platform.evidence(run_id)
    writer.write_summary(h.get("RECEIPT_SUMMARY_PATH_PATTERN"), {**summary, "segment_problems": problems},
                         phase_id=P7)
    counts = summary["counts"]
    uncovered = _unreceipted_wsp_answers(writer, h, summary["by_event_class"])
    claims_ok = summary["claims"] == summary["admitted_distinct"] + summary["unresolved_in_doubt"]
    gates = [
        GateResult("totals_coherent", summary["attempts"] > 0 and claims_ok and not uncovered,
                   f"{counts} = {summary['attempts']} attempts; {summary['claims']} claims = "
                   f"{summary['admitted_distinct']} admitted + {summary['unresolved_in_doubt']} in doubt"
                   + (f"; WSP answers without an IG receipt: {uncovered}" if uncovered else ""),
                   {"counts": counts}),
        GateResult("no_publish_ambiguous", summary["unresolved_in_doubt"] == 0,
                   f"{summary['unresolved_in_doubt']} in doubt; {counts[AMBIGUOUS]} {AMBIGUOUS} receipts, "
                   f"{summary['resolved_by_reconcile']} resolved by reconcile"),
        GateResult("receipts_append_only", summary["segments_cover_through_seq"] and not problems
                   and summary["receipts_in_segments"] == summary["receipts_total"],
                   "; ".join(problems) or f"{summary['receipts_in_segments']}/{summary['receipts_total']} in segments"),
    ]
    return MaterializeResult(metadata={k: counts[k] for k in counts},
                             check_results=gate_check_results(writer, P7, "ingest_receipt_summary", gates))


def _unreceipted_wsp_answers(writer, h, by_class: dict[str, dict[str, int]]) -> list[str]:
    """Decisions WSP was answered (its last session) beyond what IG's receipts hold, per class."""
    try:
        outputs = writer.read(h.get("WSP_SUMMARY_PATH_PATTERN"))["outputs"]
    except EvidenceError as exc:
        return [f"no WSP summary ({exc})"]
    return [f"{o}.{d}: WSP {n} > IG {by_class.get(OUTPUT_EVENT_CLASSES[o], {}).get(d, 0)}"
            for o, counts in outputs.items() for d, n in counts.items()
            if d != "sent" and n > by_class.get(OUTPUT_EVENT_CLASSES[o], {}).get(d, 0)]


@asset(group_name=P7_GROUP, partitions_def=platform_run_partitions, deps=[wsp_stream], kinds={"kafka"},
       check_specs=gate_specs("kafka_offsets_snapshot", {
           "topics_populated": "every streamed output's topic holds admitted records of the run",
           "offsets_advanced": "each partition, read to its end, is past the run's last admitted offset",
           "dedupe_drift_zero": "records of the run on the bus = ADMIT receipts, each event once"}),
       description="P7: per topic/partition watermarks and the run's admitted offset ranges.")
def kafka_offsets_snapshot(context: AssetExecutionContext, platform: PlatformResource):
    h, run_id = platform.handles, context.partition_key
    consumer = bus.scan_consumer(h)
    try:
        with platform.connect() as conn:
            snap = ingest_commit.offsets_snapshot(h, conn, consumer, run_id)
    finally:
        consumer.close()
    writer = platform.evidence(run_id)
    writer.write_summary(h.get("KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN"), snap, phase_id=P7)
    wanted = {h.topic(topic_key_for(OUTPUT_EVENT_CLASSES[o])).name for o in h.get("ORACLE_REQUIRED_OUTPUT_IDS")}
    empty = sorted(t for t in wanted if sum(p["admitted"] for p in snap["topics"].get(t, [])) == 0)
    parts = [p for rows in snap["topics"].values() for p in rows]
    stale = [p for p in parts if not p["advanced"]]
    gates = [
        GateResult("topics_populated", not empty, f"no admitted records on {empty}" if empty else
                   f"{len(wanted)} topics populated"),
        GateResult("offsets_advanced", not stale, f"{len(stale)} partitions behind" if stale else
                   f"{len(parts)} partitions advanced"),
        GateResult("dedupe_drift_zero", snap["dedupe_drift"] == 0, f"drift {snap['dedupe_drift']}"),
    ]
    return MaterializeResult(metadata={"dedupe_drift": snap["dedupe_drift"]},
                             check_results=gate_check_results(writer, P7, "kafka_offsets_snapshot", gates))


@asset(group_name=P7_GROUP, partitions_def=platform_run_partitions, deps=[wsp_stream], kinds={"s3"},
       check_specs=gate_specs("quarantine_summary", {
           "quarantine_durable": "every QUARANTINE/ANOMALY payload is indexed and present in the quarantine bucket"}),
       description="P7: quarantined and anomalous payloads, preserved write-once.")
def quarantine_summary(context: AssetExecutionContext, platform: PlatformResource):
    h, run_id = platform.handles, context.partition_key
    with platform.connect() as conn:
        doc = ingest_commit.quarantine_summary(conn, platform.store, run_id)
        refused = ingest_commit.receipt_summary(conn, run_id)["counts"]
    writer = platform.evidence(run_id)
    writer.write_summary(h.get("QUARANTINE_SUMMARY_PATH_PATTERN"), doc, phase_id=P7)
    expected = refused[QUARANTINE] + refused[ANOMALY]
    ok = not doc["missing_payloads"] and (doc["count"] > 0) == (expected > 0)
    gates = [GateResult("quarantine_durable", ok, f"{doc['count']} indexed for {expected} refused receipts; "
                        f"missing payloads: {doc['missing_payloads'][:3]}", {"by_decision": doc["by_decision"]})]
    return MaterializeResult(metadata={"quarantined": doc["count"]},
                             check_results=gate_check_results(writer, P7, "quarantine_summary", gates))

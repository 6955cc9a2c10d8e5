"""Control & ingress assets: P4 INGEST_READY, P5 READY_PUBLISHED, P6 STREAMING_ACTIVE, P7 INGEST_COMMITTED.

IG is a daemon of the control_ingress pack, started (or reused) through the supervisor's code path;
SR and WSP are one-shot jobs launched through Dagster Pipes; P4 and P7 checks run in-process.
"""

from typing import Optional

from dagster import AssetExecutionContext, Config
from psycopg_pool import ConnectionPool

from fp_platform.checks import Verdict, fail_phase, launch_job, phase_asset
from fp_platform.contracts.drills import DEFAULT_DRILLS, check_drills, wsp_shares
from fp_platform.contracts.envelope import OUTPUT_EVENT_CLASSES, topic_key_for
from fp_platform.contracts.evidence import EvidenceError
from fp_platform.contracts.phases import P4, P5, P6, P7
from fp_platform.control import gates, ingest_commit, ingest_ready, world_streamer
from fp_platform.control.ig import receipt_segments
from fp_platform.control.ig.admission import ANOMALY, QUARANTINE
from fp_platform.operate import daemons, packs
from fp_platform.operate.drills import process_drills
from fp_platform.resources import Pipes, PlatformResource
from fp_platform.substrate import bus, db


def _launch(
    context: AssetExecutionContext,
    pipes: Pipes,
    platform: PlatformResource,
    phase_id: str,
    job: str,
    *extra: str,
) -> dict:
    return launch_job(context, pipes, platform, phase_id, "fp_platform.control.jobs", job, *extra)


@phase_asset(P4, gates.IG_READY, deps=["oracle_checker"], kinds={"python", "kafka"})
def ig_ready(context: AssetExecutionContext, platform: PlatformResource):
    """P4: the Ingestion Gate daemon is up for this run and proven at its HTTP boundary."""
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
    doc["daemon"] = {
        "pid": record.pid,
        "started_now": started,
        "log": record.log,
        "platform_run_id": record.platform_run_id,
    }
    writer.write_summary(h.get("IG_READY_PATH_PATTERN"), doc, phase_id=P4)
    return Verdict(writer, {**doc, "platform_run_id": run_id}, {"ig_pid": record.pid, "started_now": started})


@phase_asset(P5, gates.READY_PUBLISHED, deps=[ig_ready], kinds={"python", "kafka"})
def ready_published(context: AssetExecutionContext, platform: PlatformResource, pipes: Pipes):
    """P5: Scenario Runner gates the oracle facts and publishes READY once."""
    h, run_id = platform.handles, context.partition_key
    doc = _launch(context, pipes, platform, P5, "sr")
    writer = platform.evidence(run_id)
    consumer = bus.scan_consumer(h)
    try:
        on_topic = world_streamer.find_ready(h, consumer, run_id, context.log.info)
    except world_streamer.WspStopped:
        on_topic = None
    finally:
        consumer.close()
    at = None
    if on_topic and on_topic["envelope"]["pins"].get("scenario_run_id") == doc["scenario_run_id"]:
        at = (on_topic["partition"], on_topic["offset"])
    facts = {"ready_at": at, "ready_duplicates": on_topic["skipped"].get("duplicate", 0) if on_topic else None}
    return Verdict(writer, {**doc, **facts}, {"scenario_run_id": doc["scenario_run_id"], "verdict": doc["verdict"]})


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


@phase_asset(P6, gates.WSP_STREAM, deps=[ready_published], kinds={"python"})
def wsp_stream(context: AssetExecutionContext, config: WspConfig, platform: PlatformResource, pipes: Pipes):
    """P6: World Stream Producer streams the run's stream view to IG, with the run's drills."""
    h, run_id = platform.handles, context.partition_key
    writer = platform.evidence(run_id)
    try:
        drill_ids = check_drills(config.drills)
    except ValueError as exc:
        raise fail_phase(writer, P6, "wsp_stream", "drills_injected", str(exc)) from None
    options = {
        **config.model_dump(exclude={"drills"}),
        **{k: max(v, getattr(config, k)) for k, v in wsp_shares(drill_ids).items()},
    }
    extra = [f"--{k.replace('_', '-')}={v}" for k, v in options.items() if v]
    with process_drills(h, run_id, drill_ids, context.log.info) as acted:
        doc = _launch(context, pipes, platform, P6, "wsp", *extra)
    if acted:
        writer.write_summary(h.get("PROCESS_DRILLS_PATH_PATTERN"), {"drills": acted}, phase_id=P6)
    drills = {}
    for d in drill_ids:  # stream drills: the events WSP selected; process drills: whether the worker was hit
        n = (
            doc.get("drills_injected", {}).get(d, {}).get("injected", 0)
            if d not in acted
            else int(bool(acted[d].get("acted")))
        )
        drills[d] = {"injected": n, "detail": n if d not in acted else acted[d].get("reason", "acted")}
    facts = {"view_root": h.pattern("S3_STREAM_VIEW_ROOT_PATTERN", platform_run_id=run_id), "drills": drills}
    return Verdict(
        writer,
        {**doc, **facts},
        {"sent": doc.get("totals", {}).get("sent", 0), "retries": doc.get("totals", {}).get("retries", 0)},
    )


@phase_asset(P7, gates.INGEST_RECEIPT_SUMMARY, deps=[wsp_stream], kinds={"postgres", "s3"})
def ingest_receipt_summary(context: AssetExecutionContext, platform: PlatformResource):
    """P7: receipt outcomes per event class, from IG's append-only receipts."""
    h, run_id = platform.handles, context.partition_key
    with ConnectionPool(db.dsn(h), min_size=1, max_size=1, kwargs={"autocommit": True}) as pool:
        receipt_segments.flush(h, pool, platform.store)
    with platform.connect() as conn:
        summary = ingest_commit.receipt_summary(conn, run_id)
        problems = ingest_commit.segment_problems(conn, platform.store, run_id)
    writer = platform.evidence(run_id)
    writer.write_summary(h.get("RECEIPT_SUMMARY_PATH_PATTERN"), {**summary, "segment_problems": problems}, phase_id=P7)
    facts = {
        "segment_problems": problems,
        "wsp_unreceipted": _unreceipted_wsp_answers(writer, h, summary["by_event_class"]),
    }
    return Verdict(writer, {**summary, **facts}, dict(summary["counts"]))


def _unreceipted_wsp_answers(writer, h, by_class: dict[str, dict[str, int]]) -> list[str]:
    """Decisions WSP was answered (its last session) beyond what IG's receipts hold, per class."""
    try:
        outputs = writer.read(h.get("WSP_SUMMARY_PATH_PATTERN"))["outputs"]
    except EvidenceError as exc:
        return [f"no WSP summary ({exc})"]
    return [
        f"{o}.{d}: WSP {n} > IG {by_class.get(OUTPUT_EVENT_CLASSES[o], {}).get(d, 0)}"
        for o, counts in outputs.items()
        for d, n in counts.items()
        if d != "sent" and n > by_class.get(OUTPUT_EVENT_CLASSES[o], {}).get(d, 0)
    ]


@phase_asset(P7, gates.KAFKA_OFFSETS_SNAPSHOT, deps=[wsp_stream], kinds={"kafka"})
def kafka_offsets_snapshot(context: AssetExecutionContext, platform: PlatformResource):
    """P7: per topic/partition watermarks and the run's admitted offset ranges."""
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
    return Verdict(writer, {**snap, "wanted_topics": sorted(wanted)}, {"dedupe_drift": snap["dedupe_drift"]})


@phase_asset(P7, gates.QUARANTINE_SUMMARY, deps=[wsp_stream], kinds={"s3"})
def quarantine_summary(context: AssetExecutionContext, platform: PlatformResource):
    """P7: quarantined and anomalous payloads, preserved write-once."""
    h, run_id = platform.handles, context.partition_key
    with platform.connect() as conn:
        doc = ingest_commit.quarantine_summary(conn, platform.store, run_id)
        refused = ingest_commit.receipt_summary(conn, run_id)["counts"]
    writer = platform.evidence(run_id)
    writer.write_summary(h.get("QUARANTINE_SUMMARY_PATH_PATTERN"), doc, phase_id=P7)
    return Verdict(
        writer, {**doc, "refused_receipts": refused[QUARANTINE] + refused[ANOMALY]}, {"quarantined": doc["count"]}
    )

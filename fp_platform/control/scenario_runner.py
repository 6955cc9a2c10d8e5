"""Scenario Runner (P5): "no PASS → no read". Gate the run's sealed oracle facts, derive the
deterministic scenario_run_id, hold the equivalence-key lease, and publish READY exactly once.

READY goes to the control topic keyed by platform_run_id. Before publishing, SR looks for its READY
in Postgres and then on the topic itself (a crash between publish and record), so a second SR for
the same run never publishes a second READY.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg
from confluent_kafka import Consumer, Producer

from fp_platform.contracts import ids
from fp_platform.contracts.envelope import Envelope, record_headers, topic_key_for
from fp_platform.contracts.evidence import EvidenceWriter, utc_now_iso
from fp_platform.contracts.phases import P5
from fp_platform.control.ig.reconcile import find_on_topic
from fp_platform.control.settings import SrSettings
from fp_platform.handles import Handles
from fp_platform.substrate import bus
from fp_platform.substrate.job_channel import Log
from fp_platform.substrate.object_store import S3ObjectStore

READY_CLASS = "control.ready"


class SrConflict(RuntimeError):
    """The lease for this equivalence key is held or bound elsewhere: fail closed."""


@dataclass
class OracleFacts:
    """What SR read and checked about the run's oracle before authorising a stream."""

    pack_fingerprint: str | None = None
    engine_run_id: str | None = None
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.gates) and all(g["passed"] for g in self.gates.values())

    def gate(self, name: str, passed: bool, detail: str) -> None:
        self.gates[name] = {"passed": passed, "detail": detail}


def _get_json(store: S3ObjectStore, bucket: str, key: str) -> dict | None:
    try:
        return json.loads(store.get(bucket, key))
    except FileNotFoundError:
        return None


def oracle_facts(h: Handles, store: S3ObjectStore, writer: EvidenceWriter) -> OracleFacts:
    """Seal, checker verdict and stream-view receipts of the run, each a gate."""
    run_id = writer.platform_run_id
    bucket = h.get("S3_ORACLE_BUCKET")
    facts = OracleFacts()
    seal = _get_json(store, bucket, h.pattern("S3_ORACLE_SEAL_MARKER_PATTERN", platform_run_id=run_id))
    facts.gate("oracle_pack_sealed", seal is not None, "sealed" if seal else "no _SEALED.json for the run")
    if seal:
        facts.pack_fingerprint, facts.engine_run_id = seal["pack_fingerprint"], seal["engine_run_id"]
    try:
        verdict = writer.read(h.get("ORACLE_CHECKER_PASS_PATH_PATTERN"))
    except Exception:  # noqa: BLE001 - absent or unreadable evidence fails the gate
        verdict = {}
    checker_ok = verdict.get("verdict") == "PASS" and verdict.get("pack_fingerprint") == facts.pack_fingerprint
    facts.gate(
        "checker_pass",
        checker_ok,
        f"checker verdict {verdict.get('verdict', 'absent')} for pack {verdict.get('pack_fingerprint')}",
    )
    missing = []
    for output_id in h.get("ORACLE_REQUIRED_OUTPUT_IDS"):
        receipt = _get_json(
            store, bucket, h.pattern("S3_STREAM_SORT_RECEIPT_PATTERN", platform_run_id=run_id, output_id=output_id)
        )
        manifest_key = h.pattern("S3_STREAM_VIEW_MANIFEST_PATTERN", platform_run_id=run_id, output_id=output_id)
        if receipt is None or not store.exists(bucket, manifest_key):
            missing.append(output_id)
            continue
        facts.outputs[output_id] = {
            "output_fingerprint": receipt["output_fingerprint"],
            "rows": receipt["counts"]["output_rows"],
            "parts": [p["file"] for p in receipt["parts"]],
        }
    facts.gate(
        "stream_view_receipts",
        not missing,
        f"missing receipt or manifest: {missing}" if missing else f"{len(facts.outputs)} outputs receipted",
    )
    return facts


def acquire_lease(
    conn: psycopg.Connection, lease_key: str, run_id: str, scenario_run_id: str, holder: str, ttl_s: int
) -> None:
    """Take (or take over an expired) lease; a live or differently bound lease fails closed."""
    with conn.transaction():
        row = conn.execute(
            "SELECT platform_run_id, scenario_run_id, holder, expires_at > now() FROM sr_leases"
            " WHERE lease_key = %s FOR UPDATE",
            (lease_key,),
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO sr_leases VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))",
                (lease_key, run_id, scenario_run_id, holder, ttl_s),
            )
            return
        bound_run, bound_scenario, bound_holder, live = row
        if (bound_run, bound_scenario) != (run_id, scenario_run_id):
            raise SrConflict(f"lease {lease_key} is bound to run {bound_run} / {bound_scenario}")
        if live:
            raise SrConflict(f"lease {lease_key} is held by SR {bound_holder}; retry after it ends or expires")
        conn.execute(
            "UPDATE sr_leases SET holder = %s, expires_at = now() + make_interval(secs => %s) WHERE lease_key = %s",
            (holder, ttl_s, lease_key),
        )


def release_lease(conn: psycopg.Connection, lease_key: str, holder: str) -> None:
    conn.execute("UPDATE sr_leases SET expires_at = now() WHERE lease_key = %s AND holder = %s", (lease_key, holder))


def ready_envelope(h: Handles, writer: EvidenceWriter, facts: OracleFacts, scenario_run_id: str) -> Envelope:
    run_id = writer.platform_run_id
    return Envelope.build(
        event_id=ids.ready_event_id(run_id, scenario_run_id),
        event_class=READY_CLASS,
        pins={"platform_run_id": run_id, "scenario_run_id": scenario_run_id, "engine_run_id": facts.engine_run_id},
        producer=h.get("COMPONENT_ID_SR"),
        payload={
            "oracle_pack_fingerprint": facts.pack_fingerprint,
            "stream_view_root": h.pattern("S3_STREAM_VIEW_ROOT_PATTERN", platform_run_id=run_id),
            "output_ids": sorted(facts.outputs),
            "stream_view_fingerprints": {o: v["output_fingerprint"] for o, v in facts.outputs.items()},
            "run_facts_uri": writer.uri(h.get("SR_RUN_FACTS_PATH_PATTERN")),
        },
    )


def publish_ready_once(
    h: Handles, conn: psycopg.Connection, producer: Producer, consumer: Consumer, ready: Envelope, log: Log
) -> dict[str, Any]:
    """READY's place on the control topic: recorded, found on the topic, or published now."""
    run_id, scenario = ready.platform_run_id, ready.pins["scenario_run_id"]
    topic = h.topic(topic_key_for(READY_CLASS)).name
    row = conn.execute(
        "SELECT kafka_partition, kafka_offset FROM sr_ready_publications WHERE platform_run_id = %s"
        " AND scenario_run_id = %s",
        (run_id, scenario),
    ).fetchone()
    if row:
        log(f"READY already published at {topic}[{row[0]}]@{row[1]}; not publishing again")
        return {"topic": topic, "partition": row[0], "offset": row[1], "published_now": False}
    found = find_on_topic(consumer, topic, {(run_id, READY_CLASS, ready.event_id)})
    if found:
        partition, offset = next(iter(found.values()))
        log(f"READY found on the topic at [{partition}]@{offset} (unrecorded); recording it")
        published_now = False
    else:
        partition, offset = _produce(producer, topic, ready)
        log(f"READY published to {topic}[{partition}]@{offset}")
        published_now = True
    conn.execute(
        "INSERT INTO sr_ready_publications (platform_run_id, scenario_run_id, topic, kafka_partition,"
        " kafka_offset, event_id) VALUES (%s, %s, %s, %s, %s, %s)",
        (run_id, scenario, topic, partition, offset, ready.event_id),
    )
    return {"topic": topic, "partition": partition, "offset": offset, "published_now": published_now}


def _produce(producer: Producer, topic: str, ready: Envelope) -> tuple[int, int]:
    headers = record_headers(
        ready.platform_run_id, ready.event_class, ready.event_id, ready.payload_hash, ready.producer
    )
    (ref,) = bus.deliver(producer, [(topic, ready.to_bytes(), ready.platform_run_id.encode(), headers)], 30)
    if not isinstance(ref, tuple):
        raise RuntimeError(f"READY delivery not confirmed: {ref}")
    return ref


def run_sr(
    h: Handles,
    store: S3ObjectStore,
    writer: EvidenceWriter,
    conn: psycopg.Connection,
    producer: Producer,
    consumer: Consumer,
    log: Log,
) -> dict[str, Any]:
    """The whole SR invocation; returns the sr_pass document (verdict PASS or FAIL with reasons)."""
    run_json = writer.read(h.get("EVIDENCE_RUN_JSON_KEY"))
    equivalence_key = run_json["config"]["scenario_equivalence_key"]
    facts = oracle_facts(h, store, writer)
    scenario_run_id = ids.scenario_run_id(equivalence_key, facts.pack_fingerprint or "")
    writer.write_summary(
        h.get("SR_RUN_FACTS_PATH_PATTERN"),
        {
            "scenario_run_id": scenario_run_id,
            "scenario_equivalence_key": equivalence_key,
            "oracle_pack_fingerprint": facts.pack_fingerprint,
            "engine_run_id": facts.engine_run_id,
            "outputs": facts.outputs,
            "gates": facts.gates,
        },
        phase_id=P5,
    )
    doc: dict[str, Any] = {"scenario_run_id": scenario_run_id, "gates": facts.gates, "ready": None}
    if not facts.passed:
        failed = [f"{k}: {v['detail']}" for k, v in facts.gates.items() if not v["passed"]]
        log("SR gates FAIL, READY not published: " + "; ".join(failed))
        doc["verdict"] = "FAIL"
        writer.write_summary(h.get("SR_PASS_PATH_PATTERN"), doc, phase_id=P5)
        return doc
    lease_key = h.pattern("SR_LEASE_KEY_PATTERN", scenario_equivalence_key=equivalence_key)
    holder = f"sr_{uuid.uuid4().hex[:12]}"
    try:
        acquire_lease(
            conn, lease_key, writer.platform_run_id, scenario_run_id, holder, SrSettings.load(h).lease_ttl_seconds
        )
    except SrConflict as exc:
        doc.update(verdict="FAIL", lease={"key": lease_key, "conflict": str(exc)})
        writer.write_summary(h.get("SR_PASS_PATH_PATTERN"), doc, phase_id=P5)
        log(f"SR lease conflict, READY not published: {exc}")
        return doc
    try:
        ready = ready_envelope(h, writer, facts, scenario_run_id)
        ref = publish_ready_once(h, conn, producer, consumer, ready, log)
    finally:
        release_lease(conn, lease_key, holder)
    receipt = {
        **ref,
        "offset_kind": "kafka_offset",
        "scenario_run_id": scenario_run_id,
        "event_id": ready.event_id,
        "published_at_utc": utc_now_iso(),
    }
    writer.write_summary(h.get("READY_PUBLISH_RECEIPT_PATH_PATTERN"), receipt, phase_id=P5)
    doc.update(verdict="PASS", lease={"key": lease_key, "holder": holder}, ready=receipt)
    writer.write_summary(h.get("SR_PASS_PATH_PATTERN"), doc, phase_id=P5)
    return doc

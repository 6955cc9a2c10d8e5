"""Replay anchors: per topic/partition, the run's first and last offsets and record count, read from the
bus itself (every record whose `platform_run_id` header is the run's, on every topic of the registry),
then cross-checked with what the stores recorded of the same records: IG's ADMIT receipts and SR's READY
publications (the publishers' own receipts), the origin offsets the consumers stored, the consumers'
committed offsets (each has read past the run's last record), and the P7 and P8 snapshots.

The anchors used to be built from the receipts and the consumers' origin offsets: they then covered what
one consumer happened to keep (3,122 of an audit topic's 79,717 run records), missed records no table
names (the control topic's READY) and partitions nobody recorded. A check that cannot read the bus fails
closed: the reporter gets the exception, not an empty anchor set.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from confluent_kafka import Consumer

from fp_platform.contracts.envelope import record_identity
from fp_platform.handles import Handles
from fp_platform.substrate import bus

# Tables whose rows name a record the consumer read (origin offsets), by table.
DERIVED_ORIGINS = ("dla_audit_records", "case_triggers", "label_sim_plan", "cm_trigger_deliveries", "ofp_labels")
REQUIRED_DERIVED_TOPICS = ("FP_BUS_RTDL_V1", "FP_BUS_AUDIT_V1")
# The spine's consumers: each must have committed past the run's last record on every partition it reads.
SPINE_CONSUMER_GROUPS = (
    "CONSUMER_GROUP_ID_ARCHIVE_WRITER",
    "CONSUMER_GROUP_ID_IEG",
    "CONSUMER_GROUP_ID_DECISION_PROCESSOR",
    "CONSUMER_GROUP_ID_AL",
    "CONSUMER_GROUP_ID_DLA",
    "CONSUMER_GROUP_ID_CASE_TRIGGER",
    "CONSUMER_GROUP_ID_CM",
    "CONSUMER_GROUP_ID_LS",
)


@dataclass
class Span:
    """The run's records on one partition (or one publisher's of them)."""

    first_offset: int | None = None
    last_offset: int | None = None
    records: int = 0

    def add(self, offset: int) -> None:
        self.first_offset = offset if self.first_offset is None else min(self.first_offset, offset)
        self.last_offset = offset if self.last_offset is None else max(self.last_offset, offset)
        self.records += 1

    def triple(self) -> tuple[int | None, int | None, int]:
        return (self.first_offset, self.last_offset, self.records)


@dataclass
class PartitionScan:
    span: Span = field(default_factory=Span)
    by_publisher: dict[str, Span] = field(default_factory=dict)
    offsets: array = field(default_factory=lambda: array("q"))  # every run offset, ascending


def scan(h: Handles, consumer: Consumer, run_id: str) -> dict[tuple[str, int], PartitionScan]:
    """(topic, partition) → the run's records there, for every partition of every registry topic."""
    found: dict[tuple[str, int], PartitionScan] = {}
    wanted = run_id.encode()
    for topic in sorted({t.name for t in h.topics()}):
        for p in bus.partitions(consumer, topic):
            part = PartitionScan()
            for msg in bus.read_partition(consumer, topic, p):
                headers = msg.headers() or []
                if not any(k == "platform_run_id" and v == wanted for k, v in headers):
                    continue
                offset = msg.offset()
                part.span.add(offset)
                part.offsets.append(offset)
                publisher = record_identity(headers).get("publisher") or "unknown"
                part.by_publisher.setdefault(publisher, Span()).add(offset)
            if part.span.records:
                found[(topic, p)] = part
    return found


def anchors(scanned: dict[tuple[str, int], PartitionScan]) -> dict[str, list[dict[str, Any]]]:
    """topic → [{partition, first_offset, last_offset, records, by_publisher, source}] (the evidence)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for (topic, p), part in sorted(scanned.items()):
        first, last, n = part.span.triple()
        out.setdefault(topic, []).append(
            {
                "partition": p,
                "first_offset": first,
                "last_offset": last,
                "records": n,
                "by_publisher": {
                    pub: dict(zip(("first_offset", "last_offset", "records"), s.triple(), strict=True))
                    for pub, s in sorted(part.by_publisher.items())
                },
                "source": "bus",
            }
        )
    return out


def _grouped(rows: Iterable[tuple[str, int, int]]) -> dict[tuple[str, int], Span]:
    spans: dict[tuple[str, int], Span] = {}
    for topic, p, offset in rows:
        spans.setdefault((topic, p), Span()).add(offset)
    return spans


def _publisher_problems(
    scanned: dict[tuple[str, int], PartitionScan], recorded: dict[tuple[str, int], Span], publisher: str, what: str
) -> list[str]:
    """The records `publisher` put on the bus for the run equal, per partition, what its receipts say."""
    problems = []
    on_bus = {k: part.by_publisher[publisher] for k, part in scanned.items() if publisher in part.by_publisher}
    for key in sorted(set(on_bus) | set(recorded)):
        bus_span, rec_span = on_bus.get(key, Span()), recorded.get(key, Span())
        if bus_span.triple() != rec_span.triple():
            problems.append(
                f"{key[0]}[{key[1]}]: {publisher} records on the bus (first, last, count) {bus_span.triple()}"
                f" vs {what} {rec_span.triple()}"
            )
    return problems


def consistency(
    h: Handles,
    conn: psycopg.Connection,
    run_id: str,
    scanned: dict[tuple[str, int], PartitionScan],
    p7: dict[str, Any],
    p8: dict[str, Any],
) -> list[str]:
    """Every way the bus anchors disagree with what the stores recorded of the run (empty = consistent)."""
    ig = h.get("COMPONENT_ID_IG")
    problems = _publisher_problems(
        scanned,
        _grouped(
            conn.execute(
                "SELECT topic, kafka_partition, kafka_offset FROM ig_receipts"
                " WHERE platform_run_id = %s AND decision = 'ADMIT'",
                (run_id,),
            )
        ),
        ig,
        "IG's ADMIT receipts",
    )
    for topic, p, offset in conn.execute(
        "SELECT topic, kafka_partition, kafka_offset FROM sr_ready_publications WHERE platform_run_id = %s",
        (run_id,),
    ):
        part = scanned.get((topic, p))
        if part is None or not _contains(part.offsets, offset):
            problems.append(f"{topic}[{p}]@{offset}: SR's READY publication is not a run record on the bus")
    union = " UNION ".join(
        f"SELECT origin_topic, origin_partition, origin_offset FROM {t} WHERE platform_run_id = %s"
        for t in DERIVED_ORIGINS
    )
    for topic, p, offset in conn.execute(
        f"SELECT DISTINCT * FROM ({union}) o ORDER BY 1, 2, 3", (run_id,) * len(DERIVED_ORIGINS)
    ):
        part = scanned.get((topic, p))
        if part is None or not _contains(part.offsets, offset):
            problems.append(f"{topic}[{p}]@{offset}: a consumer recorded it as the run's, the bus does not hold it")
            if len(problems) > 50:
                break
    groups = [h.get(k) for k in SPINE_CONSUMER_GROUPS]
    for group, topic, p, next_offset in conn.execute(
        "SELECT consumer_group, topic, kafka_partition, next_offset FROM worker_offsets"
        " WHERE consumer_group = ANY(%s) ORDER BY 1, 2, 3",
        (groups,),
    ):
        part = scanned.get((topic, p))
        if part is not None and next_offset <= part.span.last_offset:
            problems.append(
                f"{topic}[{p}]: consumer {group} committed {next_offset}, the run's last record is"
                f" {part.span.last_offset}"
            )
    for topic, rows in p7["topics"].items():
        for r in rows:
            if r["admitted"]:
                mine = scanned.get((topic, r["partition"]))
                got = mine.by_publisher.get(ig, Span()).triple() if mine else None
                if got != (r["run_first_offset"], r["run_last_offset"], r["admitted"]):
                    problems.append(
                        f"P7 {topic}[{r['partition']}] {r['run_first_offset']}..{r['run_last_offset']}"
                        f" ({r['admitted']}) vs the bus {got}"
                    )
    for worker, w in p8["workers"].items():
        for r in w["partitions"]:
            if r["admitted"]:
                mine = scanned.get((r["topic"], r["partition"]))
                got = mine.by_publisher.get(ig, Span()).triple() if mine else None
                if got != (r["run_first_offset"], r["run_last_offset"], r["admitted"]):
                    problems.append(f"P8 {worker} {r['topic']}[{r['partition']}] vs the bus {got}")
    topics = {t for t, _ in scanned}
    for key in REQUIRED_DERIVED_TOPICS:
        if h.topic(key).name not in topics:
            problems.append(f"no record of the run on {h.topic(key).name}")
    if not p7["topics"]:
        problems.append("P7 snapshot lists no admitted topic")
    return problems


def _contains(offsets: array, offset: int) -> bool:
    i = bisect_left(offsets, offset)
    return i < len(offsets) and offsets[i] == offset


def build(
    h: Handles, conn: psycopg.Connection, run_id: str, p7: dict[str, Any], p8: dict[str, Any]
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """The run's anchors from the bus and the problems of their cross-checks (what the reporter writes)."""
    consumer = bus.scan_consumer(h)
    try:
        scanned = scan(h, consumer, run_id)
    finally:
        consumer.close()
    return anchors(scanned), consistency(h, conn, run_id, scanned, p7, p8)

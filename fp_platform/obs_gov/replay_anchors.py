"""Replay anchors: per topic/partition, the run's first and last offsets, from what the stores recorded
(IG's ADMIT receipts for the admitted topics; the consumers' origin offsets for the derived ones), checked
against the P7 bus snapshot and the P8 worker snapshot."""

from __future__ import annotations

from typing import Any

import psycopg

from fp_platform.handles import Handles

# The derived topics' records, as their consumers recorded them (origin offsets), table by table.
DERIVED_ORIGINS = ("dla_audit_records", "case_triggers", "label_sim_plan", "cm_trigger_deliveries", "ofp_labels")
REQUIRED_DERIVED_TOPICS = ("FP_BUS_RTDL_V1", "FP_BUS_AUDIT_V1")


def anchors(h: Handles, conn: psycopg.Connection, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """topic → [{partition, first_offset, last_offset, records, source}] for the run."""
    out: dict[str, list[dict[str, Any]]] = {}
    for topic, part, lo, hi, n in conn.execute(
        "SELECT topic, kafka_partition, min(kafka_offset), max(kafka_offset), count(*) FROM ig_receipts"
        " WHERE platform_run_id = %s AND decision = 'ADMIT' GROUP BY 1, 2 ORDER BY 1, 2",
        (run_id,),
    ):
        out.setdefault(topic, []).append(
            {"partition": part, "first_offset": lo, "last_offset": hi, "records": n, "source": "ig_receipts"}
        )
    union = " UNION ".join(
        f"SELECT origin_topic, origin_partition, origin_offset FROM {t} WHERE platform_run_id = %s"
        for t in DERIVED_ORIGINS
    )
    for topic, part, lo, hi, n in conn.execute(
        f"SELECT origin_topic, origin_partition, min(origin_offset), max(origin_offset), count(*) FROM ({union}) o"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        (run_id,) * len(DERIVED_ORIGINS),
    ):
        if topic not in out:
            out.setdefault(topic, []).append(
                {
                    "partition": part,
                    "first_offset": lo,
                    "last_offset": hi,
                    "records": n,
                    "source": "consumers' origin offsets",
                }
            )
    return out


def consistency(
    h: Handles, anchors_by_topic: dict[str, list[dict[str, Any]]], p7: dict[str, Any], p8: dict[str, Any]
) -> list[str]:
    """Where the anchors disagree with the P7 bus snapshot or the P8 worker snapshot, or miss a required topic."""
    mine = {
        (t, a["partition"]): (a["first_offset"], a["last_offset"], a["records"])
        for t, rows in anchors_by_topic.items()
        for a in rows
    }
    problems = []
    for topic, rows in p7["topics"].items():
        for r in rows:
            if r["admitted"] and mine.get((topic, r["partition"])) != (
                r["run_first_offset"],
                r["run_last_offset"],
                r["admitted"],
            ):
                problems.append(
                    f"P7 {topic}[{r['partition']}] {r['run_first_offset']}..{r['run_last_offset']}"
                    f" ({r['admitted']}) vs anchor {mine.get((topic, r['partition']))}"
                )
    for worker, w in p8["workers"].items():
        for r in w["partitions"]:
            if r["admitted"] and mine.get((r["topic"], r["partition"])) != (
                r["run_first_offset"],
                r["run_last_offset"],
                r["admitted"],
            ):
                problems.append(
                    f"P8 {worker} {r['topic']}[{r['partition']}] vs anchor {mine.get((r['topic'], r['partition']))}"
                )
    for key in REQUIRED_DERIVED_TOPICS:
        if h.topic(key).name not in anchors_by_topic:
            problems.append(f"no anchor for {h.topic(key).name}")
    if not p7["topics"]:
        problems.append("P7 snapshot lists no admitted topic")
    return problems

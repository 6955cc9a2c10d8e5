"""P13 OFS_DATASET_COMMITTED: the offline feature shadow builds the point-in-time dataset of a basis.

It reads exactly what P12 pinned (archive segments by manifest and digest, the label snapshot by
digest; a moved fingerprint refuses the build), recomputes the shared feature definition in DuckDB,
joins each training row to its label as of the cutoff (LS's as-of rule), and commits an Iceberg table
snapshot (tagged with the dataset fingerprint) with its manifest, fingerprint, quality report and
rollback recipe. The parity check recomputes, for every event DF scored, the vector over exactly the
records OFP had applied when DF read it (the watermark DF logged) and compares it with the logged one.
"""

from __future__ import annotations

import contextlib
import io
import math
from datetime import datetime
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.expressions import EqualTo

from fp_platform.contracts.canonical import digest, sha256_hex
from fp_platform.contracts.features import FEATURE_NAMES, FLAG_NAMES
from fp_platform.contracts.labels import as_of
from fp_platform.contracts.phases import P13
from fp_platform.handles import Handles
from fp_platform.learning import archive_reader, basis, offline_features, tables
from fp_platform.learning.policy import LearningPolicy
from fp_platform.learning.step import Step
from fp_platform.substrate.job_channel import Log
from fp_platform.substrate.object_store import S3ObjectStore

FLOAT_REL_TOLERANCE = 1e-9  # Postgres and DuckDB may sum an average's terms in another order


class DatasetRefused(RuntimeError):
    """The dataset cannot be built from the pinned basis (a fingerprint moved, the basis is absent)."""


def _topics(h: Handles) -> dict[str, str]:
    return {
        "traffic": h.topic("FP_BUS_TRAFFIC_FRAUD_V1").name,
        "entities": h.topic("FP_BUS_CONTEXT_ARRIVAL_ENTITIES_V1").name,
        "labels": h.topic("FP_BUS_LABELS_EVENTS_V1").name,
    }


_PART_OFF = [("part", pa.int32()), ("off", pa.int64())]
_TX = pa.schema(
    [
        ("event_id", pa.string()),
        ("transaction_id", pa.int64()),
        ("flow_id", pa.string()),
        ("customer_id", pa.string()),
        ("card_id", pa.string()),
        ("terminal_id", pa.int64()),
        ("amount", pa.float64()),
        ("ts", pa.string()),
        *_PART_OFF,
    ]
)
_SIGHTINGS = pa.schema(
    [
        ("flow_id", pa.string()),
        ("card_id", pa.string()),
        ("device_id", pa.string()),
        ("ip", pa.string()),
        ("ts", pa.string()),
        *_PART_OFF,
    ]
)
_LABELS = pa.schema(
    [("transaction_id", pa.int64()), ("is_fraud", pa.bool_()), ("observed_at", pa.string()), *_PART_OFF]
)


def load_archive(h: Handles, store: S3ObjectStore, segments: list[dict[str, Any]]) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection holding the archived traffic, card sightings and label events (first copy of each)."""
    topics = _topics(h)
    tx, sightings, labels = [], [], []
    for seg, table in archive_reader.read_segments(store, h.get("S3_ARCHIVE_BUCKET"), segments):
        if seg["topic"] not in topics.values():
            continue
        for part, off, env in archive_reader.envelopes(table):
            p, cls = env["payload"], env["event_class"]
            if cls == "traffic.fraud":
                tx.append(
                    (
                        env["event_id"],
                        p["transaction_id"],
                        p["flow_id"],
                        p["customer_id"],
                        p["card_id"],
                        p["terminal_id"],
                        float(p["amount"]),
                        env["ts_utc"],
                        part,
                        off,
                    )
                )
            elif cls == "context.arrival_entities":
                sightings.append((p["flow_id"], p["card_id"], p["device_id"], p["ip"], env["ts_utc"], part, off))
            elif cls == "labels.assertion":
                labels.append((p["transaction_id"], p["label"] == "FRAUD", p["observed_at"], part, off))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, schema, rows, key in (
        ("tx", _TX, tx, "event_id"),
        ("sightings", _SIGHTINGS, sightings, "flow_id"),
        ("labels", _LABELS, labels, "transaction_id, observed_at"),
    ):
        con.register("raw", pa.table({n: [r[i] for r in rows] for i, n in enumerate(schema.names)}, schema=schema))
        casts = ", ".join(f"CAST({n} AS TIMESTAMPTZ) AS {n}" if n in ("ts", "observed_at") else n for n in schema.names)
        con.execute(
            f"CREATE TABLE {name} AS SELECT {casts} FROM raw"
            f" QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY part, off) = 1"
        )
        con.unregister("raw")
    con.execute("CREATE TABLE wm (wm_id INTEGER, topic VARCHAR, part INTEGER, next_offset BIGINT)")
    return con


def dataset_rows(
    con: duckdb.DuckDBPyConnection,
    topics: dict[str, str],
    b: dict[str, Any],
    labels: dict[str, dict[str, Any]],
    policy: LearningPolicy,
    run_id: str,
) -> pa.Table:
    """History-, train- and test-week rows with their vectors, split, and label as of the cutoff (model selection
    validates on the history; a basis pinned before it had one starts at the training week)."""
    w = {k: basis.parse_time(v) for k, v in b["windows"].items()}
    con.execute(
        "CREATE OR REPLACE TABLE events AS SELECT event_id, NULL::INTEGER AS wm_id FROM tx"
        " WHERE (ts >= $a AND ts < $b) OR (ts >= $c AND ts < $d)",
        {"a": w.get("history_start", w["train_start"]), "b": w["train_end"], "c": w["test_start"], "d": w["test_end"]},
    )
    vectors = offline_features.compute(con, topics)
    con.register("vectors", vectors)
    lab = pa.table(
        {
            "event_id": list(labels),
            "label": [v["label"] for v in labels.values()],
            "label_observed_at": [v["observed_at"] for v in labels.values()],
        },
        schema=pa.schema(
            [("event_id", pa.string()), ("label", pa.string()), ("label_observed_at", pa.timestamp("us", tz="UTC"))]
        ),
    )
    con.register("lab", lab)
    unlabelled = 0 if policy.unlabelled_as == "LEGIT" else None
    feats = ", ".join(f"v.{f}" for f in (*FEATURE_NAMES, *FLAG_NAMES))
    table = con.sql(
        f"""
        SELECT $run AS platform_run_id, $basis AS basis_fingerprint, t.event_id, t.transaction_id, t.card_id,
               t.customer_id, t.terminal_id, t.ts,
               CASE WHEN t.ts < $train_start THEN 'history' WHEN t.ts < $train_end THEN 'train' ELSE 'test' END
                   AS split,
               lab.label AS label_at_cutoff, lab.label_observed_at,
               CASE WHEN t.ts >= $train_end THEN NULL WHEN lab.label = 'FRAUD' THEN 1 WHEN lab.label = 'LEGIT' THEN 0
                    ELSE $unlabelled END::INTEGER AS target,
               t.amount, {feats}, v.max_input_ts, v.max_label_observed_at, t.part AS origin_partition,
               t.off AS origin_offset
        FROM vectors v JOIN tx t USING (event_id) LEFT JOIN lab USING (event_id)
        WHERE t.ts >= $train_end OR lab.label IS NOT NULL OR $unlabelled IS NOT NULL  -- EXCLUDE drops them
        ORDER BY t.ts, t.event_id""",
        params={
            "run": run_id,
            "basis": b["basis_fingerprint"],
            "train_start": w["train_start"],
            "train_end": w["train_end"],
            "unlabelled": unlabelled,
        },
    )
    return table.to_arrow_table()


def _same(online: Any, offline: Any) -> bool:
    if online is None or offline is None:
        return online is None and offline is None
    if isinstance(online, bool) or isinstance(offline, bool):
        return bool(online) == bool(offline) and isinstance(online, bool) and isinstance(offline, bool)
    return math.isclose(float(online), float(offline), rel_tol=FLOAT_REL_TOLERANCE, abs_tol=1e-12)


def parity(
    conn: psycopg.Connection, con: duckdb.DuckDBPyConnection, topics: dict[str, str], run_id: str, log: Log
) -> dict[str, Any]:
    """Every vector DF logged vs the offline vector over the records under its watermark."""
    logged = conn.execute(
        "SELECT event_id, features, feature_watermark FROM df_decisions"
        " WHERE platform_run_id = %s AND features IS NOT NULL",
        (run_id,),
    ).fetchall()
    unscored = conn.execute(
        "SELECT count(*) FROM df_decisions WHERE platform_run_id = %s AND features IS NULL", (run_id,)
    ).fetchone()[0]
    wm_ids: dict[str, int] = {}
    wm_rows, ev_rows, no_watermark = [], [], []
    for event_id, _, watermark in logged:
        if not watermark:
            no_watermark.append(event_id)
            continue
        key = digest(watermark)
        if key not in wm_ids:
            wm_ids[key] = len(wm_ids)
            wm_rows += [(wm_ids[key], t, int(p), int(n)) for t, parts in watermark.items() for p, n in parts.items()]
        ev_rows.append((event_id, wm_ids[key]))
    con.execute("DELETE FROM wm")
    if wm_rows:
        con.executemany("INSERT INTO wm VALUES (?, ?, ?, ?)", wm_rows)
    ev = pa.table({"event_id": [e for e, _ in ev_rows], "wm_id": pa.array([w for _, w in ev_rows], pa.int32())})
    con.register("ev_in", ev)
    con.execute("CREATE OR REPLACE TABLE events AS SELECT * FROM ev_in")
    log(f"parity: recomputing {len(ev_rows)} logged vectors under {len(wm_ids)} watermarks")
    offline = {r["event_id"]: r for r in offline_features.compute(con, topics).to_pylist()}
    mismatches = []
    for event_id, features, _ in logged:
        if event_id not in offline:
            continue
        diff = {
            f: {"online": features.get(f), "offline": offline[event_id][f]}
            for f in FEATURE_NAMES
            if not _same(features.get(f), offline[event_id][f])
        }
        if diff:
            mismatches.append({"event_id": event_id, "features": diff})
    by_feature: dict[str, int] = {}
    for m in mismatches:
        for f in m["features"]:
            by_feature[f] = by_feature.get(f, 0) + 1
    missing = [e for e, _ in ev_rows if e not in offline]
    return {
        "scored_events": len(logged),
        "events_without_vector": unscored,
        "compared": len(ev_rows) - len(missing),
        "watermarks": len(wm_ids),
        "matched": len(ev_rows) - len(missing) - len(mismatches),
        "mismatched": len(mismatches),
        "mismatched_by_feature": by_feature,
        "mismatches": mismatches[:50],
        "without_watermark": len(no_watermark),
        "without_watermark_examples": no_watermark[:20],
        "not_in_archive": missing[:20],
        "not_in_archive_count": len(missing),
        "float_rel_tolerance": FLOAT_REL_TOLERANCE,
        "holds": bool(logged) and not mismatches and not no_watermark and not missing,
    }


def quality(table: pa.Table, cutoff: datetime) -> dict[str, Any]:
    rows = table.to_pylist()
    split = {s: sum(r["split"] == s for r in rows) for s in ("train", "test")}
    train = [r for r in rows if r["split"] == "train"]
    frauds = sum(r["target"] == 1 for r in train)
    return {
        "rows": len(rows),
        "rows_by_split": split,
        "history_rows": sum(r["split"] == "history" for r in rows),
        "train_targets": {
            "fraud": frauds,
            "legit": sum(r["target"] == 0 for r in train),
            "unlabelled_excluded": sum(r["target"] is None for r in train),
        },
        "train_labelled_at_cutoff": sum(r["label_at_cutoff"] is not None for r in train),
        "train_fraud_rate": round(frauds / len(train), 6) if train else None,
        "null_features": {f: sum(r[f] is None for r in rows) for f in FEATURE_NAMES if any(r[f] is None for r in rows)},
        "context_incomplete": sum(not r["context_complete"] for r in rows),
        "leakage": {
            "inputs_after_event": sum(r["max_input_ts"] is not None and r["max_input_ts"] > r["ts"] for r in rows),
            "feature_labels_observed_after_event": sum(
                r["max_label_observed_at"] is not None and r["max_label_observed_at"] > r["ts"] for r in rows
            ),
            "train_labels_observed_after_cutoff": sum(
                r["label_observed_at"] is not None and r["label_observed_at"] > cutoff for r in train
            ),
        },
    }


def commit_table(h: Handles, table: pa.Table, run_id: str, fingerprint: str) -> dict[str, Any]:
    """Replace the run's rows in the OFS Iceberg table (one snapshot, tagged); returns where it is."""
    cat = tables.catalog(h)
    with contextlib.suppress(NamespaceAlreadyExistsError):
        cat.create_namespace(h.get("ICEBERG_NAMESPACE"))
    ident = tables.table_identifier(h, "ICEBERG_TABLE_OFS_DATASET")
    try:
        tbl = cat.load_table(ident)
    except NoSuchTableError:
        tbl = cat.create_table(ident, schema=table.schema)
    previous = tbl.current_snapshot().snapshot_id if tbl.current_snapshot() else None
    tbl.overwrite(table, overwrite_filter=EqualTo("platform_run_id", run_id))
    snap = tbl.current_snapshot()
    tag = f"ofs_{fingerprint[:24]}"
    tbl.manage_snapshots().create_tag(snap.snapshot_id, tag).commit()
    read_back = (
        cat.load_table(ident)
        .scan(row_filter=EqualTo("platform_run_id", run_id), snapshot_id=snap.snapshot_id)
        .to_arrow()
    )
    return {
        "table": ident,
        "snapshot_id": snap.snapshot_id,
        "previous_snapshot_id": previous,
        "tag": tag,
        "metadata_location": tbl.metadata_location,
        "rows_read_back": read_back.num_rows,
    }


def table_digest(table: pa.Table) -> str:
    buf = io.BytesIO()
    with pa.ipc.new_stream(buf, table.schema) as out:
        out.write_table(table.combine_chunks())
    return sha256_hex(buf.getvalue())


def build_dataset(
    step: Step,
) -> dict[str, Any]:
    """Build, commit and prove the dataset of the run's pinned basis; write the P13 evidence."""
    h, conn, store, writer, run_id, policy, log = step.unpack()
    b = writer.read(h.get("LEARNING_INPUT_BASIS_PATH_PATTERN"))
    segments = archive_reader.manifest(conn, run_id)
    if archive_reader.fingerprint(segments) != b["archive"]["fingerprint"]:
        raise DatasetRefused("the archive manifest no longer matches the basis fingerprint (P12 must be re-pinned)")
    cutoff = basis.parse_time(b["label_cutoff"])
    snap = basis.label_snapshot(conn, run_id, cutoff, basis.parse_time(b["windows"]["test_start"]))
    if snap["digest"] != b["label_snapshot"]["digest"]:
        raise DatasetRefused("the label snapshot as of the cutoff no longer matches the basis fingerprint")
    topics = _topics(h)
    log(f"loading {len(segments)} archive segments")
    con = load_archive(h, store, segments)
    labels = as_of(conn, run_id, cutoff)
    log("computing the dataset's vectors")
    table = dataset_rows(con, topics, b, labels, policy, run_id)
    known = sorted(
        r[0]
        for r in con.execute(
            "SELECT DISTINCT t.card_id FROM lab JOIN tx t USING (event_id) WHERE lab.label = 'FRAUD'"
        ).fetchall()
    )
    fingerprint = digest({"basis": b["basis_fingerprint"], "rows": table_digest(table)})
    log(f"committing {table.num_rows} rows to Iceberg")
    committed = commit_table(h, table, run_id, fingerprint)
    parity_report = parity(conn, con, topics, run_id, log)
    q = quality(table, cutoff)
    manifest = {
        "basis_fingerprint": b["basis_fingerprint"],
        "dataset_fingerprint": fingerprint,
        **committed,
        "rows": table.num_rows,
        "columns": table.schema.names,
        "feature_version": b["feature_definition"]["feature_version"],
        "features": list(policy.features),
        "windows": b["windows"],
        "label_cutoff": b["label_cutoff"],
        "known_compromised_cards": known,
        "catalog": {"type": h.get("ICEBERG_CATALOG_TYPE"), "name": h.get("ICEBERG_CATALOG_NAME")},
    }
    recipe = {
        "dataset_fingerprint": fingerprint,
        "table": committed["table"],
        "snapshot_id": committed["snapshot_id"],
        "tag": committed["tag"],
        "previous_snapshot_id": committed["previous_snapshot_id"],
        "read_this_dataset": f"catalog.load_table({committed['table']!r}).scan(snapshot_id="
        f"{committed['snapshot_id']}, row_filter=\"platform_run_id == '{run_id}'\")",
        "roll_back_table": (
            f"table.manage_snapshots().rollback_to_snapshot({committed['previous_snapshot_id']}).commit()"
            if committed["previous_snapshot_id"]
            else "no earlier snapshot: drop the table to undo"
        ),
        "note": "snapshots are never expired by the platform, so any earlier dataset stays readable by id",
    }
    for key, doc in (
        ("OFS_DATASET_MANIFEST_PATH_PATTERN", manifest),
        (
            "OFS_DATASET_FINGERPRINT_PATH_PATTERN",
            {
                "dataset_fingerprint": fingerprint,
                "basis_fingerprint": b["basis_fingerprint"],
                "snapshot_id": committed["snapshot_id"],
            },
        ),
        ("OFS_QUALITY_REPORT_PATH_PATTERN", q),
        ("OFS_ROLLBACK_RECIPE_PATH_PATTERN", recipe),
        ("OFS_PARITY_REPORT_PATH_PATTERN", parity_report),
    ):
        writer.write_summary(h.get(key), doc, phase_id=P13)
    return {
        "dataset_fingerprint": fingerprint,
        "rows": table.num_rows,
        "quality": q,
        "iceberg": committed,
        "parity": {k: v for k, v in parity_report.items() if k != "mismatches"},
        "parity_examples": parity_report["mismatches"][:5],
    }

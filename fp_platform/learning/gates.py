"""The gates of P12 LEARNING_INPUT_READY, P13 OFS_DATASET_COMMITTED and P14 MF_EVAL_COMMITTED, each declared
once: name, meaning and predicate over what the phase's one-shot job reported (plus the facts the asset adds).
Dagster-free: the assets turn them into blocking checks; the unit tests judge them on documents of their own.
A job that refuses its input fails the named gate with its reason (`checks.Refusal`)."""

from __future__ import annotations

from typing import Any

from fp_platform.contracts.gates import Gate, Judgement, none_listed

Doc = dict[str, Any]


# --- P12 learning_input_basis: doc = the basis job's report ------------------------------------------------
def _basis_pinned(d: Doc) -> Judgement:
    complete = d["label_events_archived"] >= d["label_assertions_total"]
    return (
        complete and d["archive_segments"] > 0,
        f"basis {d['basis_fingerprint'][:16]}: {d['archive_segments']} segments,"
        f" {d['label_assertions']} assertions by {d['label_cutoff']};"
        f" label events archived {d['label_events_archived']}/{d['label_assertions_total']}",
        {"windows": d["windows"]},
    )


def _no_label_leakage(d: Doc) -> Judgement:
    label = d["label_leakage"]
    return (
        label["passed"],
        f"{label['observed_after_test_start']} assertions observed after the test start"
        f" {label['test_start']} (cutoff {label['cutoff']})",
        {"examples": label["observed_after_test_start_examples"][:5]},
    )


LEARNING_INPUT_BASIS = (
    Gate(
        "basis_pinned",
        "the closed run, protocol windows, label cutoff, archive segments (digests verified) and "
        "label snapshot are fingerprinted; the archive holds every label event LS published",
        _basis_pinned,
    ),
    Gate(
        "no_label_leakage",
        "no assertion in the label snapshot was observed after the test week began",
        _no_label_leakage,
    ),
    Gate(
        "no_feature_leakage",
        "no feature window of the shared definition ends after its event, nor a label window inside the label delay",
        none_listed("feature_leakage", "every window ends at or before its event"),
    ),
)


# --- P13 ofs_dataset: doc = the OFS job's report ------------------------------------------------------------
def _dataset_committed(d: Doc) -> Judgement:
    ice = d["iceberg"]
    return (
        ice["rows_read_back"] == d["rows"] > 0,
        f"{ice['table']} snapshot {ice['snapshot_id']} ({ice['tag']}): {ice['rows_read_back']} rows read"
        f" back, manifest {d['rows']}",
    )


def _quality_holds(d: Doc) -> Judgement:
    q = d["quality"]
    return (
        min(q["rows_by_split"].values()) > 0
        and q["train_targets"]["fraud"] > 0
        and q["train_targets"]["legit"] > 0
        and not any(q["leakage"].values()),
        f"rows {q['rows_by_split']}, training targets {q['train_targets']}, leakage {q['leakage']}",
    )


def _parity(d: Doc) -> Judgement:
    par = d["parity"]
    return (
        par["holds"],
        f"{par['matched']}/{par['scored_events']} logged vectors equal offline; mismatched"
        f" {par['mismatched']} {par['mismatched_by_feature']}; without watermark"
        f" {par['without_watermark']}; not in archive {par['not_in_archive_count']}",
        {"examples": d["parity_examples"]},
    )


OFS_DATASET = (
    Gate(
        "dataset_committed",
        "an Iceberg snapshot of the run's rows, tagged with the dataset fingerprint, read back"
        " with the manifest's row count; manifest, fingerprint and rollback recipe written",
        _dataset_committed,
    ),
    Gate(
        "quality_holds",
        "both weeks have rows, the training week both classes; no row reads an input after its"
        " event, nor a training label observed after the cutoff",
        _quality_holds,
    ),
    Gate(
        "online_offline_parity",
        "every vector DF logged equals the offline vector over the records OFP had "
        "applied (its watermark); any mismatch is listed",
        _parity,
    ),
)


# --- P14 mf_candidate: doc = the training job's report + mlflow_problems ------------------------------------
def _candidate_bundle(d: Doc) -> Judgement:
    b = d["bundle"]
    return (
        b["registered"],
        f"{b['bundle_id']} {b['bundle_version']} at {b['model_ref']}"
        + ("" if b["registered"] else " (not registered: below a metric floor)"),
    )


MF_CANDIDATE = (
    Gate(
        "metric_floors",
        "the candidate's AUC ROC, average precision and card precision@k on the test week reach"
        " the learning policy's floors",
        lambda d: (
            all(f["passed"] for f in d["floors"].values()),
            ", ".join(f"{k} {f['value']:.3f} (floor {f['floor']})" for k, f in d["floors"].items()),
            {"metrics": d["metrics"]},
        ),
    ),
    Gate(
        "no_leakage",
        "training rows precede the training end, test rows follow the test start, no training label "
        "observed after the cutoff; known compromised cards left out of the test",
        lambda d: (
            not any(v for k, v in d["leakage"].items() if k != "test_known_compromised_cards_removed"),
            f"{d['leakage']}",
        ),
    ),
    Gate(
        "tracked_in_mlflow",
        "the MLflow run holds params, metrics, PR/ROC plots and the model with its signature",
        none_listed("mlflow_problems", lambda d: f"run {d['mlflow_run_id']} complete"),
    ),
    Gate(
        "candidate_bundle",
        "the bundle (model, feature list, thresholds, provenance) is written and registered",
        _candidate_bundle,
    ),
)


# --- P15 mpr_promotion: doc = the compatibility report (`compatible`, `bundle`), the shadow scoring
#     (`shadow`) and the promote job's report (`promoted`, `promotion_rule`, `drill`, `published`, `active_now`)
def _sent(d: Doc) -> list[dict]:
    return [p for p in d["published"] if "offset" in p]


def _compatible(d: Doc) -> Judgement:
    b = d["bundle"]
    return (
        d["compatible"],
        f"{b['bundle_id']} {b['bundle_version']}: {b['feature_version']}, {len(b['feature_list'])}"
        f" served fields, {b['model_kind']} model",
        {"bundle": b},
    )


def _promotion_committed(d: Doc) -> Judgement:
    sent, shadow = _sent(d), d["shadow"]
    return (
        d["promoted"] and bool(sent) and sent[0]["event_type"] == "PROMOTED",
        f"shadow of {shadow['events']} decisions: {d['promotion_rule']['detail']}; changed"
        f" {shadow['changed_by_transition']}"
        + (
            f"; PROMOTED seq {sent[0]['seq']} on {sent[0]['topic']}[{sent[0]['partition']}]@{sent[0]['offset']}"
            if sent
            else "; not promoted"
        ),
    )


def _rollback_drill(d: Doc) -> Judgement:
    drill = d["drill"]
    steps = (
        "; ".join(
            f"{s['event_type']} {s['bundle_id']} {s['bundle_version']} -> resolves {s['resolved_active']}"
            for s in drill["steps"]
        )
        if drill
        else "no drill: not promoted"
    )
    return bool(drill) and drill["passed"] and len(_sent(d)) == len(d["published"]) == 3, steps


MPR_PROMOTION = (
    Gate(
        "compatible",
        "the candidate's feature version and features are what OFP serves, its model document is "
        "P14's and names the same features, its thresholds are DF decisions; else it stops here",
        _compatible,
    ),
    Gate(
        "promotion_committed",
        "DF scored the candidate in shadow on the test week beside the bundle active before"
        " it, it passed the promotion rule, and PROMOTED is appended and published",
        _promotion_committed,
    ),
    Gate(
        "rollback_drill",
        "ROLLED_BACK to that bundle and ROLLED_FORWARD again, each resolved as active and its"
        " model loaded the way DF does, appended and published",
        _rollback_drill,
    ),
    Gate(
        "active_bundle_resolves",
        "after the corridor DF resolves the promoted bundle",
        lambda d: (
            bool(d["drill"]) and d.get("active_now") == [d["bundle"]["bundle_id"], d["bundle"]["bundle_version"]],
            f"active now {d.get('active_now')}" if d["drill"] else "not promoted",
        ),
    ),
)

"""P14 MF_EVAL_COMMITTED: the model factory trains a candidate on the committed OFS dataset.

It reads the dataset by its Iceberg snapshot (never the table's latest), trains the policy's candidate
(LightGBM) and a logistic-regression baseline on the training week, evaluates both on the test week
against the oracle's truth (cards known compromised at the cutoff left out), tracks everything in
MLflow (params, metrics, PR/ROC plots, the model with its signature) and writes the candidate bundle:
a model document DF can load, the feature list, thresholds and provenance, registered (not active).
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import lightgbm as lgb
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from pyiceberg.expressions import EqualTo

import fp_platform
from fp_platform.contracts import bundle_registry
from fp_platform.contracts.canonical import canonical_json, sha256_hex
from fp_platform.contracts.features import FEATURE_VERSION, with_event_fields
from fp_platform.contracts.metrics import card_precision_at_k_daily
from fp_platform.contracts.oracle_truth import oracle_frauds
from fp_platform.contracts.phases import P14
from fp_platform.handles import Handles
from fp_platform.learning import basis, evaluation, models, selection, tables
from fp_platform.learning.models import matrix
from fp_platform.learning.policy import LearningPolicy, floors_for, review_budget_for
from fp_platform.learning.step import Step
from fp_platform.substrate import db, plots
from fp_platform.substrate.evidence_store import pinned_scale
from fp_platform.substrate.job_channel import Log
from fp_platform.substrate.secrets import get_secret


class CandidateRefused(RuntimeError):
    """No candidate can be trained from the dataset (absent, empty, one class only)."""


def load_dataset(h: Handles, manifest: dict[str, Any], run_id: str) -> pd.DataFrame:
    """The run's rows of the committed dataset snapshot, in time order, with the event fields DF computes."""
    table = tables.catalog(h).load_table(manifest["table"])
    df = table.scan(row_filter=EqualTo("platform_run_id", run_id), snapshot_id=manifest["snapshot_id"]).to_pandas()
    if len(df) != manifest["rows"]:
        raise CandidateRefused(
            f"snapshot {manifest['snapshot_id']} holds {len(df)} rows of the run, the manifest {manifest['rows']}"
        )
    return with_event_fields(df.sort_values(["ts", "event_id"]).reset_index(drop=True))


def _mlflow_env(h: Handles) -> None:
    """MLflow's S3 artifact store reads its endpoint and keys from the environment (this job's only)."""
    if h.values.get("S3_ENDPOINT_URL"):
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = h.get("S3_ENDPOINT_URL")
        os.environ["AWS_ACCESS_KEY_ID"] = get_secret(h, "SSM_S3_ACCESS_KEY_ID_PATH")
        os.environ["AWS_SECRET_ACCESS_KEY"] = get_secret(h, "SSM_S3_SECRET_ACCESS_KEY_PATH")
    os.environ.setdefault("AWS_DEFAULT_REGION", h.get("AWS_REGION"))


def tracking_uri(h: Handles) -> str:
    return db.url(h, h.get("DB_MLFLOW_NAME"), driver="psycopg2", role=db.OWNER)


def _choose(
    policy: LearningPolicy, history: pd.DataFrame, train_start: datetime, k: int, log: Log
) -> tuple[selection.Trial, dict[str, Any]]:
    """The policy's model selection on the dataset's history (labels as of the cutoff), or, when no fold has
    data of both classes (a world too short for the folds), the policy's default candidate, saying why."""
    default = selection.Trial(policy.models["candidate"]["kind"], policy.models["candidate"]["params"])
    try:
        picked = selection.select(
            history,
            policy.features,
            train_start,
            (policy.train_days, policy.delay_days, policy.test_days),
            selection.search_space(policy.selection.space),
            policy.selection.folds,
            k,
            policy.selection.budget_s,
            log,
            min_folds=policy.selection.min_folds,
        )
    except selection.NoFold as exc:
        log(f"selection skipped: {exc}; training the policy's default candidate")
        return default, {"chosen": default.name, "skipped": str(exc), "table": []}
    return picked.chosen, {
        "chosen": picked.chosen.name,
        "metric": selection.CHOICE_METRIC,
        "folds": picked.folds,
        "seconds": round(picked.seconds, 1),
        "budget_s": policy.selection.budget_s,
        "table": picked.table(),
    }


def train_candidate(
    step: Step,
    code_version: str,
) -> dict[str, Any]:
    h, conn, store, writer, run_id, policy, log = step.unpack()
    import mlflow
    from mlflow.models import infer_signature

    from fp_platform.learning.served_model import ServedModel

    manifest = writer.read(h.get("OFS_DATASET_MANIFEST_PATH_PATTERN"))
    df = load_dataset(h, manifest, run_id)
    cutoff = basis.parse_time(manifest["label_cutoff"])
    features = policy.features
    scale = pinned_scale(h, writer)
    budget = review_budget_for(policy, scale)
    train = df[(df["split"] == "train") & df["target"].notna()]
    frauds = oracle_frauds(h, store, run_id)
    known = set(manifest["known_compromised_cards"])
    test = df[(df["split"] == "test") & ~df["card_id"].isin(known)].assign(
        is_fraud=lambda d: d["transaction_id"].isin(frauds).astype(int)
    )
    y = train["target"].astype(int).to_numpy()
    if len(set(y)) < 2:
        raise CandidateRefused(f"the training week has {len(y)} labelled rows of one class only")
    x_train, x_test = matrix(train, features), matrix(test, features)
    log(f"training on {len(train)} rows ({int(y.sum())} fraud), testing on {len(test)}")
    history = df[df["split"].isin(["history", "train"]) & df["target"].notna()]
    train_start = basis.parse_time(manifest["windows"]["train_start"])
    chosen, chosen_sel = _choose(
        policy, history.assign(is_fraud=history["target"].astype(int)), train_start, budget, log
    )
    log(f"training {chosen.name} on the training week")
    candidate = models.fit(chosen.kind, chosen.params, x_train, y, features)
    baseline = models.fit("logistic", policy.models["baseline"]["params"], x_train, y, features)
    scores = {"candidate": candidate.scores(x_test), "baseline": baseline.scores(x_test)}
    metrics = {name: evaluation.evaluate(test, s, budget) for name, s in scores.items()}
    daily_cp = card_precision_at_k_daily(test, scores["candidate"], budget)
    curves = (
        {n: evaluation.curves(test["is_fraud"].to_numpy(), s) for n, s in scores.items()}
        if test["is_fraud"].nunique() == 2
        else {}
    )
    importance = models.importance(candidate)
    leakage = {
        "train_rows_after_train_end": int((train["ts"] >= basis.parse_time(manifest["windows"]["train_end"])).sum()),
        "test_rows_before_test_start": int((test["ts"] < basis.parse_time(manifest["windows"]["test_start"])).sum()),
        "train_labels_observed_after_cutoff": int(
            (train["label_observed_at"].notna() & (train["label_observed_at"] > cutoff)).sum()
        ),
        "test_known_compromised_cards_removed": len(known),
    }
    _mlflow_env(h)
    mlflow.set_tracking_uri(tracking_uri(h))
    experiment = h.get("MLFLOW_EXPERIMENT_NAME")
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(experiment, artifact_location=h.get("MLFLOW_ARTIFACT_ROOT") + experiment)
    mlflow.set_experiment(experiment)
    model_doc = candidate.document()
    with mlflow.start_run(run_name=f"mf-{run_id}") as mlrun:
        mlflow.set_tags(
            {
                "platform_run_id": run_id,
                "dataset_fingerprint": manifest["dataset_fingerprint"],
                "basis_fingerprint": manifest["basis_fingerprint"],
                "code_version": code_version,
                "policy_rev": policy.policy_rev,
            }
        )
        mlflow.log_params(
            {
                "candidate_kind": chosen.kind,
                "baseline_kind": "logistic",
                "features": ",".join(features),
                "train_rows": len(train),
                "test_rows": len(test),
                "review_budget": budget,
                "iceberg_snapshot_id": manifest["snapshot_id"],
                **{f"candidate.{k}": v for k, v in chosen.params.items()},
            }
        )
        for name, m in metrics.items():
            mlflow.log_metrics({f"{name}.{k}": v for k, v in m.items() if not np.isnan(v)})
        fig = plots.curves_figure(curves)
        mlflow.log_figure(fig, "pr_roc_curves.png")
        plt.close(fig)
        for trial in chosen_sel.get("table", []):
            with mlflow.start_run(run_name=trial["trial"], nested=True):
                mlflow.log_params({"kind": trial["kind"], **trial["params"]})
                means = {k: v for k, v in trial.items() if k.endswith(("_mean", "_std")) and v is not None}
                mlflow.log_metrics({**means, "fit_s": trial["fit_s"]})
                mlflow.set_tags({"reached": str(trial["reached"]), "chosen": str(trial["trial"] == chosen.name)})
        mlflow.log_dict(chosen_sel, "selection.json")
        mlflow.log_dict({"k": budget, "daily": daily_cp}, "card_precision_at_k_daily.json")
        mlflow.log_dict(importance, "feature_importance.json")
        signature = infer_signature(pd.DataFrame(x_train[:5], columns=list(features)), scores["candidate"][:5])
        with tempfile.TemporaryDirectory() as tmp:
            doc_path = Path(tmp) / "model.json"
            doc_path.write_bytes(canonical_json(model_doc))
            model_info = mlflow.pyfunc.log_model(
                name="candidate_model",
                python_model=ServedModel(),
                artifacts={"document": str(doc_path)},
                signature=signature,
                code_paths=[str(Path(fp_platform.__file__).parent)],  # DF's scorer, for clients outside this venv
                pip_requirements=[f"lightgbm=={lgb.__version__}", "numpy", "orjson"],
            )
        card = {k: v for k, v in model_doc.items() if k not in ("model", "trees")}
        mlflow.log_dict(card | {"baseline": baseline.document(), "selection": chosen_sel}, "bundle_card.json")
        mlrun_id, artifact_uri = mlrun.info.run_id, mlrun.info.artifact_uri
    bundle_id, version = h.get("MLFLOW_REGISTERED_MODEL_NAME"), f"{manifest['dataset_fingerprint'][:12]}-{mlrun_id[:8]}"
    body = canonical_json(model_doc)
    key = h.pattern("S3_BUNDLE_PREFIX_PATTERN", bundle_id=bundle_id, bundle_version=version) + "model.json"
    bucket = h.get("S3_ARTIFACTS_BUCKET")
    store.put(bucket, key, body, write_once=True)  # a bundle version names one model, ever
    floors = {
        k: {"floor": f, "value": metrics["candidate"][k], "passed": metrics["candidate"][k] >= f}
        for k, f in floors_for(policy, scale).items()
    }
    receipt = {
        "bundle_id": bundle_id,
        "bundle_version": version,
        "model_ref": f"s3://{bucket}/{key}",
        "model_sha256": sha256_hex(body),
        "model_kind": chosen.kind,
        "feature_version": FEATURE_VERSION,
        "feature_list": list(features),
        "thresholds": policy.thresholds,
        "policy_rev": policy.policy_rev,
        "provenance": {
            "dataset_fingerprint": manifest["dataset_fingerprint"],
            "basis_fingerprint": manifest["basis_fingerprint"],
            "source_run": run_id,
            "iceberg_snapshot_id": manifest["snapshot_id"],
            "mlflow_run_id": mlrun_id,
            "code_version": code_version,
        },
        "metrics": metrics["candidate"],
        "registered": False,
    }
    if all(f["passed"] for f in floors.values()):
        with conn.transaction():
            bundle_registry.register(
                conn,
                bundle_id=bundle_id,
                bundle_version=version,
                policy_rev=policy.policy_rev,
                model_ref=receipt["model_ref"],
                feature_version=FEATURE_VERSION,
                feature_list=list(features),
                thresholds=policy.thresholds,
                provenance=receipt["provenance"] | {"metrics": metrics["candidate"]},
            )
        receipt["registered"] = True
    eval_report = {
        "protocol": manifest["windows"],
        "label_cutoff": manifest["label_cutoff"],
        "train": {"rows": len(train), "frauds": int(y.sum())},
        "test": {
            "rows": len(test),
            "frauds": int(test["is_fraud"].sum()),
            "known_compromised_cards_removed": len(known),
        },
        "metrics": metrics,
        "card_precision_at_k_daily": daily_cp,
        "curves": curves,
        "feature_importance": importance,
        "selection": chosen_sel,
        "metric_floors": floors,
        "world_scale": scale,
        "leakage": leakage,
        "review_budget_k": budget,
    }
    refs = {
        "tracking": "postgres (" + h.get("DB_MLFLOW_NAME") + ")",
        "experiment": experiment,
        "run_id": mlrun_id,
        "artifact_uri": artifact_uri,
        "model_uri": model_info.model_uri,
    }
    active = conn.execute(
        "SELECT bundle_id, bundle_version FROM mpr_registry_events ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    safe_disable = {
        "candidate": {"bundle_id": bundle_id, "bundle_version": version},
        "active_when_trained": {"bundle_id": active[0], "bundle_version": active[1]} if active else None,
        "how": "the candidate is registered, not active: DF keeps the active bundle until P15 promotes"
        " it; after a promotion, P15's rollback re-activates the previous bundle",
    }
    for k, doc in (
        ("MF_EVAL_REPORT_PATH_PATTERN", eval_report),
        ("MF_MLFLOW_RUN_REFS_PATH_PATTERN", refs),
        ("MF_CANDIDATE_BUNDLE_RECEIPT_PATH_PATTERN", receipt),
        ("MF_SAFE_DISABLE_PATH_PATTERN", safe_disable),
    ):
        writer.write_summary(h.get(k), doc, phase_id=P14)
    return {
        "metrics": metrics,
        "floors": floors,
        "leakage": leakage,
        "mlflow_run_id": mlrun_id,
        "mlflow_model_uri": model_info.model_uri,
        "bundle": {
            "bundle_id": bundle_id,
            "bundle_version": version,
            "registered": receipt["registered"],
            "model_ref": receipt["model_ref"],
        },
    }


def mlflow_run_problems(h: Handles, run_id: str, model_uri: str) -> list[str]:
    """Read the run and its model back from the tracking store: what they lack (empty when complete)."""
    import mlflow
    from mlflow.models import get_model_info
    from mlflow.tracking import MlflowClient

    _mlflow_env(h)
    mlflow.set_tracking_uri(tracking_uri(h))
    client = MlflowClient(tracking_uri(h))
    run = client.get_run(run_id)
    problems = [] if run.info.status == "FINISHED" else [f"status {run.info.status}"]
    if not any(k.startswith("candidate.") for k in run.data.metrics):
        problems.append("no candidate metrics")
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    problems += [f"no artifact {a}" for a in ("pr_roc_curves.png", "bundle_card.json") if a not in artifacts]
    try:
        if get_model_info(model_uri).signature is None:
            problems.append(f"model {model_uri} has no signature")
    except Exception as exc:  # an unreadable model is a missing one
        problems.append(f"model {model_uri} unreadable: {exc}")
    return problems

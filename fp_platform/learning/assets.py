"""Learning assets: P12 LEARNING_INPUT_READY (`learning_input_basis`), P13 OFS_DATASET_COMMITTED
(`ofs_dataset`), P14 MF_EVAL_COMMITTED (`mf_candidate`).

Each launches its one-shot job (`python -m fp_platform.learning.jobs ...`) through Pipes and judges what
it reported; a refused job (a moved fingerprint, a run not closed) fails the phase's first gate with the
reason.
"""

from typing import Optional

from dagster import AssetExecutionContext, Config, MetadataValue

from fp_platform.checks import Refusal, Verdict, launch_job, phase_asset
from fp_platform.contracts.phases import P12, P13, P14, P15
from fp_platform.learning import gates, model_factory
from fp_platform.resources import Pipes, PlatformResource

_JOBS = "fp_platform.learning.jobs"  # the module of the learning plane's one-shot jobs


class LearningInputConfig(Config):
    """The label as-of cutoff (ISO world time); default: the start of the test week, per the policy."""

    label_cutoff: Optional[str] = None  # noqa: UP045 - Dagster Config needs typing.Optional


@phase_asset(P12, gates.LEARNING_INPUT_BASIS, deps=["run_closure"], kinds={"s3", "postgres"})
def learning_input_basis(
    context: AssetExecutionContext,
    config: LearningInputConfig,
    platform: PlatformResource,
    pipes: Pipes,
):
    """P12: the learning input pinned by fingerprint (label as-of policy, windows, archive, labels), with anti-leakage
    checks."""
    args = ["--label-cutoff", config.label_cutoff] if config.label_cutoff else []
    result = launch_job(context, pipes, platform, P12, _JOBS, "basis", *args, refused_gate="basis_pinned")
    return Verdict(
        platform.evidence(context.partition_key),
        result,
        {
            "basis_fingerprint": result["basis_fingerprint"],
            "label_cutoff": result["label_cutoff"],
            "windows": MetadataValue.json(result["windows"]),
        },
    )


@phase_asset(P13, gates.OFS_DATASET, deps=["learning_input_basis"], kinds={"iceberg", "duckdb", "s3"})
def ofs_dataset(context: AssetExecutionContext, platform: PlatformResource, pipes: Pipes):
    """P13: the point-in-time dataset rebuilt offline from the archive and labels as of the cutoff, committed to
    Iceberg, with the online/offline parity check."""
    result = launch_job(context, pipes, platform, P13, _JOBS, "ofs", refused_gate="dataset_committed")
    ice = result["iceberg"]
    return Verdict(
        platform.evidence(context.partition_key),
        result,
        {
            "dataset_fingerprint": result["dataset_fingerprint"],
            "rows": result["rows"],
            "iceberg_snapshot_id": str(ice["snapshot_id"]),
            "table": ice["table"],
        },
    )


@phase_asset(P14, gates.MF_CANDIDATE, deps=["ofs_dataset"], kinds={"mlflow", "scikitlearn", "lightgbm", "s3"})
def mf_candidate(context: AssetExecutionContext, platform: PlatformResource, pipes: Pipes):
    """P14: select the candidate model (prequential validation over the policy's space), train it and a logistic
    baseline, evaluate under the handbook protocol, track in MLflow, register the candidate bundle."""
    result = launch_job(context, pipes, platform, P14, _JOBS, "train", refused_gate="metric_floors")
    problems = model_factory.mlflow_run_problems(platform.handles, result["mlflow_run_id"], result["mlflow_model_uri"])
    return Verdict(
        platform.evidence(context.partition_key),
        {**result, "mlflow_problems": problems},
        {
            "mlflow_run_id": result["mlflow_run_id"],
            "metrics": MetadataValue.json(result["metrics"]),
            "bundle": MetadataValue.json(result["bundle"]),
        },
    )


class PromotionConfig(Config):
    """The bundle to take through the corridor (`BUNDLE_ID:VERSION`); default: the one P14 registered."""

    candidate: Optional[str] = None  # noqa: UP045 - Dagster Config needs typing.Optional


@phase_asset(P15, gates.MPR_PROMOTION, deps=["mf_candidate"], kinds={"postgres", "kafka"})
def mpr_promotion(
    context: AssetExecutionContext,
    config: PromotionConfig,
    platform: PlatformResource,
    pipes: Pipes,
):
    """P15: the promotion corridor (compatibility, DF shadow scoring, promotion rule, PROMOTED, rollback drill) as
    append-only registry events in Postgres and on the registry topic."""
    writer = platform.evidence(context.partition_key)
    args = ["--candidate", config.candidate] if config.candidate else []
    compat = launch_job(context, pipes, platform, P15, _JOBS, "compatibility", *args)
    if compat.get("status") == "REFUSED" or not compat["compatible"]:
        reason = compat.get("reason") or "; ".join(compat["reasons"])
        return Refusal(writer, "compatible", {"reason": f"refused: {reason}"})
    bundle, window, baseline = compat["bundle"], compat["shadow_window"], compat["baseline"]
    shadow = launch_job(
        context,
        pipes,
        platform,
        P15,
        "fp_platform.rtdl.shadow",
        "score",
        "--bundle-id",
        bundle["bundle_id"],
        "--bundle-version",
        bundle["bundle_version"],
        "--baseline-bundle-id",
        baseline["bundle_id"],
        "--baseline-bundle-version",
        baseline["bundle_version"],
        "--from",
        window["start"],
        "--to",
        window["end"],
        "--review-budget",
        str(compat["review_budget"]),
        refused_gate="promotion_committed",
    )
    result = launch_job(context, pipes, platform, P15, _JOBS, "promote", refused_gate="promotion_committed")
    name = f"{bundle['bundle_id']} {bundle['bundle_version']}"
    return Verdict(
        writer,
        {**result, "compatible": compat["compatible"], "bundle": bundle, "shadow": shadow},
        {
            "candidate": name,
            "promoted": result["promoted"],
            "shadow": MetadataValue.json({k: shadow[k] for k in ("active", "candidate")}),
        },
    )

"""Learning assets: P12 LEARNING_INPUT_READY (`learning_input_basis`), P13 OFS_DATASET_COMMITTED
(`ofs_dataset`), P14 MF_EVAL_COMMITTED (`mf_candidate`).

Each launches its one-shot job (`python -m fp_platform.learning.jobs ...`) through Pipes and judges what
it reported; a refused job (a moved fingerprint, a run not closed) fails the phase's first gate with the
reason.
"""

from typing import Optional

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, PipesSubprocessClient, asset

from fp_platform.checks import gate_check_results, gate_specs, judged, launch_job, phase_asset
from fp_platform.contracts.gates import GateResult
from fp_platform.contracts.phases import P12, P13, P14, P15, phase
from fp_platform.learning import gates, mf
from fp_platform.resources import PlatformResource, platform_run_partitions


class LearningInputConfig(Config):
    """The label as-of cutoff (ISO world time); default: the start of the test week, per the policy."""

    label_cutoff: Optional[str] = None  # noqa: UP045 - Dagster Config needs typing.Optional


def _refused(writer, phase_id: str, asset: str, gate: str, result: dict) -> MaterializeResult:
    return MaterializeResult(metadata={"status": "REFUSED", "reason": result["reason"]},
                             check_results=gate_check_results(writer, phase_id, asset, [
                                 GateResult(gate, False, result["reason"])]))


@phase_asset(P12, gates.LEARNING_INPUT_BASIS, deps=["run_closure"], kinds={"s3", "postgres"},
             description="P12: the learning input pinned by fingerprint (label as-of policy, windows, archive, "
                         "labels), with anti-leakage checks.")
def learning_input_basis(context: AssetExecutionContext, config: LearningInputConfig, platform: PlatformResource,
                         pipes: PipesSubprocessClient):
    writer = platform.evidence(context.partition_key)
    args = ["--label-cutoff", config.label_cutoff] if config.label_cutoff else []
    result = launch_job(context, pipes, platform.profile, writer, P12, "fp_platform.learning.jobs", "basis", *args)
    if result.get("status") == "REFUSED":
        return _refused(writer, P12, "learning_input_basis", "basis_pinned", result)
    return judged(context, writer, P12, gates.LEARNING_INPUT_BASIS, result,
                  {"basis_fingerprint": result["basis_fingerprint"], "label_cutoff": result["label_cutoff"],
                   "windows": MetadataValue.json(result["windows"])})


@phase_asset(P13, gates.OFS_DATASET, deps=["learning_input_basis"], kinds={"iceberg", "duckdb", "s3"},
             description="P13: the point-in-time dataset rebuilt offline from the archive and labels as of the "
                         "cutoff, committed to Iceberg, with the online/offline parity check.")
def ofs_dataset(context: AssetExecutionContext, platform: PlatformResource, pipes: PipesSubprocessClient):
    writer = platform.evidence(context.partition_key)
    result = launch_job(context, pipes, platform.profile, writer, P13, "fp_platform.learning.jobs", "ofs")
    if result.get("status") == "REFUSED":
        return _refused(writer, P13, "ofs_dataset", "dataset_committed", result)
    ice = result["iceberg"]
    return judged(context, writer, P13, gates.OFS_DATASET, result,
                  {"dataset_fingerprint": result["dataset_fingerprint"], "rows": result["rows"],
                   "iceberg_snapshot_id": str(ice["snapshot_id"]), "table": ice["table"]})


@phase_asset(P14, gates.MF_CANDIDATE, deps=["ofs_dataset"], kinds={"mlflow", "lightgbm", "s3"},
             description="P14: train the candidate (LightGBM) and a logistic baseline, evaluate under the handbook "
                         "protocol, track in MLflow, register the candidate bundle.")
def mf_candidate(context: AssetExecutionContext, platform: PlatformResource, pipes: PipesSubprocessClient):
    writer = platform.evidence(context.partition_key)
    result = launch_job(context, pipes, platform.profile, writer, P14, "fp_platform.learning.jobs", "train")
    if result.get("status") == "REFUSED":
        return _refused(writer, P14, "mf_candidate", "metric_floors", result)
    problems = mf.mlflow_run_problems(platform.handles, result["mlflow_run_id"], result["mlflow_model_uri"])
    return judged(context, writer, P14, gates.MF_CANDIDATE, {**result, "mlflow_problems": problems},
                  {"mlflow_run_id": result["mlflow_run_id"], "metrics": MetadataValue.json(result["metrics"]),
                   "bundle": MetadataValue.json(result["bundle"])})


class PromotionConfig(Config):
    """The bundle to take through the corridor (`BUNDLE_ID:VERSION`); default: the one P14 registered."""

    candidate: Optional[str] = None  # noqa: UP045 - Dagster Config needs typing.Optional


@asset(group_name=phase(P15).group, partitions_def=platform_run_partitions, deps=["mf_candidate"],
       kinds={"postgres", "kafka"},
       check_specs=gate_specs("mpr_promotion", {
           "compatible": "the candidate's feature version and features are what OFP serves, its model document is "
                         "P14's and names the same features, its thresholds are DF decisions; else it stops here",
           "promotion_committed": "DF scored the candidate in shadow on the test week beside the bundle active before"
                                  " it, it passed the promotion rule, and PROMOTED is appended and published",
           "rollback_drill": "ROLLED_BACK to that bundle and ROLLED_FORWARD again, each resolved as active and its"
                             " model loaded the way DF does, appended and published",
           "active_bundle_resolves": "after the corridor DF resolves the promoted bundle"}),
       description="P15: the promotion corridor (compatibility, DF shadow scoring, promotion rule, PROMOTED, "
                   "rollback drill) as append-only registry events in Postgres and on the registry topic.")
def mpr_promotion(context: AssetExecutionContext, config: PromotionConfig, platform: PlatformResource,
                  pipes: PipesSubprocessClient):
    writer = platform.evidence(context.partition_key)
    args = ["--candidate", config.candidate] if config.candidate else []
    compat = launch_job(context, pipes, platform.profile, writer, P15, "fp_platform.learning.jobs",
                        "compatibility", *args)
    if compat.get("status") == "REFUSED" or not compat["compatible"]:
        reason = compat.get("reason") or "; ".join(compat["reasons"])
        return _refused(writer, P15, "mpr_promotion", "compatible", {"reason": f"refused: {reason}"})
    bundle, window, baseline = compat["bundle"], compat["shadow_window"], compat["baseline"]
    shadow = launch_job(context, pipes, platform.profile, writer, P15, "fp_platform.rtdl.shadow", "score",
                        "--bundle-id", bundle["bundle_id"], "--bundle-version", bundle["bundle_version"],
                        "--baseline-bundle-id", baseline["bundle_id"],
                        "--baseline-bundle-version", baseline["bundle_version"],
                        "--from", window["start"], "--to", window["end"],
                        "--review-budget", str(compat["review_budget"]))
    if shadow.get("status") == "REFUSED":
        return _refused(writer, P15, "mpr_promotion", "promotion_committed", {"reason": shadow["reason"]})
    result = launch_job(context, pipes, platform.profile, writer, P15, "fp_platform.learning.jobs", "promote")
    if result.get("status") == "REFUSED":
        return _refused(writer, P15, "mpr_promotion", "promotion_committed", result)
    rule, drill, published = result["promotion_rule"], result["drill"], result["published"]
    sent = [p for p in published if "offset" in p]
    name = f"{bundle['bundle_id']} {bundle['bundle_version']}"
    steps = "; ".join(f"{s['event_type']} {s['bundle_id']} {s['bundle_version']} -> resolves {s['resolved_active']}"
                      for s in drill["steps"]) if drill else "no drill: not promoted"
    gates = [
        GateResult("compatible", True, f"{name}: {bundle['feature_version']}, {len(bundle['feature_list'])} served"
                   f" fields, {bundle['model_kind']} model", {"bundle": bundle}),
        GateResult("promotion_committed", result["promoted"] and bool(sent) and sent[0]["event_type"] == "PROMOTED",
                   f"shadow of {shadow['events']} decisions: {rule['detail']}; changed"
                   f" {shadow['changed_by_transition']}" + (f"; PROMOTED seq {sent[0]['seq']} on {sent[0]['topic']}"
                                                             f"[{sent[0]['partition']}]@{sent[0]['offset']}"
                                                             if sent else "; not promoted")),
        GateResult("rollback_drill", bool(drill) and drill["passed"] and len(sent) == len(published) == 3, steps),
        GateResult("active_bundle_resolves", bool(drill) and result.get("active_now") == [bundle["bundle_id"],
                                                                                      bundle["bundle_version"]],
                   f"active now {result.get('active_now')}" if drill else "not promoted"),
    ]
    return MaterializeResult(metadata={"candidate": name, "promoted": result["promoted"],
                                       "shadow": MetadataValue.json({k: shadow[k] for k in ("active", "candidate")})},
                             check_results=gate_check_results(writer, P15, "mpr_promotion", gates))

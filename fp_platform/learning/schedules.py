"""The retrain schedule and the new-label sensor: both request the learning lane (P12..P15) for the newest
closed run, unless the lane already ran on it. Both are off by default: an operator turns
them on in the UI (a retrain promotes a bundle DF then decides with)."""

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from fp_platform.handles import handles
from fp_platform.learning import retrain
from fp_platform.learning.settings import RetrainSettings
from fp_platform.resources import PlatformResource, platform_run_partitions

RETRAIN_ASSETS = ("learning_input_basis", "ofs_dataset", "mf_candidate", "mpr_promotion")

learning_retrain_job = define_asset_job(
    "learning_retrain",
    selection=AssetSelection.assets(*RETRAIN_ASSETS),
    partitions_def=platform_run_partitions,
    description="P12..P15 on one closed run: basis, OFS dataset, candidate, promotion corridor.",
)


@schedule(
    name="learning_retrain_schedule",
    cron_schedule=handles().get("LEARNING_RETRAIN_CRON"),
    job=learning_retrain_job,
    default_status=DefaultScheduleStatus.STOPPED,
    description="Retrain on the newest closed run, unless the learning lane already ran on it.",
)
def learning_retrain_schedule(context: ScheduleEvaluationContext, platform: PlatformResource):
    with platform.connect() as conn:
        run_id = retrain.run_to_learn_from(platform.handles, conn)
    if run_id is None:
        return SkipReason("the newest closed run was learned from already (or no run is closed)")
    return RunRequest(run_key=f"scheduled:{run_id}", partition_key=run_id)


@sensor(
    name="new_labels_retrain",
    job=learning_retrain_job,
    default_status=DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=RetrainSettings.load().sensor_interval_seconds,
    description="Requests a retrain once LEARNING_RETRAIN_MIN_NEW_LABELS label assertions arrived since the last.",
)
def new_labels_retrain(context: SensorEvaluationContext, platform: PlatformResource) -> SensorResult | SkipReason:
    h = platform.handles
    seen = int(context.cursor or 0)
    needed = RetrainSettings.load(h).min_new_labels
    with platform.connect() as conn:
        arrived, high = retrain.labels_past(conn, seen)
        if arrived < needed:
            return SkipReason(f"{arrived} new label assertions since seq {seen}; a retrain needs {needed}")
        run_id = retrain.run_to_learn_from(h, conn)
    if run_id is None:
        return SkipReason(f"{arrived} new label assertions, but the newest closed run was learned from already")
    return SensorResult(
        run_requests=[RunRequest(run_key=f"labels:{run_id}:{high}", partition_key=run_id)], cursor=str(high)
    )

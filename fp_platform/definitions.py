"""The one Definitions of the platform: every phase's assets and gates, jobs, sensors and resources."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job, load_assets_from_modules

from fp_platform.case_labels import assets as case_labels_assets
from fp_platform.contracts.gates import gate_evidence_name
from fp_platform.contracts.phases import PHASES
from fp_platform.control import assets as control_assets
from fp_platform.learning import assets as learning_assets
from fp_platform.learning.schedules import learning_retrain_job, learning_retrain_schedule, new_labels_retrain
from fp_platform.obs_gov import assets as obs_gov_assets
from fp_platform.obs_gov.reporter import SPINE
from fp_platform.operate import assets as operate_assets
from fp_platform.operate.sensors import pack_supervisor, teardown_after_failure, teardown_job
from fp_platform.resources import GateCatalog, resources_for_profile
from fp_platform.rtdl import assets as rtdl_assets
from fp_platform.world import assets as world_assets

PLATFORM_RUN_JOB = "platform_run"

all_assets = load_assets_from_modules(
    [operate_assets, world_assets, control_assets, rtdl_assets, case_labels_assets, obs_gov_assets, learning_assets]
)

platform_run_job = define_asset_job(
    PLATFORM_RUN_JOB,
    selection=AssetSelection.all(),
    description="Materialise a platform run, phase by phase; a failed gate stops the phases after it.",
)


def spine_verdicts(assets: list) -> list[str]:
    """The gate verdict file of every gated asset of P1..P10 among `assets` (what P11's closure requires)."""
    spine_groups = {p.group: p.phase_id for p in PHASES if p.phase_id in SPINE}
    return sorted(
        gate_evidence_name(spine_groups[a.group_names_by_key[key]], key.to_user_string())
        for a in assets
        for key in a.keys
        if a.group_names_by_key.get(key) in spine_groups and any(c.asset_key == key for c in a.check_specs)
    )


defs = Definitions(
    assets=all_assets,
    jobs=[platform_run_job, teardown_job, learning_retrain_job],
    schedules=[learning_retrain_schedule],
    sensors=[pack_supervisor, teardown_after_failure, new_labels_retrain],
    resources={
        **resources_for_profile(),
        "gate_catalog": GateCatalog(
            spine_verdicts=spine_verdicts(all_assets),
            assets=sum(len(a.keys) for a in all_assets),
            checks=sum(len(list(a.check_specs)) for a in all_assets),
        ),
    },
)

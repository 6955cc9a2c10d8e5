"""The handle lookups of the world plane: one place that turns a run id into oracle prefixes."""

from __future__ import annotations

from fp_platform.handles import Handles
from fp_platform.substrate.paths import state_dir
from fp_platform.world.oracle_store import OracleLayout


def oracle_layout(h: Handles, platform_run_id: str) -> OracleLayout:
    return OracleLayout(
        bucket=h.get("S3_ORACLE_BUCKET"),
        inputs=h.pattern("S3_ORACLE_ENGINE_RUN_ROOT_PATTERN", platform_run_id=platform_run_id),
        pack=h.pattern("S3_ORACLE_PACK_ROOT_PATTERN", platform_run_id=platform_run_id),
        view_pattern=h.get("S3_STREAM_VIEW_PREFIX_PATTERN").replace("{platform_run_id}", platform_run_id),
    )


def required_output_ids(h: Handles) -> list[str]:
    return list(h.get("ORACLE_REQUIRED_OUTPUT_IDS"))


def sort_key_for(h: Handles, output_id: str) -> str:
    pairs = dict(item.split("=", 1) for item in h.get("ORACLE_SORT_KEY_BY_OUTPUT_ID"))
    return pairs[output_id]


def engine_workdir(h: Handles, engine_run_id: str):
    """Local scratch for generated engine output before sync (deterministic, so reusable)."""
    return state_dir() / h.pattern("ORACLE_SYNC_SOURCE_PATTERN", engine_run_id=engine_run_id)

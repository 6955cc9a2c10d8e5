"""World-plane assets: P3 ORACLE_READY — engine outputs, sealed pack, one stream view per output,
and the checker. Heavy work runs in `fp_platform.world.jobs` through Dagster Pipes."""

import json

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition

from fp_platform.checks import Verdict, launch_job, phase_asset
from fp_platform.contracts.phases import P3
from fp_platform.handles import handles
from fp_platform.resources import Pipes, PlatformResource
from fp_platform.world import checker, gates, oracle_store
from fp_platform.world.layout import oracle_layout, required_output_ids, sort_key_for
from fp_platform.world.stream_sort import RECEIPT_NAME, receipt_is_valid


def _run_job(context: AssetExecutionContext, pipes: Pipes, platform: PlatformResource, job: str, *extra: str) -> dict:
    return launch_job(context, pipes, platform, P3, "fp_platform.world.jobs", job, *extra)


@phase_asset(P3, gates.ENGINE_OUTPUTS, deps=["run_header"], kinds={"python", "s3"})
def engine_outputs(context: AssetExecutionContext, platform: PlatformResource, pipes: Pipes):
    """The run's world, generated deterministically and synced (incrementally) to the oracle bucket."""
    result = _run_job(context, pipes, platform, "engine")
    writer = platform.evidence(context.partition_key)
    snapshot = writer.read(platform.handles.get("ORACLE_SEED_SNAPSHOT_PATH_PATTERN"))
    layout = oracle_layout(platform.handles, context.partition_key)
    stored = {
        rel: (platform.store.head(layout.bucket, layout.inputs + rel) or {}).get("metadata", {})
        for rel in snapshot["digests"]
    }
    absent = [rel for rel, sha in snapshot["digests"].items() if stored[rel].get(oracle_store.SHA_META) != sha]
    return Verdict(
        writer, {"snapshot": snapshot, "absent": absent}, {"engine_run_id": result["engine_run_id"], **result["counts"]}
    )


@phase_asset(P3, gates.ORACLE_PACK, deps=[engine_outputs], kinds={"s3"})
def oracle_pack(context: AssetExecutionContext, platform: PlatformResource, pipes: Pipes):
    """The oracle pack: manifest of every engine object, sealed once with _SEALED.json."""
    result = _run_job(context, pipes, platform, "seal")
    h = platform.handles
    layout = oracle_layout(h, context.partition_key)
    facts = {
        "problems": oracle_store.verify_pack(platform.store, layout, strict=False),
        "missing": sorted(set(required_output_ids(h)) - set(result["outputs"])),
    }
    return Verdict(
        platform.evidence(context.partition_key), {**result, **facts}, {"pack_fingerprint": result["pack_fingerprint"]}
    )


def stream_view_asset(output_id: str) -> AssetsDefinition:
    key = AssetKey(["stream_view", output_id])

    @phase_asset(
        P3,
        gates.STREAM_VIEW,
        key=key,
        deps=[oracle_pack],
        kinds={"parquet", "s3"},
        description=f"Stream view of {output_id}: ordered by ts_utc, source file, source row; re-runnable alone.",
    )
    def _view(context: AssetExecutionContext, platform: PlatformResource, pipes: Pipes):
        result = _run_job(context, pipes, platform, "stream-sort", "--output-id", output_id)
        layout = oracle_layout(platform.handles, context.partition_key)
        manifest = oracle_store.read_sealed_manifest(platform.store, layout)
        job = checker.sort_job_for(
            layout, manifest, context.partition_key, output_id, sort_key_for(platform.handles, output_id)
        )
        receipt = json.loads(platform.store.get(layout.bucket, layout.view(output_id) + RECEIPT_NAME))
        ok, why = receipt_is_valid(platform.store, job, receipt)
        return Verdict(
            platform.evidence(context.partition_key),
            {"receipt_valid": ok, "why": why},
            {
                "rows": result["counts"]["output_rows"],
                "skipped": result["skipped"],
                "output_fingerprint": result["output_fingerprint"],
            },
        )

    return _view


stream_views = [stream_view_asset(o) for o in required_output_ids(handles())]


@phase_asset(P3, gates.ORACLE_CHECKER, deps=stream_views, kinds={"python"})
def oracle_checker(context: AssetExecutionContext, platform: PlatformResource, pipes: Pipes):
    """P3 checker (fail-closed): writes oracle/stream_sort_summary.json and oracle/checker_pass.json."""
    _run_job(context, pipes, platform, "check")
    writer = platform.evidence(context.partition_key)
    verdict = writer.read(platform.handles.get("ORACLE_CHECKER_PASS_PATH_PATTERN"))
    return Verdict(writer, verdict, {"verdict": verdict["verdict"]})

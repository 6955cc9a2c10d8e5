"""World-plane assets: P3 ORACLE_READY — engine outputs, sealed pack, one stream view per output,
and the checker. Heavy work runs in `fp_platform.world.jobs` through Dagster Pipes."""

import json

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, MaterializeResult, PipesSubprocessClient, asset

from fp_platform.checks import gate_check_results, gate_specs, launch_job
from fp_platform.contracts.gates import GateResult
from fp_platform.contracts.phases import P3, phase
from fp_platform.handles import handles
from fp_platform.resources import PlatformResource, platform_run_partitions
from fp_platform.world import checker, oracle_store
from fp_platform.world.layout import oracle_layout, required_output_ids, sort_key_for
from fp_platform.world.stream_sort import RECEIPT_NAME, receipt_is_valid

GROUP = phase(P3).group


def _run_job(context: AssetExecutionContext, pipes: PipesSubprocessClient, platform: PlatformResource,
             job: str, *extra: str) -> dict:
    return launch_job(context, pipes, platform.profile, platform.evidence(context.partition_key), P3,
                      "fp_platform.world.jobs", job, *extra)


@asset(group_name=GROUP, partitions_def=platform_run_partitions, deps=["run_header"], kinds={"python", "s3"},
       check_specs=gate_specs("engine_outputs", {"oracle_inputs_present": "every engine file is in the oracle "
                                                 "bucket with its sha256"}),
       description="The run's world, generated deterministically and synced (incrementally) to the oracle bucket.")
def engine_outputs(context: AssetExecutionContext, platform: PlatformResource, pipes: PipesSubprocessClient):
    result = _run_job(context, pipes, platform, "engine")
    writer = platform.evidence(context.partition_key)
    snapshot = writer.read(platform.handles.get("ORACLE_SEED_SNAPSHOT_PATH_PATTERN"))
    layout = oracle_layout(platform.handles, context.partition_key)
    stored = {rel: (platform.store.head(layout.bucket, layout.inputs + rel) or {}).get("metadata", {})
              for rel in snapshot["digests"]}
    absent = [rel for rel, sha in snapshot["digests"].items() if stored[rel].get(oracle_store.SHA_META) != sha]
    gates = [GateResult("oracle_inputs_present", snapshot["object_count"] > 0 and not absent,
                        f"{snapshot['object_count']} objects, {snapshot['uploaded']} uploaded, "
                        f"{snapshot['skipped']} already present" + (f"; absent: {absent[:5]}" if absent else ""),
                        {"counts": snapshot["counts"]})]
    return MaterializeResult(metadata={"engine_run_id": result["engine_run_id"], **result["counts"]},
                             check_results=gate_check_results(writer, P3, "engine_outputs", gates))


@asset(group_name=GROUP, partitions_def=platform_run_partitions, deps=[engine_outputs], kinds={"s3"},
       check_specs=gate_specs("oracle_pack", {"pack_sealed": "the pack manifest is sealed and every sealed object "
                                              "is present with its size",
                                              "required_outputs_sealed": "every required output is in the pack"}),
       description="The oracle pack: manifest of every engine object, sealed once with _SEALED.json.")
def oracle_pack(context: AssetExecutionContext, platform: PlatformResource, pipes: PipesSubprocessClient):
    result = _run_job(context, pipes, platform, "seal")
    h = platform.handles
    layout = oracle_layout(h, context.partition_key)
    problems = oracle_store.verify_pack(platform.store, layout, strict=False)
    missing = sorted(set(required_output_ids(h)) - set(result["outputs"]))
    gates = [GateResult("pack_sealed", not problems, "; ".join(problems) or f"sealed {result['pack_fingerprint']}"),
             GateResult("required_outputs_sealed", not missing, f"missing: {missing}" if missing else "all present")]
    writer = platform.evidence(context.partition_key)
    return MaterializeResult(metadata={"pack_fingerprint": result["pack_fingerprint"]},
                             check_results=gate_check_results(writer, P3, "oracle_pack", gates))


def stream_view_asset(output_id: str) -> AssetsDefinition:
    key = AssetKey(["stream_view", output_id])

    @asset(key=key, group_name=GROUP, partitions_def=platform_run_partitions, deps=[oracle_pack],
           kinds={"parquet", "s3"},
           check_specs=gate_specs(key, {"receipt_valid": "the receipt matches the sealed inputs and every shard "
                                        "it lists is present"}),
           description=f"Stream view of {output_id}: ordered by ts_utc, source file, source row; re-runnable alone.")
    def _view(context: AssetExecutionContext, platform: PlatformResource, pipes: PipesSubprocessClient):
        result = _run_job(context, pipes, platform, "stream-sort", "--output-id", output_id)
        layout = oracle_layout(platform.handles, context.partition_key)
        manifest = oracle_store.read_sealed_manifest(platform.store, layout)
        job = checker.sort_job_for(layout, manifest, context.partition_key, output_id,
                                   sort_key_for(platform.handles, output_id))
        receipt = json.loads(platform.store.get(layout.bucket, layout.view(output_id) + RECEIPT_NAME))
        ok, why = receipt_is_valid(platform.store, job, receipt)
        writer = platform.evidence(context.partition_key)
        return MaterializeResult(
            metadata={"rows": result["counts"]["output_rows"], "skipped": result["skipped"],
                      "output_fingerprint": result["output_fingerprint"]},
            check_results=gate_check_results(writer, P3, key, [GateResult("receipt_valid", ok, why)]),
        )

    return _view


stream_views = [stream_view_asset(o) for o in required_output_ids(handles())]


@asset(group_name=GROUP, partitions_def=platform_run_partitions, deps=stream_views, kinds={"python"},
       check_specs=gate_specs("oracle_checker", {"checker_pass": "every required output: sealed input, shards, "
                                                 "manifest, receipt, rows in order, counts equal"}),
       description="P3 checker (fail-closed): writes oracle/stream_sort_summary.json and oracle/checker_pass.json.")
def oracle_checker(context: AssetExecutionContext, platform: PlatformResource, pipes: PipesSubprocessClient):
    _run_job(context, pipes, platform, "check")
    writer = platform.evidence(context.partition_key)
    verdict = writer.read(platform.handles.get("ORACLE_CHECKER_PASS_PATH_PATTERN"))
    failed = {o: r["problems"] for o, r in verdict["outputs"].items() if not r["passed"]}
    detail = "; ".join(f"{o}: {' / '.join(p)}" for o, p in failed.items()) or \
        f"{len(verdict['outputs'])} outputs PASS"
    gates = [GateResult("checker_pass", verdict["verdict"] == "PASS" and not failed, detail,
                        {"outputs": {o: r["rows"] for o, r in verdict["outputs"].items()}})]
    return MaterializeResult(metadata={"verdict": verdict["verdict"]},
                             check_results=gate_check_results(writer, P3, "oracle_checker", gates))

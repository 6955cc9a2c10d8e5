"""One-shot world jobs — engine, seal, stream-sort, check — as one plain-Python entrypoint.

Dagster launches them through Pipes (a subprocess locally, a pod on Kubernetes, same command);
an operator can run them by hand: `python -m fp_platform.world.jobs stream-sort --run-id ID
--output-id traffic_fraud`. Each job writes its evidence itself and reports a JSON result.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from fp_platform.contracts.evidence import EvidenceWriter
from fp_platform.contracts.phases import P3
from fp_platform.handles import Handles, handles
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.job_channel import Log, job_channel
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.world import checker, engine, oracle_store, stream_sort
from fp_platform.world.layout import engine_workdir, oracle_layout, required_output_ids, sort_key_for


def run_params(writer: EvidenceWriter, h: Handles) -> engine.WorldParams:
    """The world a run asked for, as pinned in its run.json (P1)."""
    pinned = writer.read(h.get("EVIDENCE_RUN_JSON_KEY"))["config"]["params"]
    return engine.params_for(pinned["scale"], seed=int(pinned["seed"]))


def job_engine(h: Handles, store: S3ObjectStore, writer: EvidenceWriter, args, log: Log) -> dict:
    params = run_params(writer, h)
    workdir = engine_workdir(h, params.engine_run_id)
    if not (workdir / engine.MANIFEST_NAME).exists():
        log(f"generating world {params.engine_run_id} ({params.n_customers} customers, {params.nb_days} days)")
        tmp = Path(tempfile.mkdtemp(dir=workdir.parent if workdir.parent.exists() else None))
        engine.write_outputs(params, tmp)
        workdir.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
        tmp.rename(workdir)
    else:
        log(f"world {params.engine_run_id} already generated at {workdir}")
    layout = oracle_layout(h, writer.platform_run_id)
    snapshot = oracle_store.sync(store, workdir, layout, progress=log)
    manifest = json.loads((workdir / engine.MANIFEST_NAME).read_text())
    doc = {
        **snapshot,
        "engine_run_id": params.engine_run_id,
        "counts": {k: v["rows"] for k, v in manifest["outputs"].items()},
    }
    writer.write_summary(h.get("ORACLE_SEED_SNAPSHOT_PATH_PATTERN"), doc, phase_id=P3)
    return {k: v for k, v in doc.items() if k != "digests"}


def job_seal(h: Handles, store: S3ObjectStore, writer: EvidenceWriter, args, log: Log) -> dict:
    layout = oracle_layout(h, writer.platform_run_id)
    manifest = oracle_store.build_pack_manifest(store, layout)
    marker = oracle_store.seal(store, layout, manifest)
    log(f"pack {manifest['pack_fingerprint']} {'already sealed' if marker['already_sealed'] else 'sealed'}")
    return {**marker, "outputs": sorted(manifest["outputs"])}


def job_stream_sort(h: Handles, store: S3ObjectStore, writer: EvidenceWriter, args, log: Log) -> dict:
    layout = oracle_layout(h, writer.platform_run_id)
    manifest = oracle_store.read_sealed_manifest(store, layout)
    job = checker.sort_job_for(
        layout, manifest, writer.platform_run_id, args.output_id, sort_key_for(h, args.output_id)
    )
    with tempfile.TemporaryDirectory(prefix=f"sort-{args.output_id}-") as tmp:
        receipt = stream_sort.run_sort(store, job, Path(tmp), progress=log)
    return {
        k: receipt[k]
        for k in (
            "output_id",
            "input_fingerprint",
            "output_fingerprint",
            "counts",
            "skipped",
            "started_at_utc",
            "ended_at_utc",
        )
    }


def job_check(h: Handles, store: S3ObjectStore, writer: EvidenceWriter, args, log: Log) -> dict:
    layout = oracle_layout(h, writer.platform_run_id)
    outputs = {o: sort_key_for(h, o) for o in required_output_ids(h)}
    manifest, results = checker.check_all(store, layout, writer.platform_run_id, outputs)
    summary = {}
    for o in outputs:
        try:
            receipt = json.loads(store.get(layout.bucket, layout.view(o) + stream_sort.RECEIPT_NAME))
            summary[o] = {
                k: receipt[k]
                for k in (
                    "input_fingerprint",
                    "output_fingerprint",
                    "counts",
                    "sort_key",
                    "started_at_utc",
                    "ended_at_utc",
                )
            }
        except FileNotFoundError:
            summary[o] = {"missing": True}
    writer.write_summary(
        h.get("ORACLE_STREAM_SORT_SUMMARY_PATH_PATTERN"),
        {"outputs": summary, "pack_fingerprint": manifest.get("pack_fingerprint")},
        phase_id=P3,
    )
    verdict = {
        "verdict": "PASS" if results and all(r.passed for r in results) else "FAIL",
        "outputs": {r.output_id: {"passed": r.passed, "problems": r.problems, "rows": r.rows} for r in results},
        "pack_fingerprint": manifest.get("pack_fingerprint"),
    }
    writer.write_summary(h.get("ORACLE_CHECKER_PASS_PATH_PATTERN"), verdict, phase_id=P3)
    for r in results:
        log(f"{r.output_id}: {'PASS' if r.passed else 'FAIL ' + '; '.join(r.problems)}")
    return verdict


JOBS = {"engine": job_engine, "seal": job_seal, "stream-sort": job_stream_sort, "check": job_check}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fp_platform.world.jobs", description=__doc__.splitlines()[0])
    parser.add_argument("job", choices=sorted(JOBS))
    parser.add_argument("--run-id", required=True, help="platform_run_id")
    parser.add_argument("--output-id", help="stream-sort: the output to sort")
    args = parser.parse_args(argv)
    if args.job == "stream-sort" and not args.output_id:
        parser.error("stream-sort needs --output-id")
    h = handles()
    store = S3ObjectStore(h)
    writer = run_evidence(h, args.run_id, store=store)
    with job_channel() as (log, report):
        report(JOBS[args.job](h, store, writer, args, log))
    return 0


if __name__ == "__main__":
    sys.exit(main())

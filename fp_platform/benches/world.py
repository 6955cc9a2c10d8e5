"""`fp-platform bench stream-sort`: our stream sort vs DuckDB ORDER BY on the same parquet files.

Each contender runs in its own child process, so wall time and peak RSS (its VmHWM) are its own.
Ours includes S3 download of the raw parts, the sort, S3 upload of shards, manifest and receipt;
DuckDB reads and writes local files (it has no S3 access here), so the ratio is conservative.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from fp_platform.contracts.bench_line import bench_line
from fp_platform.handles import Handles
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.world import engine, oracle_store, stream_sort

OUTPUT_ID = "traffic_fraud"


def _peak_rss_mib() -> float:
    """VmHWM of this process's own address space (ru_maxrss would include the parent's at exec)."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def _measure(cmd: list[str]) -> tuple[float, float, dict]:
    """(wall seconds, peak RSS MiB, reported JSON) of one child process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.monotonic()
        pid = os.posix_spawn(
            cmd[0],
            cmd,
            os.environ,
            file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, err.fileno(), 2)],
        )
        _, status = os.waitpid(pid, 0)
        wall = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{cmd[3]} failed: {err.read()[-2000:]}")
        report = json.loads(out.read().strip().splitlines()[-1])
        return wall, report.pop("peak_rss_mib"), report


def child_ours(job_json: str, workdir: str) -> None:
    from fp_platform.handles import handles

    doc = json.loads(job_json)
    job = stream_sort.SortJob(**{**doc, "inputs": tuple(stream_sort.InputFile(**f) for f in doc["inputs"])})
    receipt = stream_sort.run_sort(S3ObjectStore(handles()), job, Path(workdir))
    print(json.dumps({**receipt["counts"], "peak_rss_mib": _peak_rss_mib()}))


def child_duckdb(files_json: str, out_path: str, memory_limit: str) -> None:
    import duckdb

    files = json.loads(files_json)
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET threads = 2")
    con.execute(
        "COPY (SELECT * FROM read_parquet(?, filename = true, file_row_number = true) "
        "ORDER BY ts_utc, filename, file_row_number) TO '" + out_path + "' (FORMAT parquet, COMPRESSION zstd)",
        [files],
    )
    rows = con.execute(f"SELECT count(*) FROM '{out_path}'").fetchone()[0]
    print(json.dumps({"rows": rows, "peak_rss_mib": _peak_rss_mib()}))


def _line(
    metric: str,
    value: float,
    unit: str,
    baseline: str | None,
    baseline_value: float | None,
    params: dict,
    higher_is_better: bool = True,
) -> dict:
    return bench_line(
        "stream-sort",
        metric,
        round(value, 3),
        unit,
        params,
        baseline,
        None if baseline_value is None else round(baseline_value, 3),
        higher_is_better,
    )


def run(h: Handles, scale: str, bucket_rows: int, duckdb_memory_limit: str, log=print) -> list[dict]:
    params = engine.params_for(scale)
    store = S3ObjectStore(h)
    bucket = h.get("S3_ORACLE_BUCKET")
    with tempfile.TemporaryDirectory(prefix="bench-stream-sort-") as tmp:
        tmp_path = Path(tmp)
        log(f"generating the {scale} world …")
        t0 = time.monotonic()
        engine.write_outputs(params, tmp_path / "world")
        generation_s = time.monotonic() - t0
        raw = tmp_path / "world" / f"output_id={OUTPUT_ID}"
        prefix = f"bench/stream-sort/{uuid.uuid4().hex}/"
        layout = oracle_store.OracleLayout(
            bucket=bucket,
            inputs=prefix + "raw/",
            pack=prefix + "pack/",
            view_pattern=prefix + "view/output_id={output_id}/",
        )
        snapshot = oracle_store.sync(store, raw, layout)
        inputs = [
            {"key": layout.inputs + rel, "size": (raw / rel).stat().st_size, "sha256": sha}
            for rel, sha in sorted(snapshot["digests"].items())
        ]
        job = {
            "platform_run_id": "platform_19700101T000000Z",
            "output_id": OUTPUT_ID,
            "bucket": bucket,
            "inputs": inputs,
            "output_prefix": layout.view(OUTPUT_ID),
            "bucket_rows": bucket_rows,
        }
        rows = sum(
            json.loads((tmp_path / "world" / engine.MANIFEST_NAME).read_text())["outputs"][OUTPUT_ID]["files"][i][
                "rows"
            ]
            for i in range(len(inputs))
        )
        log(f"sorting {rows} rows in {len(inputs)} files: ours …")
        ours_s, ours_rss, ours_out = _measure(
            [sys.executable, "-m", "fp_platform.benches.world", "ours", json.dumps(job), str(tmp_path / "ours")]
        )
        log("… DuckDB …")
        files = sorted(str(p) for p in raw.glob("*.parquet"))
        duck_s, duck_rss, _ = _measure(
            [
                sys.executable,
                "-m",
                "fp_platform.benches.world",
                "duckdb",
                json.dumps(files),
                str(tmp_path / "duck.parquet"),
                duckdb_memory_limit,
            ]
        )
        for key in store.list_keys(bucket, prefix):
            store.client.delete_object(Bucket=bucket, Key=key)
    run_params = {
        "scale": scale,
        "output_id": OUTPUT_ID,
        "rows": rows,
        "files": len(inputs),
        "bucket_rows": bucket_rows,
        "duckdb_memory_limit": duckdb_memory_limit,
        "ours_counts": ours_out,
    }
    return [
        _line(
            "stream_sort_rows_per_s", rows / ours_s, "rows/s", "duckdb_order_by_rows_per_s", rows / duck_s, run_params
        ),
        _line(
            "stream_sort_peak_rss_mib",
            ours_rss,
            "MiB",
            "duckdb_peak_rss_mib",
            duck_rss,
            run_params,
            higher_is_better=False,
        ),
        _line(
            "engine_generation_s",
            generation_s,
            "s",
            None,
            None,
            {"scale": scale, "transactions": rows, "outputs": 5},
            higher_is_better=False,
        ),
    ]


if __name__ == "__main__":
    if sys.argv[1] == "ours":
        child_ours(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "duckdb":
        child_duckdb(sys.argv[2], sys.argv[3], sys.argv[4])

"""One-shot control jobs — SR (P5) and WSP (P6) — as one plain-Python entrypoint.

Dagster launches them through Pipes; an operator can run them by hand:
`python -m fp_platform.control.jobs wsp --run-id ID --max-events-per-output 200`.
"""

from __future__ import annotations

import argparse
import sys

from fp_platform.control import scenario_runner, world_streamer
from fp_platform.handles import Handles, handles
from fp_platform.substrate import bus, db
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.job_channel import Log, job_channel
from fp_platform.substrate.object_store import S3ObjectStore


def job_sr(h: Handles, args: argparse.Namespace, log: Log) -> dict:
    store = S3ObjectStore(h)
    producer = bus.producer(h)
    consumer = bus.scan_consumer(h)
    try:
        with db.connect(h, autocommit=True) as conn:
            return scenario_runner.run_sr(
                h, store, run_evidence(h, args.run_id, store=store), conn, producer, consumer, log
            )
    finally:
        consumer.close()


def job_wsp(h: Handles, args: argparse.Namespace, log: Log) -> dict:
    store = S3ObjectStore(h)
    options = world_streamer.WspOptions(
        max_events_per_output=args.max_events_per_output,
        speedup=args.speedup,
        drill_duplicates=args.drill_duplicates,
        drill_mismatch=args.drill_mismatch,
        drill_drop_context=args.drill_drop_context,
        restart=args.restart,
    )
    consumer = bus.scan_consumer(h)
    try:
        with db.connect(h, autocommit=True) as conn:
            return world_streamer.run_wsp(
                h, store, run_evidence(h, args.run_id, store=store), conn, consumer, options, log, ig_url=args.ig_url
            )
    except world_streamer.WspStopped as exc:
        log(f"WSP stopped: {exc}")
        return {"completed": False, "stopped": str(exc)}
    finally:
        consumer.close()


JOBS = {"sr": job_sr, "wsp": job_wsp}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fp_platform.control.jobs", description=__doc__.splitlines()[0])
    parser.add_argument("job", choices=sorted(JOBS))
    parser.add_argument("--run-id", required=True, help="platform_run_id")
    parser.add_argument("--max-events-per-output", type=int, help="wsp: bounded run (the spec's 20 -> 200)")
    parser.add_argument("--speedup", type=float, help="wsp: pace at this many world seconds per wall second")
    parser.add_argument("--drill-duplicates", type=float, default=0.0, help="wsp: share of events sent twice")
    parser.add_argument(
        "--drill-mismatch",
        type=float,
        default=0.0,
        help="wsp: share of events re-sent with a changed payload (ANOMALY drill)",
    )
    parser.add_argument(
        "--drill-drop-context", type=float, default=0.0, help="wsp: share of flows whose context events are not sent"
    )
    parser.add_argument("--restart", action="store_true", help="wsp: ignore an unfinished session's checkpoint")
    parser.add_argument("--ig-url", help="wsp: IG base URL (default: IG_BASE_URL)")
    args = parser.parse_args(argv)
    h = handles()
    with job_channel() as (log, report):
        report(JOBS[args.job](h, args, log))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`fp-platform bench`: the benchmarks; one JSON line per metric, with its same-run baseline."""

from __future__ import annotations

import argparse
import json

from fp_platform.cli.console import err_console
from fp_platform.contracts.drills import DRILLS
from fp_platform.contracts.phases import PHASE_IDS
from fp_platform.handles import handles


def cmd_bench(args: argparse.Namespace) -> int:
    from fp_platform.substrate import local_stack

    h = handles()
    if h.profile == "local" and args.bench != "learning":  # the learning bench generates and features its own world
        local_stack.up(h)
    log = lambda m: err_console.print(m, highlight=False)  # noqa: E731
    if args.bench == "rtdl":
        from fp_platform.benches import rtdl as rtdl_bench

        lines = rtdl_bench.run(h, args.scale, args.lookups, log)
    elif args.bench == "run":
        from fp_platform.benches import run as run_bench
        from fp_platform.contracts.drills import DEFAULT_DRILLS, check_drills

        drills = () if args.no_drills else check_drills(args.drill or DEFAULT_DRILLS)
        lines = run_bench.run(args.scale, args.until, args.max_events_per_output, drills, err_console, log)
    elif args.bench == "learning":
        from fp_platform.benches import learning as learning_bench

        lines = learning_bench.run(h, args.scale, args.context_signal_strength, args.seed, log)
    elif args.bench == "decision":
        from fp_platform.benches import decision as decision_bench

        lines = decision_bench.run(
            h, args.scale, args.rate, args.seconds, args.sustained_events, args.warmup_events, args.timeout, log
        )
    elif args.bench == "ig-health":
        from fp_platform.benches import ig_health

        lines = ig_health.run(h, args.claims, args.calls, args.port, log)
    elif args.bench == "ig":
        from fp_platform.benches import ingest as ig_bench

        sizes = {1: args.events_batch_1, 100: args.events, 500: args.events}
        lines = ig_bench.run(h, sizes, args.port, log)
    else:
        from fp_platform.benches import world as world_bench

        lines = world_bench.run(h, args.scale, args.bucket_rows, args.duckdb_memory_limit, log=log)
    for line in lines:
        print(json.dumps(line), flush=True)
    if args.bench == "run":  # a whole run: exit 1 if a phase failed
        return 0 if all(v == "PASS" for v in lines[0]["params"]["verdicts"].values()) else 1
    return 0


WORLD_SCALES = ("smoke", "demo", "handbook")  # world.engine.SCALES, named here so `--help` loads no numpy


def _scale(bench: argparse.ArgumentParser, default: str = "demo") -> None:
    """The world size a bench runs on: the same option on every bench that builds or streams a world."""
    bench.add_argument("--scale", choices=WORLD_SCALES, default=default, help=f"world size (default {default})")


def _ig_port(bench: argparse.ArgumentParser) -> None:
    """The port of the IG process a bench starts for itself: the same option on both IG benches."""
    bench.add_argument("--port", type=int, default=18181, help="port of the bench's own IG process")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `bench` to the `fp-platform` parser."""
    p = sub.add_parser("bench", help="benchmarks; one JSON line per metric, with its same-run baseline")
    bench_sub = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    sort = bench_sub.add_parser(
        "stream-sort",
        help="stream sort (S3 in/out, receipts) vs DuckDB ORDER BY, rows/s and peak RSS; plus engine generation time",
    )
    _scale(sort)
    sort.add_argument("--bucket-rows", type=int, default=1_000_000, help="rows held in memory per sort bucket")
    sort.add_argument("--duckdb-memory-limit", default="2GB")
    rt = bench_sub.add_parser(
        "rtdl",
        help="events/s of each RTDL core worker (archive, IEG, OFP, CSFB) on a "
        "world's admitted records, and OFP feature lookup latency p50/p99",
    )
    _scale(rt)
    rt.add_argument("--lookups", type=int, default=5_000, help="OFP lookups timed (default 5000)")
    ig = bench_sub.add_parser(
        "ig",
        help="IG admitted events/s (HTTP+validation+dedupe+receipts+publish) for batch "
        "sizes 1, 100, 500 with p50/p99 latency, vs a raw Kafka produce of the same events",
    )
    ig.add_argument("--events", type=int, default=50_000, help="events per run at batch sizes 100 and 500")
    ig.add_argument("--events-batch-1", type=int, default=2_000, help="events at batch size 1")
    _ig_port(ig)
    igh = bench_sub.add_parser(
        "ig-health",
        help="IG's start-up, health and readiness latency on a run holding many claims, vs a run holding none",
    )
    igh.add_argument("--claims", type=int, default=1_000_000, help="claims (with ADMIT receipts) in the large run")
    igh.add_argument("--calls", type=int, default=200, help="calls timed per endpoint and run")
    _ig_port(igh)
    dec = bench_sub.add_parser(
        "decision",
        help="admission -> published decision latency p50/p95/p99 at a paced "
        "rate and the sustained decisions/s, through the real IG and pack workers",
    )
    _scale(dec)
    dec.add_argument("--rate", type=float, default=1000.0, help="traffic events/s offered in the paced phase")
    dec.add_argument("--seconds", type=float, default=20.0, help="length of the paced phase (capped by the world)")
    dec.add_argument(
        "--sustained-events",
        type=int,
        default=30_000,
        help="traffic events offered as fast as IG takes them (capped by the world)",
    )
    dec.add_argument("--warmup-events", type=int, default=500, help="traffic events sent first, not measured")
    dec.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the lane to catch up")
    lb = bench_sub.add_parser(
        "learning",
        help="model selection under the handbook protocol (OFS features, prequential folds), the chosen model "
        "and the book's random forest on the test week, vs the book's rows; OFS rows/s, selection and training time",
    )
    _scale(lb, default="handbook")
    lb.add_argument(
        "--context-signal-strength",
        type=float,
        default=0.0,
        help="fraud's context signal (default 0: pure handbook parity)",
    )
    lb.add_argument(
        "--seed",
        type=int,
        default=0,
        help="world seed (default 0: the book's seeds; any other also changes the customer and terminal profiles)",
    )
    p.set_defaults(func=cmd_bench)

    br = bench_sub.add_parser(
        "run",
        help="a whole run (fp-platform run): wall time, events/s, seconds per phase "
        "and Dagster's orchestration share of the wall time; exit 1 if a phase failed",
    )
    _scale(br)
    br.add_argument("--until", choices=PHASE_IDS, default=None, help="stop after this phase (default: every one)")
    br.add_argument("--max-events-per-output", type=int, default=None, metavar="N")
    br.add_argument(
        "--drill",
        action="append",
        choices=list(DRILLS),
        metavar="DRILL",
        help="drills for the run (default: the run's defaults)",
    )
    br.add_argument("--no-drills", action="store_true")
    br.set_defaults(func=cmd_bench)

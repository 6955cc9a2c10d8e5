"""`fp-platform`: the operator's command line (stack, run, evidence, cases, labels, ui, db, handles)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fp_platform.handles import HandleError, handles

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def _fail(message: str, code: int = 2) -> int:
    err_console.print(f"[bold red]error:[/] {message}")
    return code


# --- stack ---------------------------------------------------------------------------------------
def _print_stack(statuses) -> None:
    table = Table(title="local substrate", title_justify="left")
    for col in ("component", "endpoint", "version", "health", "pid", "detail"):
        table.add_column(col)
    for s in statuses:
        health = "[green]healthy[/]" if s.healthy else "[red]down[/]"
        table.add_row(s.name, s.endpoint, s.version, health, str(s.pid or "-"), s.detail)
    console.print(table)


def cmd_stack(args: argparse.Namespace) -> int:
    from fp_platform.substrate import local_stack

    h = handles()
    try:
        if args.action == "up":
            statuses = local_stack.up(h, bus_storage=args.bus_storage, progress=lambda m: console.print(f"… {m}"))
            _print_stack(statuses)
            return 0 if all(s.healthy for s in statuses) else 1
        if args.action == "down":
            from fp_platform.operate import daemons

            stopped = daemons.stop_all() + local_stack.down(h, purge=args.purge)
            purged = "; state purged" if args.purge else ""
            console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}{purged}")
            return 0
        statuses = local_stack.status(h)
        _print_stack(statuses)
        return 0 if all(s.healthy for s in statuses) else 1
    except local_stack.StackError as exc:
        return _fail(str(exc))


# --- run -----------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from fp_platform import runner

    if args.asset and not args.run_id:
        return _fail("--asset re-materialises assets of an existing run; give --run-id too")
    from fp_platform.contracts.drills import DEFAULT_DRILLS, check_drills

    try:
        drills = () if args.no_drills else check_drills(args.drill or DEFAULT_DRILLS)
    except ValueError as exc:
        return _fail(str(exc))
    return runner.main(
        until=args.until,
        scale=args.scale,
        run_id=args.run_id,
        console=console,
        assets=args.asset,
        max_events_per_output=args.max_events_per_output,
        drills=drills,
        full=args.full,
    )


# --- ig ------------------------------------------------------------------------------------------
def cmd_ig(args: argparse.Namespace) -> int:
    h = handles()
    if args.action == "serve":
        from fp_platform.control.ig.__main__ import serve_from_args

        return serve_from_args(args)
    if args.action == "reconcile":
        from fp_platform.control.ig.reconcile import reconcile_now

        counts = reconcile_now(h, args.run_id, log=lambda m: console.print(f"… {m}"))
        console.print(json.dumps(counts))
        return 0 if counts["unresolved"] == 0 else 1
    from fp_platform.operate import daemons

    record = daemons.running(h.get("COMPONENT_ID_IG"))
    if record is None:
        console.print("ingestion gate: not running (started by `fp-platform run` or the supervisor)")
        return 1
    console.print(
        json.dumps(
            {
                "pid": record.pid,
                "platform_run_id": record.platform_run_id,
                "log": record.log,
                "started_at_utc": record.started_at_utc,
            }
        )
    )
    return 0


# --- operate -------------------------------------------------------------------------------------
def cmd_operate(args: argparse.Namespace) -> int:
    from rich.table import Table

    from fp_platform.operate import packs, supervisor
    from fp_platform.operate.active_run import active_run_file
    from fp_platform.substrate import db

    h = handles()
    try:
        chosen = tuple(packs.pack(h, pid) for pid in args.packs) if args.packs else packs.SPINE_PACKS
    except KeyError as exc:
        return _fail(str(exc.args[0]))
    with db.connect(h, autocommit=True) as conn:
        if args.action == "down":
            stopped = supervisor.down(h, conn, chosen)
            console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
            return 0
        if args.action == "up":
            run_file = active_run_file(h)
            run_id = args.run_id or (run_file.read_text().strip() if run_file.exists() else None)
            if not run_id:
                return _fail("no run scope: pass --run-id or run `fp-platform run` first (it records the active run)")
            statuses = supervisor.reconcile(h, conn, run_id, chosen, log=lambda m: console.print(f"… {m}"))
        else:
            statuses = supervisor.status(h, conn, chosen)
    table = Table(title_justify="left")
    for col in ("pack", "worker", "state", "run", "pid", "restarts", "health", "beat age s", "log"):
        table.add_column(col)
    for st in statuses:
        table.add_row(
            st.pack_id,
            st.component,
            st.state,
            st.platform_run_id or "-",
            str(st.pid or "-"),
            str(st.restarts),
            st.health_state or "-",
            str(st.heartbeat_age_s or "-"),
            st.log or st.detail,
        )
    console.print(table)
    return 0 if args.action != "up" or all(st.up for st in statuses) else 1


# --- evidence ------------------------------------------------------------------------------------
def cmd_evidence(args: argparse.Namespace) -> int:
    from fp_platform.contracts.evidence import EvidenceError
    from fp_platform.substrate.evidence_store import run_evidence

    writer = run_evidence(handles(), args.platform_run_id)
    names = writer.list()
    if not names:
        return _fail(f"no evidence for {args.platform_run_id} at s3://{writer.bucket}/{writer.run_root}", 1)
    if args.action == "ls":
        for name in names:
            console.print(writer.uri(name), highlight=False, soft_wrap=True)
        return 0
    if args.action == "get":
        if not args.target:
            return _fail("evidence get needs a file name, e.g. run.json")
        try:
            raw = writer.store.get(writer.bucket, writer.key(args.target))
        except (FileNotFoundError, EvidenceError):
            return _fail(f"{writer.uri(args.target)} not found; `fp-platform evidence ls {args.platform_run_id}`", 1)
        if args.target.endswith(".json"):
            sys.stdout.write(json.dumps(json.loads(raw), indent=2, sort_keys=True) + "\n")
        else:  # the governance log (JSON lines), the HTML report
            sys.stdout.buffer.write(raw)
        return 0
    out_dir = Path(args.target or f"evidence-{args.platform_run_id}")
    for name in names:
        dest = out_dir / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(writer.store.get(writer.bucket, writer.key(name)))
    console.print(f"exported {len(names)} files to {out_dir}")
    return 0


# --- cases and labels ----------------------------------------------------------------------------
def cmd_cases(args: argparse.Namespace) -> int:
    from fp_platform.case_labels import cm
    from fp_platform.substrate import db

    with db.connect(handles()) as conn:
        if args.action == "show":
            events = cm.timeline(conn, args.target)
            if not events:
                return _fail(f"no case {args.target}; `fp-platform cases list RUN_ID` lists a run's cases", 1)
            table = Table(title=f"case {args.target} ({events[0]['platform_run_id']})", title_justify="left")
            for col in ("seq", "event", "actor", "world time", "detail", "origin"):
                table.add_column(col)
            for e in events:
                table.add_row(
                    str(e["seq"]),
                    e["event_type"],
                    e["actor"],
                    e["at"].isoformat(),
                    json.dumps(e["detail"], sort_keys=True),
                    f"{e['origin_topic']}[{e['origin_partition']}]@{e['origin_offset']}",
                )
            console.print(table)
            return 0
        rows = cm.cases(conn, args.target, args.status, args.limit)
    if not rows:
        return _fail(f"no cases{' ' + args.status if args.status else ''} for run {args.target}", 1)
    table = Table(title=f"cases of {args.target} (first {len(rows)})", title_justify="left")
    for col in ("case_id", "status", "trigger", "opened (world)", "assigned to", "disposition", "evidence refs"):
        table.add_column(col)
    for c in rows:
        table.add_row(
            c["case_id"],
            c["status"],
            c["trigger_reason"],
            c["opened_at"].isoformat(),
            c["assigned_to"] or "-",
            c["disposition"] or "-",
            str(c["evidence_refs"]),
        )
    console.print(table)
    return 0


def cmd_labels(args: argparse.Namespace) -> int:
    from datetime import datetime

    from fp_platform.contracts import labels
    from fp_platform.substrate import db

    try:
        at = datetime.fromisoformat(args.at)
    except ValueError:
        return _fail(f"--at {args.at!r} is not an ISO time (e.g. 2018-04-20T00:00:00Z)")
    if at.tzinfo is None:
        return _fail("--at needs a timezone (e.g. a trailing Z)")
    with db.connect(handles()) as conn:
        known = labels.as_of(conn, args.platform_run_id, at, args.event_id or None)
    for _, label in sorted(known.items()):
        sys.stdout.write(
            json.dumps(
                {
                    **label,
                    "effective_at": label["effective_at"].isoformat(),
                    "observed_at": label["observed_at"].isoformat(),
                },
                sort_keys=True,
            )
            + "\n"
        )
    err_console.print(f"{len(known)} subjects labelled as of {at.isoformat()}")
    return 0


# --- db ------------------------------------------------------------------------------------------
def cmd_db(args: argparse.Namespace) -> int:
    from fp_platform.substrate import db

    h = handles()
    if args.action == "migrate":
        console.print(f"schema at {db.migrate(h)}")
        return 0
    current, head = db.current_revision(h), db.head_revision()
    console.print(f"schema {current or 'none'} (head {head})")
    return 0 if current == head else 1


# --- ui ------------------------------------------------------------------------------------------
def cmd_ui(args: argparse.Namespace) -> int:
    from fp_platform.operate import dagster_home

    return dagster_home.serve_ui(handles(), host=args.host, port=args.port, console=console)


# --- bench ---------------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    from fp_platform.substrate import local_stack

    h = handles()
    if h.profile == "local":
        local_stack.up(h)
    log = lambda m: err_console.print(m, highlight=False)  # noqa: E731
    if args.bench == "rtdl":
        from fp_platform.benches import rtdl as rtdl_bench

        lines = rtdl_bench.run(h, args.scale, args.lookups, log)
        for line in lines:
            print(json.dumps(line), flush=True)
        return 0
    if args.bench == "run":
        from fp_platform.benches import run as run_bench
        from fp_platform.contracts.drills import DEFAULT_DRILLS, check_drills

        drills = () if args.no_drills else check_drills(args.drill or DEFAULT_DRILLS)
        lines = run_bench.run(args.scale, args.until, args.max_events_per_output, drills, err_console, log)
        for line in lines:
            print(json.dumps(line), flush=True)
        return 0 if all(v == "PASS" for v in lines[0]["params"]["verdicts"].values()) else 1
    if args.bench == "learning":
        from fp_platform.benches import learning as learning_bench

        lines = learning_bench.run(h, args.scale, args.context_signal_strength, log)
    elif args.bench == "decision":
        from fp_platform.benches import decision as decision_bench

        lines = decision_bench.run(
            h, args.scale, args.rate, args.seconds, args.sustained_events, args.warmup_events, args.timeout, log
        )
    elif args.bench == "ig":
        from fp_platform.benches import ingest as ig_bench

        sizes = {1: args.events_batch_1, 100: args.events, 500: args.events}
        lines = ig_bench.run(h, sizes, args.port, log)
    else:
        from fp_platform.benches import world as world_bench

        lines = world_bench.run(h, args.scale, args.bucket_rows, args.duckdb_memory_limit, log=log)
    for line in lines:
        print(json.dumps(line), flush=True)
    return 0


# --- job / worker --------------------------------------------------------------------------------
# The one-shot jobs the phase assets launch through Pipes, and the workers the supervisor starts: each is also
# `python -m <module> ...`; here they are in `fp-platform --help` too.
JOB_MODULES = {
    "world": "fp_platform.world.jobs",
    "control": "fp_platform.control.jobs",
    "learning": "fp_platform.learning.jobs",
    "obs_gov": "fp_platform.obs_gov.jobs",
    "shadow": "fp_platform.rtdl.shadow",
}


def worker_planes() -> tuple[tuple, ...]:
    """The workers of each plane that runs workers (`python -m fp_platform.<plane> <component>`)."""
    from fp_platform.case_labels.__main__ import CASE_LABELS_WORKERS
    from fp_platform.obs_gov.__main__ import OBS_GOV_WORKERS
    from fp_platform.rtdl.__main__ import WORKERS

    return WORKERS, CASE_LABELS_WORKERS, OBS_GOV_WORKERS


def cmd_job(args: argparse.Namespace) -> int:
    import importlib

    return importlib.import_module(JOB_MODULES[args.plane]).main(args.args)


def cmd_worker(args: argparse.Namespace) -> int:
    from fp_platform.substrate.worker import worker_main

    h = handles()
    known = []
    for workers in worker_planes():
        components = [h.get(w.component_key) for w in workers]
        if args.component in components:
            return worker_main(workers, "fp-platform worker", [args.component, *args.args])
        known += components
    return _fail(
        f"unknown worker {args.component!r}; workers: {', '.join(sorted(known))} "
        "(the ingestion gate: fp-platform ig serve)"
    )


# --- env ---------------------------------------------------------------------------------------
def cmd_env(args: argparse.Namespace) -> int:
    import shlex

    from fp_platform.operate import dagster_home

    for key, value in dagster_home.prepare(handles()).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


# --- handles -------------------------------------------------------------------------------------
def cmd_handles(args: argparse.Namespace) -> int:
    h = handles()
    if args.key:
        try:
            value = h.get(args.key)
        except HandleError as exc:
            return _fail(str(exc), 1)
        console.print_json(json.dumps(value)) if isinstance(value, dict) else print(value)
        return 0
    for key in sorted(h.values):
        print(f"{key}={json.dumps(h.values[key])}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from fp_platform.contracts.phases import PHASE_IDS

    parser = argparse.ArgumentParser(
        prog="fp-platform",
        description="Fraud platform operator CLI. Profile from FP_PROFILE (local|dev_min|dev_full; default local).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("stack", help="local substrate: SeaweedFS S3, Tansu Kafka, Postgres on 127.0.0.1")
    stack_sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = stack_sub.add_parser("up", help="start (or restart after a crash) every component; idempotent")
    up.add_argument(
        "--bus-storage",
        choices=("memory", "s3"),
        default=None,
        help="Tansu storage: memory (default) or s3 on SeaweedFS for a durable bus; remembered",
    )
    down = stack_sub.add_parser("down", help="stop every component started by `stack up`")
    down.add_argument("--purge", action="store_true", help="also delete all local data under .fp/")
    stack_sub.add_parser("status", help="each component's endpoint, version and health")
    p.set_defaults(func=cmd_stack)

    p = sub.add_parser("run", help="create a platform run and materialise its phases in-process")
    p.add_argument(
        "--until",
        choices=PHASE_IDS,
        default=None,
        help="stop after this phase, in one run (default: P11, the spine's closure); with --full too, one"
        " run up to this phase instead of the whole lifecycle",
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="the whole lifecycle: spine + learning through promotion (P1..P15), a second spine run"
        " deciding with the promoted bundle (P1..P11), then the P16 verdict on the first run",
    )
    p.add_argument(
        "--scale",
        choices=("smoke", "demo", "handbook"),
        default=None,
        help="world scale (default demo; an existing run keeps the scale it was pinned with)",
    )
    p.add_argument(
        "--run-id", default=None, help="re-materialise an existing platform_run_id instead of creating a new one"
    )
    p.add_argument(
        "--asset",
        action="append",
        default=[],
        metavar="KEY",
        help="with --run-id: materialise only this asset (repeatable), e.g. stream_view/traffic_fraud",
    )
    p.add_argument(
        "--max-events-per-output",
        type=int,
        default=None,
        metavar="N",
        help="bounded stream: WSP sends the first N events of each output (default: all)",
    )
    from fp_platform.contracts.drills import DEFAULT_DRILLS, DRILLS

    p.add_argument(
        "--drill",
        action="append",
        choices=list(DRILLS),
        metavar="DRILL",
        help=f"an incident drill for the run (repeatable): {', '.join(DRILLS)}; default "
        f"{' + '.join(DEFAULT_DRILLS)}. Each leaves drills/<drill>.json with expected vs observed",
    )
    p.add_argument("--no-drills", action="store_true", help="run without any drill")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("ig", help="the Ingestion Gate service: serve, reconcile in-doubt publishes, status")
    ig_sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = ig_sub.add_parser("serve", help="run IG in the foreground for one run")
    from fp_platform.control.ig.__main__ import add_serve_arguments

    add_serve_arguments(serve)
    rec = ig_sub.add_parser("reconcile", help="resolve PUBLISH_AMBIGUOUS / in-doubt claims from the topics")
    rec.add_argument("--run-id", default=None, help="only this run (default: every run)")
    ig_sub.add_parser("status", help="the IG daemon's pid, run and log")
    p.set_defaults(func=cmd_ig)

    p = sub.add_parser("operate", help="the spine packs' daemons (local supervisor): up, down, status")
    p.add_argument(
        "action",
        choices=["up", "down", "status"],
        help="up: start/restart every worker for the run; down: stop them; status: show them",
    )
    p.add_argument(
        "packs",
        nargs="*",
        metavar="PACK",
        help="pack ids (control_ingress, rtdl_core, ...); default: all five spine packs",
    )
    p.add_argument("--run-id", help="run scope for `up` (default: the active run recorded by `fp-platform run`)")
    p.set_defaults(func=cmd_operate)

    p = sub.add_parser("evidence", help="list, print or export a run's evidence bundle")
    p.add_argument("action", choices=("ls", "get", "export"))
    p.add_argument("platform_run_id")
    p.add_argument("target", nargs="?", help="get: file name (e.g. run.json); export: directory")
    p.set_defaults(func=cmd_evidence)

    p = sub.add_parser("cases", help="the investigator's view of case management: a run's cases, one case's timeline")
    p.add_argument("action", choices=("list", "show"))
    p.add_argument("target", help="list: a platform_run_id; show: a case_id")
    p.add_argument("--status", choices=("OPEN", "ASSIGNED", "CLOSED"), help="list: only cases in this state")
    p.add_argument("--limit", type=int, default=50, help="list: at most this many cases (default 50)")
    p.set_defaults(func=cmd_cases)

    p = sub.add_parser(
        "labels", help="the label store's as-of query: the label known for each subject at a world time (JSON lines)"
    )
    p.add_argument("platform_run_id")
    p.add_argument("--at", required=True, help="world time, ISO with zone (e.g. 2018-04-20T00:00:00Z)")
    p.add_argument("--event-id", action="append", help="only this transaction event (repeatable)")
    p.set_defaults(func=cmd_labels)

    p = sub.add_parser("bench", help="benchmarks; one JSON line per metric, with its same-run baseline")
    bench_sub = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    sort = bench_sub.add_parser(
        "stream-sort",
        help="stream sort (S3 in/out, receipts) vs DuckDB ORDER BY, rows/s and peak RSS; plus engine generation time",
    )
    sort.add_argument("--scale", choices=("smoke", "demo", "handbook"), default="demo")
    sort.add_argument("--bucket-rows", type=int, default=1_000_000, help="rows held in memory per sort bucket")
    sort.add_argument("--duckdb-memory-limit", default="2GB")
    rt = bench_sub.add_parser(
        "rtdl",
        help="events/s of each RTDL core worker (archive, IEG, OFP, CSFB) on a "
        "world's admitted records, and OFP feature lookup latency p50/p99",
    )
    rt.add_argument("--scale", default="demo", choices=["smoke", "demo", "handbook"], help="world size (default demo)")
    rt.add_argument("--lookups", type=int, default=5_000, help="OFP lookups timed (default 5000)")
    ig = bench_sub.add_parser(
        "ig",
        help="IG admitted events/s (HTTP+validation+dedupe+receipts+publish) for batch "
        "sizes 1, 100, 500 with p50/p99 latency, vs a raw Kafka produce of the same events",
    )
    ig.add_argument("--events", type=int, default=50_000, help="events per run at batch sizes 100 and 500")
    ig.add_argument("--events-batch-1", type=int, default=2_000, help="events at batch size 1")
    ig.add_argument("--port", type=int, default=18181, help="port of the bench's own IG process")
    dec = bench_sub.add_parser(
        "decision",
        help="admission -> published decision latency p50/p95/p99 at a paced "
        "rate and the sustained decisions/s, through the real IG and pack workers",
    )
    dec.add_argument("--scale", default="demo", choices=["smoke", "demo", "handbook"], help="world size (default demo)")
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
        help="model quality under the handbook protocol (OFS features, MF's "
        "LightGBM) vs the book's published row; OFS rows/s and training time",
    )
    lb.add_argument("--scale", choices=("smoke", "demo", "handbook"), default="handbook")
    lb.add_argument(
        "--context-signal-strength",
        type=float,
        default=0.0,
        help="fraud's context signal (default 0: pure handbook parity)",
    )
    p.set_defaults(func=cmd_bench)

    br = bench_sub.add_parser(
        "run",
        help="a whole run (fp-platform run): wall time, events/s, seconds per phase "
        "and Dagster's orchestration share of the wall time; exit 1 if a phase failed",
    )
    br.add_argument("--scale", choices=("smoke", "demo", "handbook"), default="demo")
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

    p = sub.add_parser("ui", help="Dagster webserver + daemon on the platform instance")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser(
        "job",
        help="run a phase's one-shot job in the foreground (what its asset launches through "
        "Pipes): world (engine, seal, stream-sort, check), control (sr, wsp), learning (basis, ofs, "
        "train, compatibility, promote), obs_gov (report, verdict), shadow (score)",
    )
    p.add_argument("plane", choices=sorted(JOB_MODULES))
    p.add_argument("args", nargs=argparse.REMAINDER, help="the job and its options (`fp-platform job world --help`)")
    p.set_defaults(func=cmd_job)

    p = sub.add_parser(
        "worker",
        help="run one worker in the foreground for a run (what the supervisor starts): "
        "archive_writer, decision_processor, action_layer, case_management, label_store, ...",
    )
    p.add_argument("component", help="the worker's component id")
    p.add_argument("args", nargs=argparse.REMAINDER, help="--run-id RUN [--group G] [--until-idle SECONDS]")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "env",
        help="print exports (DAGSTER_HOME, ...) so plain `dagster` commands use the platform "
        'instance: eval "$(fp-platform env)"',
    )
    p.set_defaults(func=cmd_env)

    p = sub.add_parser("db", help="platform database schema")
    p.add_argument("action", choices=("migrate", "status"))
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("handles", help="print the handles registry of the current profile (or one key)")
    p.add_argument("key", nargs="?")
    p.set_defaults(func=cmd_handles)
    return parser


def main(argv: list[str] | None = None) -> int:
    from fp_platform.substrate.local_stack import StackError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (HandleError, StackError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())

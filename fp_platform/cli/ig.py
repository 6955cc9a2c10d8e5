"""`fp-platform ig`: the ingestion gate service — serve, reconcile in-doubt publishes, status."""

from __future__ import annotations

import argparse
import json

from fp_platform.cli.console import console
from fp_platform.handles import handles


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


def register(sub: argparse._SubParsersAction) -> None:
    """Add `ig` to the `fp-platform` parser."""
    p = sub.add_parser("ig", help="the Ingestion Gate service: serve, reconcile in-doubt publishes, status")
    ig_sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = ig_sub.add_parser("serve", help="run IG in the foreground for one run")
    from fp_platform.control.ig.__main__ import add_serve_arguments

    add_serve_arguments(serve)
    rec = ig_sub.add_parser("reconcile", help="resolve PUBLISH_AMBIGUOUS / in-doubt claims from the topics")
    rec.add_argument("--run-id", default=None, help="only this run (default: every run)")
    ig_sub.add_parser("status", help="the IG daemon's pid, run and log")
    p.set_defaults(func=cmd_ig)

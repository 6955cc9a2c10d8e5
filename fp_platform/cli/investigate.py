"""`fp-platform cases` and `fp-platform labels`: the investigator's read-only views of a run."""

from __future__ import annotations

import argparse
import json
import sys

from rich.table import Table

from fp_platform.cli.console import CommandError, console, err_console
from fp_platform.handles import handles


def cmd_cases(args: argparse.Namespace) -> int:
    from fp_platform.case_labels import case_management
    from fp_platform.substrate import db

    with db.connect(handles()) as conn:
        if args.action == "show":
            events = case_management.timeline(conn, args.target)
            if not events:
                raise CommandError(f"no case {args.target}; `fp-platform cases list RUN_ID` lists a run's cases", 1)
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
        rows = case_management.cases(conn, args.target, args.status, args.limit)
    if not rows:
        raise CommandError(f"no cases{' ' + args.status if args.status else ''} for run {args.target}", 1)
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
        raise CommandError(f"--at {args.at!r} is not an ISO time (e.g. 2018-04-20T00:00:00Z)") from None
    if at.tzinfo is None:
        raise CommandError("--at needs a timezone (e.g. a trailing Z)")
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


def register(sub: argparse._SubParsersAction) -> None:
    """Add `cases`, `labels` to the `fp-platform` parser."""
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

"""`fp-platform stack`: the local substrate (SeaweedFS S3, Tansu Kafka, Postgres on 127.0.0.1)."""

from __future__ import annotations

import argparse

from rich.table import Table

from fp_platform.cli.console import CommandError, console
from fp_platform.handles import handles


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
        raise CommandError(str(exc)) from None


def register(sub: argparse._SubParsersAction) -> None:
    """Add `stack` to the `fp-platform` parser."""
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

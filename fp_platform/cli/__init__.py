"""`fp-platform`: the operator's command line. One module per command group, each registering its parser
next to its handler; this module only assembles them and turns refusals into exit codes."""

from __future__ import annotations

import argparse

from fp_platform.cli import bench, evidence, ig, investigate, jobs, operate, registry, run, serve, smoke, stack, ui
from fp_platform.cli.console import CommandError, err_console
from fp_platform.contracts.ids import InvalidRunId
from fp_platform.handles import HandleError

# The order of `fp-platform --help`: bring up, run, serve, operate, read, measure, look, run parts, inspect, check.
GROUPS = (stack, run, ig, serve, operate, evidence, investigate, bench, ui, jobs, registry, smoke)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fp-platform",
        description="Fraud platform operator CLI. Profile from FP_PROFILE (local|dev_min|dev_full; default local).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def _unreachable(exc: Exception) -> str | None:
    """Which substrate a connection failure is about (the object store, Postgres), else None: an operator gets
    one line instead of a traceback when the stack is down."""
    import sys

    if "botocore" in sys.modules:
        from botocore.exceptions import EndpointConnectionError

        if isinstance(exc, EndpointConnectionError):
            return "the object store"
    if "psycopg" in sys.modules:
        import psycopg

        if isinstance(exc, psycopg.OperationalError):
            return "Postgres"
    return None


def main(argv: list[str] | None = None) -> int:
    from fp_platform.substrate.local_stack import StackError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CommandError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        return exc.code
    except (HandleError, StackError, InvalidRunId) as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        return 2
    except Exception as exc:
        if (what := _unreachable(exc)) is None:
            raise
        err_console.print(f"[bold red]error:[/] cannot use {what} ({exc}); is the stack up? `fp-platform stack status`")
        return 3
    except KeyboardInterrupt:
        err_console.print("[bold red]error:[/] interrupted")
        return 130

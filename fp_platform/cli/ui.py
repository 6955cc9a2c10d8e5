"""`fp-platform ui` and `fp-platform env`: the Dagster webserver and daemon on the platform instance."""

from __future__ import annotations

import argparse
import shlex

from fp_platform.cli.console import console
from fp_platform.handles import handles


def cmd_ui(args: argparse.Namespace) -> int:
    from fp_platform.operate import dagster_home

    return dagster_home.serve_ui(handles(), host=args.host, port=args.port, console=console)


def cmd_env(args: argparse.Namespace) -> int:

    from fp_platform.operate import dagster_home

    for key, value in dagster_home.prepare(handles()).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `ui`, `env` to the `fp-platform` parser."""
    p = sub.add_parser("ui", help="Dagster webserver + daemon on the platform instance")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_ui)
    p = sub.add_parser(
        "env",
        help="print exports (DAGSTER_HOME, ...) so plain `dagster` commands use the platform "
        'instance: eval "$(fp-platform env)"',
    )
    p.set_defaults(func=cmd_env)

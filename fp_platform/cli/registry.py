"""`fp-platform db` and `fp-platform handles`: the platform database schema and the handles registry."""

from __future__ import annotations

import argparse
import json

from fp_platform.cli.console import CommandError, console
from fp_platform.handles import HandleError, handles


def cmd_db(args: argparse.Namespace) -> int:
    from fp_platform.substrate import db

    h = handles()
    if args.action == "migrate":  # as the owner (RDS master on dev_min): app role, databases, schema, grants
        console.print(db.bootstrap(h))
        return 0
    current, head = db.current_revision(h), db.head_revision()
    console.print(f"schema {current or 'none'} (head {head})")
    return 0 if current == head else 1


def cmd_handles(args: argparse.Namespace) -> int:
    h = handles()
    if args.key:
        try:
            value = h.get(args.key)
        except HandleError as exc:
            raise CommandError(str(exc), 1) from None
        console.print_json(json.dumps(value)) if isinstance(value, dict) else print(value)
        return 0
    for key in sorted(h.values):
        print(f"{key}={json.dumps(h.values[key])}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `db`, `handles` to the `fp-platform` parser."""
    p = sub.add_parser("db", help="platform database schema")
    p.add_argument("action", choices=("migrate", "status"))
    p.set_defaults(func=cmd_db)
    p = sub.add_parser("handles", help="print the handles registry of the current profile (or one key)")
    p.add_argument("key", nargs="?")
    p.set_defaults(func=cmd_handles)

"""`fp-platform evidence`: list, print or export a run's evidence bundle."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fp_platform.cli.console import CommandError, console
from fp_platform.handles import handles


def cmd_evidence(args: argparse.Namespace) -> int:
    from fp_platform.contracts.evidence import EvidenceError
    from fp_platform.substrate.evidence_store import run_evidence

    writer = run_evidence(handles(), args.platform_run_id)
    names = writer.list()
    if not names:
        raise CommandError(f"no evidence for {args.platform_run_id} at s3://{writer.bucket}/{writer.run_root}", 1)
    if args.action == "ls":
        for name in names:
            console.print(writer.uri(name), highlight=False, soft_wrap=True)
        return 0
    if args.action == "get":
        if not args.target:
            raise CommandError("evidence get needs a file name, e.g. run.json")
        try:
            raw = writer.store.get(writer.bucket, writer.key(args.target))
        except (FileNotFoundError, EvidenceError):
            raise CommandError(
                f"{writer.uri(args.target)} not found; `fp-platform evidence ls {args.platform_run_id}`", 1
            ) from None
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


def register(sub: argparse._SubParsersAction) -> None:
    """Add `evidence` to the `fp-platform` parser."""
    p = sub.add_parser("evidence", help="list, print or export a run's evidence bundle")
    p.add_argument("action", choices=("ls", "get", "export"))
    p.add_argument("platform_run_id")
    p.add_argument("target", nargs="?", help="get: file name (e.g. run.json); export: directory")
    p.set_defaults(func=cmd_evidence)

"""`fp-platform smoke`: the image's start-up check (run-process P(-1).6.2). It imports the one Definitions, resolves
the asset graph, loads the profile's handles and finds every entrypoint, and reads no secret and reaches no server,
so it runs in CI on a freshly built image with nothing else around (`docker run --rm <image> smoke`) and in P(-1)."""

from __future__ import annotations

import argparse
import json

from fp_platform.cli.console import console, err_console
from fp_platform.handles import handles


def cmd_smoke(args: argparse.Namespace) -> int:
    from fp_platform.operate.packaging import smoke_report

    report = smoke_report(handles())
    try:
        from fp_platform.definitions import defs

        graph = defs.resolve_asset_graph()
        report["definitions"] = {
            "assets": len(graph.materializable_asset_keys),
            "checks": len(graph.asset_check_keys),
            "jobs": len(list(defs.resolve_all_job_defs())),
        }
    except Exception as exc:  # noqa: BLE001 - the smoke's whole point: report any failure to load, exit non-zero
        report["problems"].append(f"definitions: {type(exc).__name__}: {exc}")
        report["ok"] = False
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        out = console if report["ok"] else err_console
        defs_line = report.get("definitions") or {}
        out.print(
            f"smoke {'[green]OK[/]' if report['ok'] else '[red]FAILED[/]'}: profile {report['profile']}, "
            f"{defs_line.get('assets', 0)} assets, {defs_line.get('checks', 0)} checks, {report['topics']} topics, "
            f"{len(report['entrypoints'])} entrypoints"
        )
        for problem in report["problems"]:
            out.print(f"  [red]{problem}[/]")
    return 0 if report["ok"] else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add `smoke` to the `fp-platform` parser."""
    p = sub.add_parser(
        "smoke", help="start-up check without secrets or servers: Definitions load, handles resolve, entrypoints exist"
    )
    p.add_argument("--json", action="store_true", help="one JSON line (what P(-1) and CI read)")
    p.set_defaults(func=cmd_smoke)

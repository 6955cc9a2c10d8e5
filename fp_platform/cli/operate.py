"""`fp-platform operate`: the spine packs' daemons under the local supervisor."""

from __future__ import annotations

import argparse

from rich.table import Table

from fp_platform.cli.console import CommandError, console
from fp_platform.handles import handles


def cmd_operate(args: argparse.Namespace) -> int:

    from fp_platform.operate import packs, supervisor
    from fp_platform.operate.active_run import read_active_run
    from fp_platform.substrate import db

    h = handles()
    try:
        chosen = tuple(packs.pack(h, pid) for pid in args.packs) if args.packs else packs.SPINE_PACKS
    except KeyError as exc:
        raise CommandError(str(exc.args[0])) from None
    with db.connect(h, autocommit=True) as conn:
        if args.action == "down":
            stopped = supervisor.down(h, conn, chosen)
            console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
            return 0
        if args.action == "up":
            run_id = args.run_id or read_active_run(h)
            if not run_id:
                raise CommandError(
                    "no run scope: pass --run-id or run `fp-platform run` first (it records the active run)"
                )
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


def register(sub: argparse._SubParsersAction) -> None:
    """Add `operate` to the `fp-platform` parser."""
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

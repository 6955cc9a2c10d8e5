"""`fp-platform run`: create a platform run and materialise its phases in-process."""

from __future__ import annotations

import argparse

from fp_platform.cli.console import CommandError, console
from fp_platform.contracts.drills import DEFAULT_DRILLS, DRILLS
from fp_platform.contracts.phases import PHASE_IDS


def cmd_run(args: argparse.Namespace) -> int:
    from fp_platform import runner

    if args.asset and not args.run_id:
        raise CommandError("--asset re-materialises assets of an existing run; give --run-id too")
    from fp_platform.contracts.drills import check_drills

    try:
        drills = () if args.no_drills else check_drills(args.drill or DEFAULT_DRILLS)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    request = runner.RunRequest(
        until=args.until,
        scale=args.scale,
        run_id=args.run_id,
        assets=tuple(args.asset),
        max_events_per_output=args.max_events_per_output,
        drills=drills,
        full=args.full,
    )
    return runner.main(request, console)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `run` to the `fp-platform` parser."""
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

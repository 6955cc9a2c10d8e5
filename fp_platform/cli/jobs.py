"""`fp-platform job` and `fp-platform worker`: the one-shot jobs and workers, in the foreground.

Each is also `python -m <module> ...` (what Pipes and the supervisor start); here they are in `--help` too.
"""

from __future__ import annotations

import argparse
import importlib

from fp_platform.cli.console import CommandError
from fp_platform.handles import handles

# The one-shot jobs the phase assets launch through Pipes, and the workers the supervisor starts: each is also
# `python -m <module> ...`; here they are in `fp-platform --help` too.
JOB_MODULES = {
    "world": "fp_platform.world.jobs",
    "control": "fp_platform.control.jobs",
    "learning": "fp_platform.learning.jobs",
    "obs_gov": "fp_platform.obs_gov.jobs",
    "shadow": "fp_platform.rtdl.shadow",
}


def worker_planes() -> tuple[tuple, ...]:
    """The workers of each plane that runs workers (`python -m fp_platform.<plane> <component>`)."""
    from fp_platform.case_labels.__main__ import CASE_LABELS_WORKERS
    from fp_platform.obs_gov.__main__ import OBS_GOV_WORKERS
    from fp_platform.rtdl.__main__ import WORKERS

    return WORKERS, CASE_LABELS_WORKERS, OBS_GOV_WORKERS


def cmd_job(args: argparse.Namespace) -> int:

    return importlib.import_module(JOB_MODULES[args.plane]).main(args.args)


def cmd_worker(args: argparse.Namespace) -> int:
    from fp_platform.substrate.worker import worker_main

    h = handles()
    known = []
    for workers in worker_planes():
        components = [h.get(w.identity.component_key) for w in workers]
        if args.component in components:
            return worker_main(workers, "fp-platform worker", [args.component, *args.args])
        known += components
    raise CommandError(
        f"unknown worker {args.component!r}; workers: {', '.join(sorted(known))} "
        "(the ingestion gate: fp-platform ig serve)"
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add `job`, `worker` to the `fp-platform` parser."""
    p = sub.add_parser(
        "job",
        help="run a phase's one-shot job in the foreground (what its asset launches through "
        "Pipes): world (engine, seal, stream-sort, check), control (sr, wsp), learning (basis, ofs, "
        "train, compatibility, promote), obs_gov (report, verdict), shadow (score)",
    )
    p.add_argument("plane", choices=sorted(JOB_MODULES))
    p.add_argument("args", nargs=argparse.REMAINDER, help="the job and its options (`fp-platform job world --help`)")
    p.set_defaults(func=cmd_job)
    p = sub.add_parser(
        "worker",
        help="run one worker in the foreground for a run (what the supervisor starts): "
        "archive_writer, decision_processor, action_layer, case_management, label_store, ...",
    )
    p.add_argument("component", help="the worker's component id")
    p.add_argument("args", nargs=argparse.REMAINDER, help="--run-id RUN [--group G] [--until-idle SECONDS]")
    p.set_defaults(func=cmd_worker)

"""`python -m fp_platform.rtdl <component>`: run one RTDL worker for the run in REQUIRED_PLATFORM_RUN_ID
(what the supervisor starts; a K8s Deployment runs the same command)."""

from __future__ import annotations

import argparse
import logging
import sys

from fp_platform.handles import handles
from fp_platform.rtdl.caught_up import CORE_WORKERS
from fp_platform.rtdl.decision_lane import DECISION_LANE_WORKERS
from fp_platform.rtdl.worker import Worker, WorkerError, required_run_id

WORKERS = CORE_WORKERS + DECISION_LANE_WORKERS


def worker_class(component: str) -> type[Worker]:
    h = handles()
    for cls in WORKERS:
        if h.get(cls.component_key) == component:
            return cls
    raise KeyError(f"no RTDL worker {component!r}; workers are {', '.join(h.get(c.component_key) for c in WORKERS)}")


def main(argv: list[str] | None = None) -> int:
    h = handles()
    env_key = h.get("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")
    parser = argparse.ArgumentParser(prog="python -m fp_platform.rtdl", description="Run one RTDL worker.")
    parser.add_argument("component", choices=[h.get(c.component_key) for c in WORKERS])
    parser.add_argument("--run-id", help=f"the run this worker serves (default: ${env_key}; required)")
    parser.add_argument("--group", help="consumer group override (benchmarks; default: the worker's handle)")
    parser.add_argument("--until-idle", type=float, metavar="SECONDS",
                        help="exit after SECONDS with nothing to read (default: run until SIGTERM)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        worker = worker_class(args.component)(h, required_run_id(h, args.run_id), group_id=args.group)
        stats = worker.run(until_idle_s=args.until_idle)
    except WorkerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("fp_platform.worker").info("%s stopped: %s", args.component, stats.snapshot())
    return 0


if __name__ == "__main__":
    sys.exit(main())

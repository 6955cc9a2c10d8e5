"""`python -m fp_platform.rtdl <component>`: run one RTDL worker for the run in REQUIRED_PLATFORM_RUN_ID."""

from __future__ import annotations

import sys

from fp_platform.rtdl.caught_up import CORE_WORKERS
from fp_platform.rtdl.decision_lane import DECISION_LANE_WORKERS
from fp_platform.substrate.worker import worker_main

WORKERS = CORE_WORKERS + DECISION_LANE_WORKERS

if __name__ == "__main__":
    sys.exit(worker_main(WORKERS, "python -m fp_platform.rtdl"))

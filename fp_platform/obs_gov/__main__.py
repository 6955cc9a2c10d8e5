"""`python -m fp_platform.obs_gov <component>`: run the obs_gov daemon for the run in REQUIRED_PLATFORM_RUN_ID
(what the supervisor starts; a K8s Deployment runs the same command)."""

from __future__ import annotations

import sys

from fp_platform.obs_gov.conformance_worker import OBS_GOV_WORKERS
from fp_platform.substrate.worker import worker_main

if __name__ == "__main__":
    sys.exit(worker_main(OBS_GOV_WORKERS, "python -m fp_platform.obs_gov"))

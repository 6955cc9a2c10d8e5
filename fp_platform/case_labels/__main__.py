"""`python -m fp_platform.case_labels <component>`: run one case/labels worker for the run in
REQUIRED_PLATFORM_RUN_ID (what the supervisor starts; a K8s Deployment runs the same command)."""

from __future__ import annotations

import sys

from fp_platform.case_labels.summary import CASE_LABELS_WORKERS
from fp_platform.substrate.worker import worker_main

if __name__ == "__main__":
    sys.exit(worker_main(CASE_LABELS_WORKERS, "python -m fp_platform.case_labels"))

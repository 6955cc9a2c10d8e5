"""Batch sizing for workers off the decision path.

The worker base batches by WORKER_BATCH_MAX_RECORDS / WORKER_BATCH_FILL_MS, tuned for the decision
lane, where the fill wait is latency each hop adds to a decision. Workers whose output no decision waits
on (archive, IEG, AL, DLA, the case/labels plane) trade that latency for fewer, fuller batches — fewer
transactions, segments and per-batch queries — with WORKER_OFFPATH_BATCH_MAX_RECORDS /
WORKER_OFFPATH_BATCH_FILL_MS.
"""

from __future__ import annotations

from fp_platform.substrate.settings import WorkerSettings
from fp_platform.substrate.worker import Worker


def offpath_batching(worker: Worker) -> None:
    """Give `worker` (constructed) the off-path batch size and fill wait; call it after `Worker.__init__`."""
    worker.batch_max = WorkerSettings.load(worker.h).offpath_batch_max_records
    worker.fill_s = WorkerSettings.load(worker.h).offpath_batch_fill_ms / 1000

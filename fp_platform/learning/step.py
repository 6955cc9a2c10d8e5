"""What every learning job works with, bundled once: the registry, the platform database, the object store,
the run's evidence writer, the closed spine run it learns from, the learning policy and the job's log."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from fp_platform.contracts.evidence import EvidenceWriter
from fp_platform.handles import Handles
from fp_platform.learning.policy import LearningPolicy
from fp_platform.substrate.job_channel import Log
from fp_platform.substrate.object_store import S3ObjectStore


@dataclass(frozen=True)
class Step:
    h: Handles
    conn: psycopg.Connection
    store: S3ObjectStore
    writer: EvidenceWriter
    run_id: str
    policy: LearningPolicy
    log: Log

    def unpack(self) -> tuple[Handles, psycopg.Connection, S3ObjectStore, EvidenceWriter, str, LearningPolicy, Log]:
        """The parts in declaration order, for a job body that names them as locals."""
        return self.h, self.conn, self.store, self.writer, self.run_id, self.policy, self.log

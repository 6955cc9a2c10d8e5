"""The `environment_conformance` daemon (obs_gov pack): re-checks the environment's conformance while a
run is live, so drift shows in its heartbeat (AMBER with the failed checks) and in the governance log
(one event per change of status) before the reporter closes the run."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import psycopg

from fp_platform.contracts import components
from fp_platform.obs_gov import conformance, governance
from fp_platform.obs_gov.settings import ConformanceSettings
from fp_platform.substrate.worker import Worker


class EnvironmentConformance(Worker):
    identity = components.ENV_CONFORMANCE
    _last_check = 0.0
    _doc: dict[str, Any] | None = None

    def apply(self, conn: psycopg.Connection, records: list) -> None:
        raise AssertionError("EnvironmentConformance reads no topic")

    def on_idle(self, conn: psycopg.Connection) -> None:
        if time.monotonic() - self._last_check < ConformanceSettings.load(self.h).interval_seconds:
            return
        self._last_check = time.monotonic()
        previous = self._doc
        self._doc = conformance.check(self.h, conn)
        self.stats.counters["checks"] += 1
        if previous is None or previous["status"] != self._doc["status"]:
            governance.append(
                conn,
                [
                    governance.GovEvent(
                        self.run_id,
                        "ENVIRONMENT_CONFORMANCE_CHANGED",
                        "INFO" if self._doc["status"] == "PASS" else "ANOMALY",
                        self.component,
                        f"conformance:{self.pack_id}:{self.stats.counters['checks']}:{self._doc['status']}",
                        {
                            "status": self._doc["status"],
                            "failed": self._doc["failed"],
                            "previous": previous["status"] if previous else None,
                        },
                        datetime.now(UTC),
                    )
                ],
            )

    def health(self, conn: psycopg.Connection) -> tuple[str, dict[str, Any]]:
        if self._doc is None:
            return "", {}
        problem = f"conformance FAIL: {', '.join(self._doc['failed'])}" if self._doc["status"] != "PASS" else ""
        return problem, {"conformance": self._doc["status"], "failed_checks": self._doc["failed"]}


OBS_GOV_WORKERS = (EnvironmentConformance,)

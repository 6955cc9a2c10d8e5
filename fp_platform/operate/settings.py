"""Tuning values of the pack supervisor, typed (see `fp_platform.handles.settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from fp_platform.handles.settings import Settings, knob


@dataclass(frozen=True)
class SupervisorSettings(Settings):
    """The sensor's tick, its restart back-off, and how many replicas each daemon runs."""

    sensor_interval_seconds: int = knob("SUPERVISOR_SENSOR_INTERVAL_SECONDS")
    restart_backoff_base_seconds: float = knob("SUPERVISOR_RESTART_BACKOFF_BASE_SECONDS")
    restart_backoff_max_seconds: float = knob("SUPERVISOR_RESTART_BACKOFF_MAX_SECONDS")
    daemon_replicas_per_worker: int = knob("DAEMON_REPLICAS_PER_WORKER")

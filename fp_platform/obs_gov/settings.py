"""Tuning values of observability and governance, typed (see `fp_platform.handles.settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from fp_platform.handles.settings import Settings, knob


@dataclass(frozen=True)
class ConformanceSettings(Settings):
    """How often the environment-conformance worker re-checks the substrate."""

    interval_seconds: float = knob("ENV_CONFORMANCE_INTERVAL_SECONDS")

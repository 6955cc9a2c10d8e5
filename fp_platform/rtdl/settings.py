"""Tuning values of the real-time decision loop's phases, typed (see `fp_platform.handles.settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from fp_platform.handles.settings import Settings, knob


@dataclass(frozen=True)
class RtdlSettings(Settings):
    """When P8 counts the core as caught up, and how long P8/P9 wait for it."""

    caught_up_lag_max: int = knob("RTDL_CAUGHT_UP_LAG_MAX")
    caught_up_timeout_seconds: float = knob("RTDL_CAUGHT_UP_TIMEOUT_SECONDS")
    decision_lane_timeout_seconds: float = knob("DECISION_LANE_TIMEOUT_SECONDS")

"""Tuning values of the case and label plane, typed (see `fp_platform.handles.settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from fp_platform.handles.settings import Settings, knob


@dataclass(frozen=True)
class CaseLabelsSettings(Settings):
    """How long P10 waits for the case and label workers to settle the run's triggers."""

    timeout_seconds: float = knob("CASE_LABELS_TIMEOUT_SECONDS")

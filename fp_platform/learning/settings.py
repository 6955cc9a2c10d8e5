"""Tuning values of the learning plane, typed (see `fp_platform.handles.settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from fp_platform.handles.settings import Settings, knob


@dataclass(frozen=True)
class RetrainSettings(Settings):
    """How often the retrain sensor looks, and how many new labels make a retrain worth it."""

    sensor_interval_seconds: int = knob("LEARNING_RETRAIN_SENSOR_INTERVAL_SECONDS")
    min_new_labels: int = knob("LEARNING_RETRAIN_MIN_NEW_LABELS")

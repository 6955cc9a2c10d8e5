"""What DF and DL know about a traffic event when they judge it: its CSFB flow binding and its OFP
feature vector, with OFP's applied offsets (the watermark the vector was computed over). An event
judged without them says so (explicit degrade, never a silent default)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EventContext:
    binding_status: str | None  # READY / MISSING_CONTEXT / LATE_CONTEXT; None: CSFB has no binding yet
    binding_reasons: tuple[str, ...]
    feature_version: str | None
    features: dict[str, Any] | None  # None: OFP has no vector yet
    # OFP's applied offsets ({topic: {partition: next_offset}}) when the vector was computed: the vector is
    # the feature definition over exactly those records (what OFS's parity check rebuilds).
    feature_watermark: dict[str, dict[str, int]] | None = None

    def degrade_reasons(self) -> list[str]:
        reasons = []
        if self.binding_status is None:
            reasons.append("context: no flow binding (CSFB has not consumed the event)")
        elif self.binding_status != "READY":
            reasons += [f"context {self.binding_status}: {r}" for r in self.binding_reasons]
        if self.features is None:
            reasons.append("features: no vector (OFP has not consumed the event)")
        return reasons

"""Tuning values of the world streamer and the scenario runner, typed (see `fp_platform.handles.settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from fp_platform.handles.settings import Settings, knob


@dataclass(frozen=True)
class WspSettings(Settings):
    """How WSP sends to IG: batch size, concurrency, and its retry schedule for retryable answers."""

    batch_size: int = knob("WSP_BATCH_SIZE")
    max_inflight: int = knob("WSP_MAX_INFLIGHT")
    retry_max_attempts: int = knob("WSP_RETRY_MAX_ATTEMPTS")
    retry_backoff_ms: int = knob("WSP_RETRY_BACKOFF_MS")
    retry_backoff_max_ms: int = knob("WSP_RETRY_BACKOFF_MAX_MS")
    request_timeout_seconds: float = knob("WSP_REQUEST_TIMEOUT_SECONDS")
    stop_on_nonretryable: bool = knob("WSP_STOP_ON_NONRETRYABLE")


@dataclass(frozen=True)
class SrSettings(Settings):
    """The scenario runner's lease: how long a holder keeps a run's lease without renewing it."""

    lease_ttl_seconds: int = knob("SR_LEASE_TTL_SECONDS")

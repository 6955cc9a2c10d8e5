"""Tuning values of the ingestion gate, the world streamer and the scenario runner, typed
(see `fp_platform.handles.settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from fp_platform.handles.settings import Settings, knob


@dataclass(frozen=True)
class IngestSettings(Settings):
    """What IG admits and how fast: request and record sizes, nesting, rate limits, reconcile and readiness."""

    max_request_bytes: int = knob("IG_MAX_REQUEST_BYTES")
    max_json_depth: int = knob("IG_MAX_JSON_DEPTH")
    record_overhead_bytes: int = knob("IG_RECORD_OVERHEAD_BYTES")  # kept under the broker's record limit
    rate_limit_rps: float = knob("IG_RATE_LIMIT_RPS")
    rate_limit_burst: int = knob("IG_RATE_LIMIT_BURST")
    unauth_rate_limit_rps: float = knob("IG_UNAUTH_RATE_LIMIT_RPS")
    unauth_rate_limit_burst: int = knob("IG_UNAUTH_RATE_LIMIT_BURST")
    reconcile_grace_seconds: float = knob("IG_RECONCILE_GRACE_SECONDS")
    ready_cache_seconds: float = knob("IG_READY_CACHE_SECONDS")


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

"""Tuning values of the worker base and the bus clients, typed (see `fp_platform.handles.settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from fp_platform.handles.settings import Settings, knob


@dataclass(frozen=True)
class WorkerSettings(Settings):
    """Micro-batching and heartbeats of every worker; off-path workers batch larger and wait longer."""

    batch_max_records: int = knob("WORKER_BATCH_MAX_RECORDS")
    batch_fill_ms: int = knob("WORKER_BATCH_FILL_MS")
    offpath_batch_max_records: int = knob("WORKER_OFFPATH_BATCH_MAX_RECORDS")
    offpath_batch_fill_ms: int = knob("WORKER_OFFPATH_BATCH_FILL_MS")
    heartbeat_interval_seconds: float = knob("WORKER_HEARTBEAT_INTERVAL_SECONDS")
    heartbeat_stale_seconds: float = knob("WORKER_HEARTBEAT_STALE_SECONDS")


@dataclass(frozen=True)
class BusSettings(Settings):
    """Producer and consumer timings; the cloud profiles allow a slower, remote broker."""

    producer_linger_ms: int = knob("KAFKA_PRODUCER_LINGER_MS")
    producer_request_timeout_ms: int = knob("KAFKA_PRODUCER_REQUEST_TIMEOUT_MS")
    producer_delivery_timeout_ms: int = knob("KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS")
    producer_compression_type: str = knob("KAFKA_PRODUCER_COMPRESSION_TYPE")
    message_max_bytes: int = knob("KAFKA_MESSAGE_MAX_BYTES")  # the broker's record limit where it cannot tell
    consumer_session_timeout_ms: int = knob("KAFKA_CONSUMER_SESSION_TIMEOUT_MS")
    consumer_heartbeat_interval_ms: int = knob("KAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS")

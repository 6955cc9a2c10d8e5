"""The envelope every record on every topic carries, and the event-class → topic map.

Topics are named by handle key; the registry (`fp_platform/handles`) resolves the real name per
profile. The partition key field of a topic is pinned in the registry too.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from fp_platform.contracts.canonical import canonical_json, sha256_hex

SCHEMA_VERSION = "v1"

# event_class -> topic handle key (dev_full design-authority App. C).
EVENT_CLASS_TOPICS: dict[str, str] = {
    "traffic.fraud": "FP_BUS_TRAFFIC_FRAUD_V1",
    "traffic.baseline": "FP_BUS_TRAFFIC_BASELINE_V1",
    "context.arrival_events": "FP_BUS_CONTEXT_ARRIVAL_EVENTS_V1",
    "context.arrival_entities": "FP_BUS_CONTEXT_ARRIVAL_ENTITIES_V1",
    "context.flow_anchor.fraud": "FP_BUS_CONTEXT_FLOW_ANCHOR_FRAUD_V1",
    "context.flow_anchor.baseline": "FP_BUS_CONTEXT_FLOW_ANCHOR_BASELINE_V1",
    "control.ready": "FP_BUS_CONTROL_V1",
    "control.smoke": "FP_BUS_CONTROL_V1",
    "rtdl.decision_response": "FP_BUS_RTDL_V1",
    "rtdl.action_intent": "FP_BUS_RTDL_V1",
    "rtdl.action_outcome": "FP_BUS_RTDL_V1",
    "audit.decision_chain": "FP_BUS_AUDIT_V1",
    "case.trigger": "FP_BUS_CASE_TRIGGERS_V1",
    "labels.assertion": "FP_BUS_LABELS_EVENTS_V1",
    "learning.ofs.request": "FP_BUS_LEARNING_OFS_REQUESTS_V1",
    "learning.ofs.event": "FP_BUS_LEARNING_OFS_EVENTS_V1",
    "learning.mf.request": "FP_BUS_LEARNING_MF_REQUESTS_V1",
    "learning.mf.event": "FP_BUS_LEARNING_MF_EVENTS_V1",
    "learning.registry.event": "FP_BUS_LEARNING_REGISTRY_EVENTS_V1",
}

# oracle output_id -> the event class WSP streams it as (truth is never streamed).
OUTPUT_EVENT_CLASSES: dict[str, str] = {
    "traffic_fraud": "traffic.fraud",
    "traffic_baseline": "traffic.baseline",
    "arrival_events": "context.arrival_events",
    "arrival_entities": "context.arrival_entities",
    "flow_anchor_fraud": "context.flow_anchor.fraud",
    "flow_anchor_baseline": "context.flow_anchor.baseline",
}

REQUIRED_PINS = ("platform_run_id",)


def record_headers(
    platform_run_id: str, event_class: str, event_id: str, payload_hash_: str, publisher: str
) -> list[tuple[str, str]]:
    """Kafka headers on every bus record: its dedupe identity and publisher, readable without parsing."""
    return [
        ("platform_run_id", platform_run_id),
        ("event_class", event_class),
        ("event_id", event_id),
        ("payload_hash", payload_hash_),
        ("publisher", publisher),
    ]


def record_identity(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """The headers of `record_headers`, decoded (missing ones are absent)."""
    return {k: v.decode() for k, v in (headers or [])}


class EnvelopeError(ValueError):
    """An envelope that breaks the contract; the message says which field and why."""


def topic_key_for(event_class: str) -> str:
    try:
        return EVENT_CLASS_TOPICS[event_class]
    except KeyError:
        raise EnvelopeError(f"unknown event_class {event_class!r}") from None


@dataclass(frozen=True)
class Envelope:
    """One bus record. The payload is serialised once (`payload_json`): its hash, the hash check and
    `to_bytes` all use those bytes, so the payload must not be changed after the envelope is made."""

    event_id: str
    event_class: str
    ts_utc: str
    pins: dict[str, str]
    producer: str
    payload: dict[str, Any]
    schema_version: str = SCHEMA_VERSION
    payload_hash: str = field(default="")

    def __post_init__(self) -> None:
        if not self.payload_hash:
            object.__setattr__(self, "payload_hash", sha256_hex(self.payload_json))

    @property
    def payload_json(self) -> bytes:
        """The canonical payload (`payload_hash` is its sha256), computed once."""
        cached = self.__dict__.get("_payload_json")
        if cached is None:
            cached = canonical_json(self.payload)
            object.__setattr__(self, "_payload_json", cached)  # a cache, not a field (frozen, eq and repr ignore it)
        return cached

    @property
    def platform_run_id(self) -> str:
        return self.pins["platform_run_id"]

    @property
    def dedupe_key(self) -> tuple[str, str, str]:
        """The ingestion law's identity: (platform_run_id, event_class, event_id)."""
        return (self.platform_run_id, self.event_class, self.event_id)

    def to_dict(self) -> dict[str, Any]:
        """The envelope as a plain dict (shallow: payload and pins are shared, not copied)."""
        return {f: getattr(self, f) for f in _FIELDS}

    def to_bytes(self) -> bytes:
        """The canonical JSON of `to_dict()`, computed once; the payload's canonical bytes are reused (the
        sorted keys are those before "payload", then "payload", then those after it)."""
        cached = self.__dict__.get("_bytes")
        if cached is None:
            head = canonical_json({f: getattr(self, f) for f in _HEAD_FIELDS})
            tail = canonical_json({f: getattr(self, f) for f in _TAIL_FIELDS})
            cached = b"".join((head[:-1], b',"payload":', self.payload_json, b",", tail[1:]))
            object.__setattr__(self, "_bytes", cached)
        return cached

    @classmethod
    def build(
        cls,
        *,
        event_id: str,
        event_class: str,
        pins: dict[str, str],
        producer: str,
        payload: dict[str, Any],
        ts_utc: str | None = None,
    ) -> Envelope:
        env = cls(
            event_id=event_id,
            event_class=event_class,
            ts_utc=ts_utc or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            pins=dict(pins),
            producer=producer,
            payload=payload,
        )
        env.validate()
        return env

    @classmethod
    def from_dict(cls, doc: Any) -> Envelope:
        if not isinstance(doc, dict):
            raise EnvelopeError("envelope must be a JSON object")
        missing = [f for f in ("event_id", "event_class", "ts_utc", "pins", "producer", "payload") if f not in doc]
        if missing:
            raise EnvelopeError(f"envelope is missing {', '.join(missing)}")
        unknown = set(doc) - {f.name for f in cls.__dataclass_fields__.values()}
        if unknown:
            raise EnvelopeError(f"envelope has unknown fields {', '.join(sorted(unknown))}")
        env = cls(**{k: doc[k] for k in doc})
        env.validate()
        return env

    def validate(self) -> None:
        for name in ("event_id", "event_class", "ts_utc", "producer"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise EnvelopeError(f"{name} must be a non-empty string")
        topic_key_for(self.event_class)
        if self.schema_version != SCHEMA_VERSION:
            raise EnvelopeError(f"schema_version {self.schema_version!r} unsupported (want {SCHEMA_VERSION})")
        if not isinstance(self.pins, dict) or not all(isinstance(v, str) for v in self.pins.values()):
            raise EnvelopeError("pins must be an object of strings")
        for pin in REQUIRED_PINS:
            if not self.pins.get(pin):
                raise EnvelopeError(f"pins.{pin} is required")
        if not isinstance(self.payload, dict):
            raise EnvelopeError("payload must be a JSON object")
        if self.payload_hash != sha256_hex(self.payload_json):
            raise EnvelopeError("payload_hash does not match sha256(canonical payload)")


_FIELDS = tuple(f.name for f in fields(Envelope))
_HEAD_FIELDS = tuple(f for f in _FIELDS if f < "payload")  # event_class, event_id
_TAIL_FIELDS = tuple(f for f in _FIELDS if f > "payload")  # payload_hash, pins, producer, schema_version, ts_utc

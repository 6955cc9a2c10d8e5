"""Payload schema per event class: what IG admits, what WSP sends and what RTDL may rely on.

One pydantic model per class (strict types, no unknown fields). The IG OpenAPI document is built
from these same models, so the published schema is the one enforced.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

ID_MAX_CHARS = 256  # every id a store indexes stays far below Postgres' btree row limit (2,704 bytes)
# No control characters (Postgres text cannot hold U+0000, logs and headers should not hold the rest);
# an envelope id also needs one character other than a dot, so it is never a path segment `.` or `..`.
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"
ID_PATTERN = r"^[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f.][^\x00-\x1f\x7f]*$"
Text = Annotated[str, Field(max_length=ID_MAX_CHARS, pattern=TEXT_PATTERN)]  # a bounded key or label
EnvelopeId = Annotated[str, Field(min_length=1, max_length=ID_MAX_CHARS, pattern=ID_PATTERN)]

DECISIONS = ("APPROVE", "STEP_UP", "REVIEW", "DECLINE")  # what DF may decide, mildest first
LABELS = ("FRAUD", "LEGIT")  # what a label assertion may say


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class FlowKeys(_Payload):
    flow_id: Text
    merchant_id: Text
    customer_id: Text


class TrafficPayload(FlowKeys):
    """A card transaction (handbook model) on a flow."""

    transaction_id: int
    card_id: Text
    terminal_id: int
    amount: float
    tx_time_seconds: int
    tx_time_days: int


class ArrivalEventPayload(FlowKeys):
    """A flow's arrival, shortly before its transaction."""

    channel: Text


class ArrivalEntitiesPayload(FlowKeys):
    """The entities seen at arrival: card, device, ip."""

    card_id: Text
    device_id: Text
    ip: Text


class FlowAnchorPayload(FlowKeys):
    """Binds a flow to its transaction id (the join key for flow binding)."""

    transaction_id: int


class ReadyPayload(_Payload):
    """SR's authorisation to stream one run: what to read and the facts it was gated on."""

    oracle_pack_fingerprint: str
    stream_view_root: str
    output_ids: list[str]
    stream_view_fingerprints: dict[str, str]
    run_facts_uri: str


class SmokePayload(_Payload):
    """P4's publish smoke: proves IG can admit and publish for the run."""

    purpose: str
    requested_at_utc: str


PAYLOAD_MODELS: dict[str, type[_Payload]] = {
    "traffic.fraud": TrafficPayload,
    "traffic.baseline": TrafficPayload,
    "context.arrival_events": ArrivalEventPayload,
    "context.arrival_entities": ArrivalEntitiesPayload,
    "context.flow_anchor.fraud": FlowAnchorPayload,
    "context.flow_anchor.baseline": FlowAnchorPayload,
    "control.ready": ReadyPayload,
    "control.smoke": SmokePayload,
}


def _envelope_model(event_class: str, payload: type[_Payload]) -> type[BaseModel]:
    """The envelope of one class (contracts.envelope.Envelope's fields) with its payload schema."""
    name = "Envelope_" + event_class.replace(".", "_")
    return create_model(
        name,
        __config__=ConfigDict(extra="forbid", strict=True),
        event_id=(EnvelopeId, ...),
        event_class=(Literal[event_class], ...),
        schema_version=(Literal["v1"], "v1"),
        ts_utc=(Annotated[str, Field(min_length=1, max_length=64, pattern=TEXT_PATTERN)], ...),
        pins=(dict[Text, Text], ...),
        producer=(EnvelopeId, ...),
        payload=(payload, ...),
        payload_hash=(str | None, None),
    )


@cache
def envelope_adapter() -> TypeAdapter:
    """Validates one envelope of any class, dispatching on event_class."""
    models = tuple(_envelope_model(c, m) for c, m in PAYLOAD_MODELS.items())
    return TypeAdapter(Annotated[Union[models], Field(discriminator="event_class")])  # noqa: UP007


def envelope_problem(doc: Any) -> str | None:
    """None when `doc` is a valid envelope of a known class, else a one-line reason."""
    try:
        envelope_adapter().validate_python(doc)
    except ValidationError as exc:
        return "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or 'envelope'}: {e['msg']}" for e in exc.errors()[:5])
    return None


def envelope_json_schema(ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
    """JSON Schema of the IG push body: one envelope or a list of them (the OpenAPI request body)."""
    adapter = envelope_adapter()
    single = adapter.json_schema(ref_template=ref_template)
    defs = single.pop("$defs", {})
    return {"oneOf": [single, {"type": "array", "items": single, "minItems": 1}], "$defs": defs}

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fp_platform.contracts import envelope as envelope_module
from fp_platform.contracts import ids
from fp_platform.contracts.canonical import canonical_json, payload_hash
from fp_platform.contracts.envelope import EVENT_CLASS_TOPICS, Envelope, EnvelopeError
from fp_platform.handles import handles
from fp_platform_tests.contracts.test_canonical import payload_text, stdlib_canonical_json, wide_values


def test_platform_run_id_format():
    assert ids.new_platform_run_id(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "platform_20260102T030405Z"
    assert ids.check_platform_run_id(ids.new_platform_run_id())
    with pytest.raises(ValueError):
        ids.check_platform_run_id("platform_2026")


def test_deterministic_ids_are_stable_and_distinct():
    a = ids.event_id("traffic_fraud", "engine_1", {"tx": 1})
    assert a == ids.event_id("traffic_fraud", "engine_1", {"tx": 1})
    assert a != ids.event_id("traffic_fraud", "engine_1", {"tx": 2})
    assert a != ids.event_id("arrival_events", "engine_1", {"tx": 1})
    assert ids.scenario_run_id("k", "fp1") != ids.scenario_run_id("k", "fp2")
    assert ids.case_id({"card": "c1"}) == ids.case_id({"card": "c1"})


def _env(**overrides):
    doc = Envelope.build(
        event_id="evt_1",
        event_class="traffic.fraud",
        pins={"platform_run_id": "platform_20260101T000000Z"},
        producer="test",
        payload={"amount": 12.5, "merchant_id": "m1"},
        ts_utc="2026-01-01T00:00:00Z",
    ).to_dict()
    doc.update(overrides)
    return doc


def test_envelope_round_trip_and_dedupe_key():
    env = Envelope.from_dict(_env())
    assert env.dedupe_key == ("platform_20260101T000000Z", "traffic.fraud", "evt_1")
    assert Envelope.from_dict(env.to_dict()) == env


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"event_class": "nope"}, "unknown event_class"),
        ({"pins": {}}, "pins.platform_run_id"),
        ({"payload_hash": "0" * 64}, "payload_hash"),
        ({"payload": [1]}, "payload must be"),
        ({"extra": 1}, "unknown fields"),
        ({"schema_version": "v9"}, "schema_version"),
    ],
)
def test_envelope_rejects_with_reason(overrides, message):
    with pytest.raises(EnvelopeError, match=message):
        Envelope.from_dict(_env(**overrides))


def test_every_event_class_maps_to_a_registered_topic():
    for profile in ("local", "dev_min", "dev_full"):
        h = handles(profile)
        for topic_key in EVENT_CLASS_TOPICS.values():
            assert h.topic(topic_key).name


@settings(max_examples=150)
@given(st.dictionaries(payload_text, wide_values, max_size=8), payload_text.filter(bool), payload_text.filter(bool))
def test_envelope_bytes_are_the_canonical_json_of_its_dict(payload, event_id, producer):
    env = Envelope.build(
        event_id=event_id,
        event_class="rtdl.decision_response",
        producer=producer,
        pins={"platform_run_id": "platform_20260101T000000Z", "é": "\n"},
        payload=payload,
    )
    assert env.to_bytes() == stdlib_canonical_json(env.to_dict()) == canonical_json(env.to_dict())
    assert env.payload_hash == payload_hash(payload)


def test_an_envelope_serialises_its_payload_once(monkeypatch):
    payload = {"decision_id": "dec_1", "score": 0.73, "features": {"values": {"a": 1.5}}, "reason_codes": ["X"]}
    seen = []
    monkeypatch.setattr(envelope_module, "canonical_json", lambda v: seen.append(v) or canonical_json(v))
    env = Envelope.build(
        event_id="dec_1",
        event_class="rtdl.decision_response",
        pins={"platform_run_id": "platform_20260101T000000Z"},
        producer="df",
        payload=payload,
    )
    first = env.to_bytes()
    assert env.to_bytes() is first
    assert [v is payload for v in seen].count(True) == 1
    seen.clear()
    again = Envelope.from_dict(orjson.loads(first))  # read back from the wire: checked and re-sent
    assert again.to_bytes() == first
    assert [v == payload for v in seen].count(True) == 1

from datetime import UTC, datetime

import pytest

from fp_platform.contracts import ids
from fp_platform.contracts.envelope import EVENT_CLASS_TOPICS, Envelope, EnvelopeError
from fp_platform.handles import handles


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
        event_id="evt_1", event_class="traffic.fraud", pins={"platform_run_id": "platform_20260101T000000Z"},
        producer="test", payload={"amount": 12.5, "merchant_id": "m1"}, ts_utc="2026-01-01T00:00:00Z",
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

import json
import math
import random
import struct

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fp_platform.contracts import canonical
from fp_platform.contracts.canonical import canonical_json, config_digest, digest, payload_hash


def stdlib_canonical_json(value):
    """The canonical form as it was defined before orjson: the reference every digest was made with."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


json_scalars = st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=25,
)


@given(st.dictionaries(st.text(), json_values, max_size=8))
def test_digest_ignores_key_order(doc):
    reordered = dict(reversed(list(doc.items())))
    assert canonical_json(reordered) == canonical_json(doc)
    assert payload_hash(reordered) == payload_hash(doc)


@given(json_values)
def test_canonical_json_round_trips(value):
    assert json.loads(canonical_json(value)) == value


@given(json_values)
def test_canonical_form_is_a_fixed_point(value):
    text = canonical_json(value)
    assert canonical_json(json.loads(text)) == text


@given(st.dictionaries(st.text(min_size=1), json_values, min_size=1, max_size=6), st.text(min_size=1), json_values)
def test_digest_changes_when_content_changes(doc, key, value):
    changed = {**doc, key: value}
    assert (digest(changed) == digest(doc)) == (canonical_json(changed) == canonical_json(doc))


def test_known_vector():
    """Pins the canonical form: sorted keys, no whitespace, UTF-8."""
    assert canonical_json({"b": [True, None], "a": 1}) == b'{"a":1,"b":[true,null]}'
    assert digest({"b": [True, None], "a": 1}) == "1cc69c7fa23616ca2ec3ee70d24390a6225c8832db8a4c814c7e0e7f942f8668"
    assert canonical_json({"é": "ü"}) == '{"é":"ü"}'.encode()


def test_non_finite_numbers_are_refused():
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_config_digest_excludes_itself():
    with pytest.raises(ValueError, match="without its own digest"):
        config_digest({"config_digest": "x"})


# Everything the platform hashes, with the edges where orjson and the stdlib part: floats of every
# magnitude (subnormal, below 1e-4, at and above 1e16, -0.0), ints beyond 64 bits, control characters,
# non-ASCII and astral text, keys that sort differently by code point and by UTF-16.
edge_floats = st.sampled_from(
    [
        0.0,
        -0.0,
        1e-4,
        9.99e-5,
        1e-5,
        1.5e-5,
        1e-7,
        1e-10,
        5e-324,
        2.2250738585072014e-308,
        1e15,
        1e16,
        1.2345678901234567e19,
        1e22,
        1.7976931348623157e308,
        -3.2e-05,
        0.1,
    ]
)
any_floats = (
    st.floats(allow_nan=False, allow_infinity=False)
    | edge_floats
    | st.builds(lambda m, e: float(f"{m}e{e}"), st.integers(1, 10**17), st.integers(-330, 300)).filter(math.isfinite)
)
wide_ints = st.integers() | st.integers(min_value=2**63 - 2, max_value=2**64 + 2) | st.integers(-(2**70), 2**70)
payload_text = (
    st.text()
    | st.text(st.characters(max_codepoint=0x7F))
    | st.sampled_from(["", "\x00\x1f\x7f\b\f\n\r\t", '"\\/', "\u2028\u2029\ufeff", "\U0001f600", "\uffff", "é", "null"])
)
wide_text = payload_text | st.sampled_from(["1e-05", ":0.00001,", "e-", "e+"])  # false alarms for the float guard
wide_scalars = st.none() | st.booleans() | wide_ints | wide_text | any_floats
wide_values = st.recursive(
    wide_scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(wide_text, children, max_size=6),
    max_leaves=40,
)
# What payloads mostly hold, which orjson writes: floats of 1e-4..1e15, ints of 64 bits, any text.
payload_floats = st.floats(min_value=1e-4, max_value=1e15) | st.floats(min_value=-1e15, max_value=-1e-4) | st.just(0.0)
payload_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | payload_text | payload_floats,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(payload_text, children, max_size=6),
    max_leaves=40,
)


def test_orjson_is_in_use():
    """The installed orjson writes the probe floats as expected, so canonical_json uses it."""
    assert canonical._USE_ORJSON


@settings(max_examples=600)
@given(wide_values)
def test_canonical_json_is_the_stdlib_form(value):
    assert canonical_json(value) == stdlib_canonical_json(value)


@settings(max_examples=250)
@given(st.dictionaries(payload_text, payload_values, max_size=8))
def test_orjson_path_bytes_are_the_stdlib_bytes(doc):
    """Whenever canonical_json keeps orjson's output, those bytes are the stdlib's."""
    calls = []
    real = canonical._stdlib_canonical_json
    canonical._stdlib_canonical_json = lambda v: calls.append(v) or real(v)
    try:
        out = canonical_json(doc)
    finally:
        canonical._stdlib_canonical_json = real
    if not calls:
        assert out == orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    assert out == stdlib_canonical_json(doc)


def test_every_float_magnitude_is_the_stdlib_form():
    """Floats across all exponents and random bit patterns, alone in a list and inside a payload."""
    rng = random.Random(20260101)
    xs = [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0] for _ in range(100_000)]
    xs += [float(f"{rng.randrange(1, 10 ** rng.randint(1, 17))}e{e}") for e in range(-330, 310) for _ in range(40)]
    xs = [x for x in xs if math.isfinite(x)]
    xs += [-x for x in xs]
    for x in xs:
        assert canonical_json([x]) == stdlib_canonical_json([x]), repr(x)
    doc = {"score": xs[:500], "amount": 57.16, "id": "evt_1"}
    assert canonical_json(doc) == stdlib_canonical_json(doc)


def test_a_typical_payload_is_written_by_orjson(monkeypatch):
    doc = {
        "amount": 57.16,
        "score": 0.734512,
        "card_id": "card_1",
        "flags": [True, False],
        "n": 2**63,
        "features": {"terminal_risk_30d": 0.0833333, "customer_nb_tx_1d": 3},
        "note": "é\n",
    }
    monkeypatch.setattr(canonical, "_stdlib_canonical_json", lambda v: pytest.fail(f"stdlib used for {v!r}"))
    assert canonical_json(doc) == stdlib_canonical_json(doc)


@pytest.mark.parametrize(
    ("doc", "stdlib"),
    [
        ({"ts_utc": "2026-01-01T10:00:00.000000Z", "id": "5f0c-427e-93fb", "n": "x-1e-7", "a": 1.5}, False),
        ({"score": 3.2e-05}, True),
        ({"score": [-1e-5]}, True),
        ({"s": [1, 2.5e-300]}, True),
        ({"s": 1e16}, True),
        ({"score": 0.0001, "amount": 10.00001}, False),
    ],
)
def test_only_tiny_float_tokens_send_a_document_to_the_stdlib(doc, stdlib, monkeypatch):
    """Strings that merely look like `0.0000` or `7e-9` keep orjson's bytes; a real tiny float does not."""
    used = []
    real = canonical._stdlib_canonical_json
    monkeypatch.setattr(canonical, "_stdlib_canonical_json", lambda v: used.append(v) or real(v))
    assert canonical_json(doc) == stdlib_canonical_json(doc)
    assert bool(used) == stdlib


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_wherever_they_sit(bad):
    for doc in ({"x": bad}, [bad], {"a": None, "b": [1, {"c": bad}]}, {"a": [None, bad, None]}):
        with pytest.raises(ValueError):
            canonical_json(doc)


@pytest.mark.parametrize(
    "value",
    [
        {"big": 2**64},
        {"neg": -(2**63) - 1},
        [2**200],
        {1: "int key"},
        {"t": (1, 2.5e-7)},
        (1, 2),
        2**80,
        1e-05,
        "é",
        None,
        True,
        {"deep": json.loads("[" * 300 + "]" * 300)},
    ],
)
def test_what_orjson_refuses_still_gets_the_stdlib_form(value):
    assert canonical_json(value) == stdlib_canonical_json(value)


@pytest.mark.parametrize("value", [{"s": "\ud800"}, {"d": {1, 2}}, {"b": b"x"}])
def test_what_the_stdlib_refuses_is_refused(value):
    with pytest.raises((TypeError, ValueError)) as expected:
        stdlib_canonical_json(value)
    with pytest.raises(type(expected.value)):
        canonical_json(value)

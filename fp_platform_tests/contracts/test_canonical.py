import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fp_platform.contracts.canonical import canonical_json, config_digest, digest, payload_hash

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

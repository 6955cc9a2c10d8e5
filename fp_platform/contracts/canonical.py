"""Canonical JSON and the digests built on it (payload_hash, config_digest).

Canonical form: keys sorted, no whitespace, UTF-8, no NaN/Infinity. Two documents that are equal
as JSON values always give the same bytes, so their digests are stable across runs and hosts.

The form is what the stdlib encoder writes (`_stdlib_canonical_json`, the reference). orjson writes
the same bytes several times faster, and `canonical_json` uses it except where it could differ:
- floats below 1e-4 in magnitude: orjson writes 1e-05 as `0.00001` and 1e-07 as `1e-7` where `repr`
  writes `1e-05` and `1e-07`; every other finite float it writes as `repr` does (checked over 2.6M
  floats of every exponent, and by the tests). Output with a number token that starts `0.0000` or has
  an exponent goes to the stdlib encoder;
- NaN and Infinity: orjson writes them as `null` where the stdlib refuses them; output holding `null`
  is read back and compared with the value, and a mismatch goes to the stdlib (which raises);
- what orjson refuses (ints beyond 64 bits, non-str keys, subclasses of str/int/dict/list, datetimes,
  dataclasses, lone surrogates, nesting deeper than 255) goes to the stdlib, which writes or refuses
  it as before; so do values other than a dict or a list.
If the installed orjson does not write a set of probe floats as expected, the stdlib is used throughout.
The one residue: orjson writes a few types the stdlib refuses (uuid.UUID, a plain Enum, orjson.Fragment);
no canonical document holds one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import orjson

DIGEST_ALGO = "sha256"

_ORJSON_OPTS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
_MANTISSA = frozenset(b"0123456789.")
_BEFORE_NUMBER = frozenset(b"[:,")


def _stdlib_canonical_json(value: Any) -> bytes:
    """The reference encoder: the canonical form is whatever this writes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _tiny_float_in(out: bytes) -> bool:
    """Whether orjson's output may hold a float token written other than `repr` would: a number token
    (after `[`, `:` or `,`, maybe signed) that starts `0.0000` or has an `e-`/`e+` exponent. Occurrences
    inside strings (a timestamp's `00.000000`, a UUID's `7e-9`) are told apart by what precedes them."""
    for needle in (b"0.0000", b"e-", b"e+"):
        if needle != b"0.0000" and needle[1:] not in out:  # a one-byte test runs at memchr speed
            continue
        i = out.find(needle)
        while i != -1:
            k = i - 1
            if needle != b"0.0000":  # back over the mantissa: digits and a point
                while out[k] in _MANTISSA:
                    k -= 1
                if k == i - 1:
                    i = out.find(needle, i + 1)
                    continue
            if out[k] == 0x2D:  # "-"
                k -= 1
            if out[k] in _BEFORE_NUMBER:
                return True
            i = out.find(needle, i + 1)
    return False


def _orjson_floats_as_expected() -> bool:
    """orjson writes these floats as `repr` does, or (below 1e-4) with a token `_tiny_float_in` catches."""
    probes = (
        0.0,
        -0.0,
        0.1,
        1 / 3,
        1e-4,
        1.5e-5,
        1e-7,
        1e-10,
        5e-324,
        1e15,
        123456789.125,
        9007199254740993.0,
        1e16,
        1.2345678901234567e19,
        1e22,
        1.7976931348623157e308,
    )
    for x in probes:
        out = orjson.dumps([x])
        if out[1:-1] != repr(x).encode() and not (abs(x) < 1e-4 and _tiny_float_in(out)):
            return False
    return True


_USE_ORJSON = _orjson_floats_as_expected()


def canonical_json(value: Any) -> bytes:
    """The canonical form of `value` (the bytes of `_stdlib_canonical_json`, mostly written by orjson)."""
    if _USE_ORJSON and (type(value) is dict or type(value) is list):
        try:
            out = orjson.dumps(value, option=_ORJSON_OPTS)
        except orjson.JSONEncodeError:
            pass
        else:
            if not _tiny_float_in(out) and (b"null" not in out or orjson.loads(out) == value):
                return out
    return _stdlib_canonical_json(value)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def digest(value: Any) -> str:
    """sha256 of the canonical JSON of `value`."""
    return sha256_hex(canonical_json(value))


def payload_hash(payload: dict[str, Any]) -> str:
    """The ingestion law's payload hash: sha256 over the canonical payload."""
    return digest(payload)


def config_digest(config: dict[str, Any]) -> str:
    """Digest of a run config; the config must not already carry its own digest."""
    if "config_digest" in config:
        raise ValueError("config_digest is computed over the config without its own digest field")
    return digest(config)

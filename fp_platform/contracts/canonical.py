"""Canonical JSON and the digests built on it (payload_hash, config_digest).

Canonical form: keys sorted, no whitespace, UTF-8, no NaN/Infinity. Two documents that are equal
as JSON values always give the same bytes, so their digests are stable across runs and hosts.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

DIGEST_ALGO = "sha256"


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


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

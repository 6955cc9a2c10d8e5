"""What IG refuses for its shape alone: nesting depth, NUL characters, unsafe ids, records the broker cannot hold.

These checks run before anything is hashed, stored or published, so no property of an input can reach a
store that would refuse it (a Postgres text column refuses U+0000, a btree index refuses long keys, the
broker refuses records above its `message.max.bytes`) and turn a refusal into a 5xx after a claim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from fp_platform.contracts.canonical import sha256_hex
from fp_platform.contracts.payloads import ID_MAX_CHARS, ID_PATTERN

_ID = re.compile(ID_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Shape:
    """Depth (a scalar is 0, `{}` or `[]` is 1) and whether any string, key or value, holds U+0000."""

    depth: int
    has_nul: bool


def shape(doc: Any, stop_at: int) -> Shape:
    """Iterative walk (no recursion: orjson parses up to 1,024 levels, deeper than Python's stack allows);
    stops descending past `stop_at` levels, which is all a caller comparing with a limit needs."""
    depth, has_nul = 0, False
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, str):
            has_nul = has_nul or "\x00" in node
            continue
        if isinstance(node, dict):
            items = list(node.values())
            has_nul = has_nul or any("\x00" in k for k in node)
        elif isinstance(node, list):
            items = node
        else:
            continue
        depth = max(depth, level + 1)
        if level + 1 <= stop_at:
            stack.extend((child, level + 1) for child in items)
    return Shape(depth, has_nul)


def id_problem(value: str, name: str) -> str | None:
    """Why `value` cannot be stored as an id (None when it can): the envelope contract's id rule."""
    if len(value) > ID_MAX_CHARS:
        return f"{name}: {len(value)} characters > {ID_MAX_CHARS}"
    if not _ID.match(value):
        if _CONTROL.search(value):
            return f"{name}: contains a control character"
        return f"{name}: must hold a character other than '.' (got {len(value)} dots)" if value else f"{name}: empty"
    return None


def stored_id(value: str, name: str) -> str:
    """The id a receipt stores for `value`: itself when valid, else a stable digest of it (`invalid_…`),
    so an id no store can hold still gets its receipt and its quarantined envelope."""
    if id_problem(value, name) is None:
        return value
    return "invalid_" + sha256_hex(value.encode("utf-8", "surrogatepass"))[:40]


def printable(text: str, limit: int = 2000) -> str:
    """A reason safe for a text column and a log line: control characters escaped, bounded length."""
    clean = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def record_bytes(value: bytes, key: bytes | None, headers: list[tuple[str, str | bytes]]) -> int:
    """Bytes a record puts against the broker's limit: value, key and headers (framing is the margin's job)."""
    size = len(value) + (len(key) if key else 0)
    for k, v in headers:
        size += len(k.encode()) + len(v if isinstance(v, bytes) else str(v).encode())
    return size


def broker_message_max_bytes(admin: AdminClient, topics: list[str], configured: int, timeout_s: float = 5.0) -> int:
    """The smallest record limit the broker declares (broker `message.max.bytes`, topic `max.message.bytes`),
    never above `configured` (the producer's own `message.max.bytes`, which refuses larger records locally).
    A broker that does not describe its configs (Tansu 0.6 answers DescribeConfigs with none) leaves
    `configured`: the handle is then the declared limit of that broker."""
    limits = [configured]
    md = admin.list_topics(timeout=timeout_s)
    resources = [ConfigResource(ResourceType.BROKER, str(b)) for b in md.brokers]
    resources += [ConfigResource(ResourceType.TOPIC, t) for t in topics if t in md.topics]
    if not resources:
        return configured
    for fut in admin.describe_configs(resources, request_timeout=timeout_s).values():
        try:
            cfg = fut.result(timeout=timeout_s)
        except Exception:  # noqa: BLE001 - a broker that cannot describe leaves the configured limit
            continue
        for name in ("message.max.bytes", "max.message.bytes"):
            entry = cfg.get(name)
            if entry is not None and str(entry.value).isdigit():
                limits.append(int(entry.value))
    return min(limits)

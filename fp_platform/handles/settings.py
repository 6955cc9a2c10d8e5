"""Typed settings: a plane's tuning values, read from the handles once and checked by type at load.

A plane declares a frozen dataclass of knobs (`batch_size: int = knob("WSP_BATCH_SIZE")`) and reads
`WspSettings.load(h).batch_size`: an editor follows the attribute, a misspelt handle key or a value of
the wrong type fails when the settings load (a worker's start), not deep inside its first batch.
"""

from __future__ import annotations

from dataclasses import MISSING, field, fields
from functools import cache
from typing import Any, Self, get_type_hints

from fp_platform.handles import HandleError, Handles, handles, load

_HANDLE = "handle"


def knob(key: str) -> Any:
    """A settings field whose value is the handle `key`."""
    return field(default=MISSING, metadata={_HANDLE: key})


def _typed(value: Any, expected: type, key: str, profile: str) -> Any:
    """The value if it is of the declared type (an int is a float; a bool is never a number)."""
    ok = (
        isinstance(value, bool)
        if expected is bool
        else not isinstance(value, bool) and isinstance(value, (int, float) if expected is float else expected)
    )
    if not ok:
        raise HandleError(
            f"handle {key} is {value!r} ({type(value).__name__}) in profile {profile}; "
            f"its setting expects {expected.__name__}"
        )
    return float(value) if expected is float else value


class Settings:
    """Base of a plane's settings dataclass (declare it `@dataclass(frozen=True)` with `knob` fields)."""

    @classmethod
    def knobs(cls) -> dict[str, str]:
        """Field name → handle key."""
        return {f.name: f.metadata[_HANDLE] for f in fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def load(cls, h: Handles | None = None) -> Self:
        """The settings of `h` (default: the current profile's registry); cached per profile."""
        h = h or handles()
        return _cached(cls, h.profile) if h is load(h.profile) else cls._read(h)

    @classmethod
    def _read(cls, h: Handles) -> Self:
        hints = get_type_hints(cls)
        return cls(**{name: _typed(h.get(key), hints[name], key, h.profile) for name, key in cls.knobs().items()})


@cache
def _cached(cls: type[Settings], profile: str) -> Settings:
    return cls._read(load(profile))

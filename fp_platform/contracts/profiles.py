"""Policy profiles shipped with a plane: `<package>/policies/<profile>.yaml`, read one way."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any, TypeVar

import yaml


def read_profile(package: str, profile: str, what: str, error: type[Exception]) -> dict[str, Any]:
    """The profile's YAML document; `error` (the plane's own) when the profile does not exist."""
    path = resources.files(package) / "policies" / f"{profile}.yaml"
    if not path.is_file():
        raise error(f"no {what} profile {profile!r} ({path})")
    return yaml.safe_load(path.read_text())


T = TypeVar("T")


def profile_loader(
    package: str, what: str, error: type[Exception], check: Callable[[dict[str, Any], str], T], handle_key: str
) -> Callable[[Any], T]:
    """A plane's `load(h)`: the profile its handle `handle_key` names, read and checked (`check(doc, name)`)
    once per profile name."""

    @cache
    def by_name(profile: str) -> T:
        return check(read_profile(package, profile, what, error), profile)

    def load(h: Any) -> T:
        return by_name(h.get(handle_key))

    return load

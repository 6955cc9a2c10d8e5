"""Policy profiles shipped with a plane: `<package>/policies/<profile>.yaml`, read one way."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml


def read_profile(package: str, profile: str, what: str, error: type[Exception]) -> dict[str, Any]:
    """The profile's YAML document; `error` (the plane's own) when the profile does not exist."""
    path = resources.files(package) / "policies" / f"{profile}.yaml"
    if not path.is_file():
        raise error(f"no {what} profile {profile!r} ({path})")
    return yaml.safe_load(path.read_text())

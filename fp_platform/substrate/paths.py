"""Where local state lives: `.fp/` beside the source tree (or `FP_STATE_DIR`)."""

from __future__ import annotations

import os
from pathlib import Path

STATE_DIR_ENV_VAR = "FP_STATE_DIR"


def project_root() -> Path:
    """The source checkout when installed editable; otherwise the working directory."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").exists() else Path.cwd()


def state_dir() -> Path:
    override = os.environ.get(STATE_DIR_ENV_VAR)
    path = Path(override).resolve() if override else project_root() / ".fp"
    path.mkdir(parents=True, exist_ok=True)
    return path

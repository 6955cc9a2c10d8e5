"""The active run: the platform_run_id `fp-platform run` recorded last, which the pack supervisor sensor keeps
the spine packs serving (and `fp-platform operate up` uses when no --run-id is given)."""

from __future__ import annotations

from pathlib import Path

from fp_platform.handles import Handles
from fp_platform.substrate.paths import project_root


def active_run_file(h: Handles) -> Path:
    return project_root() / str(h.get("ACTIVE_RUN_ID_SOURCE"))


def record_active_run(h: Handles, platform_run_id: str) -> None:
    path = active_run_file(h)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(platform_run_id + "\n")

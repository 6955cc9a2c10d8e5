"""What code a run executes: git sha, image tag/digest, and a digest of the package sources.

In the platform image FP_IMAGE_TAG / FP_IMAGE_DIGEST / FP_GIT_SHA are set at build time; from a
source checkout the git sha comes from git and the digest from the package files themselves.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from functools import cache
from pathlib import Path

import fp_platform

_PACKAGE_DIR = Path(fp_platform.__file__).parent


@cache
def source_digest() -> str:
    """sha256 over (relative path, content) of every .py/.yaml/.sql file of the package."""
    h = hashlib.sha256()
    for path in sorted(p for p in _PACKAGE_DIR.rglob("*") if p.suffix in {".py", ".yaml", ".sql"}):
        h.update(str(path.relative_to(_PACKAGE_DIR)).encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + h.hexdigest()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=_PACKAGE_DIR, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def image_provenance(tag_pattern: str) -> dict[str, object]:
    git_sha = os.environ.get("FP_GIT_SHA") or _git("rev-parse", "HEAD") or "unknown"
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no")) if "FP_GIT_SHA" not in os.environ else False
    return {
        "image_tag": os.environ.get("FP_IMAGE_TAG") or tag_pattern.format(git_sha=git_sha[:12]),
        "image_digest": os.environ.get("FP_IMAGE_DIGEST") or source_digest(),
        "git_sha": git_sha,
        "git_dirty": dirty,
        "package_version": fp_platform.__version__,
    }

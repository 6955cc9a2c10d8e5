"""The dependency rule (docs/design.md §2) is enforced, not prose: the import-linter contracts in
pyproject.toml hold for the code, and a cross-plane import added to a copy of it breaks them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(src_root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` with the project's contracts over the `fp_platform` package found under `src_root`."""
    env = {**os.environ, "PYTHONPATH": str(src_root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=src_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_code_keeps_every_contract():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_a_cross_plane_import_breaks_the_rule(tmp_path):
    shutil.copytree(
        ROOT / "fp_platform", tmp_path / "fp_platform", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    victim = tmp_path / "fp_platform" / "rtdl" / "keyed_state.py"
    victim.write_text(victim.read_text() + "\nfrom fp_platform.learning import ofs  # noqa: E402,F401\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "fp_platform.rtdl is not allowed to import fp_platform.learning" in result.stdout, result.stdout[-3000:]


def test_phase_ids_are_spelled_once():
    """A phase id is a constant of contracts/phases.py, imported; no module spells one as a literal."""
    literal = re.compile(r"""(?<![\w'"{])["']P(\(-1\)|\d{1,2})["'](?![\w'"])""")
    spelled = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "fp_platform").rglob("*.py"))
        if path.relative_to(ROOT).as_posix() != "fp_platform/contracts/phases.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert not spelled, spelled

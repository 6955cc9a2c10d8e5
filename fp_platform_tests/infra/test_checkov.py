"""checkov over the Terraform (stacks and modules, Confluent included), the Dockerfile and the image workflow: no
failed check, and every check `.checkov.yaml` skips names the spec section that makes it wrong for dev_min."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fp_platform_tests.infra.terraform import REPO, TERRAFORM_DIR

pytestmark = pytest.mark.infra

CONFIG = REPO / ".checkov.yaml"
SPEC_REF = re.compile(r"§\s*\d")


@pytest.fixture(scope="session")
def checkov() -> str:
    """The checkov binary beside this interpreter's (the dev extra); asking for it puts a test in `infra`."""
    venv_bin = Path(__import__("sys").executable).parent / "checkov"
    binary = str(venv_bin) if venv_bin.exists() else shutil.which("checkov")
    if binary is None:
        pytest.skip("checkov is not installed (pip install -e '.[dev]')")
    return binary


def _scan(checkov: str, *target: str) -> list[dict]:
    proc = subprocess.run(
        [checkov, "--config-file", str(CONFIG), *target, "-o", "json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    reports = json.loads(proc.stdout)
    return reports if isinstance(reports, list) else [reports]


def _failures(reports: list[dict]) -> list[str]:
    return [
        f"{f['check_id']} {f['resource']} ({f['file_path']}:{f['file_line_range'][0]})"
        for r in reports
        for f in r["results"]["failed_checks"]
    ]


def test_terraform_has_no_failed_check(checkov):
    reports = _scan(checkov, "-d", str(TERRAFORM_DIR), "--framework", "terraform")
    (summary,) = [r["summary"] for r in reports]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] >= 200, summary  # the scan saw the stacks
    assert not _failures(reports), "\n".join(_failures(reports))


def test_dockerfile_has_no_failed_check(checkov):
    reports = _scan(checkov, "-f", str(REPO / "Dockerfile"), "--framework", "dockerfile")
    assert reports[0]["summary"]["passed"] >= 10, reports[0]["summary"]
    assert not _failures(reports), "\n".join(_failures(reports))


def test_the_image_workflow_has_no_failed_check(checkov):
    workflow = REPO / ".github" / "workflows" / "image.yml"
    reports = _scan(checkov, "-f", str(workflow), "--framework", "github_actions")
    assert reports[0]["summary"]["passed"] >= 10, reports[0]["summary"]
    assert not _failures(reports), "\n".join(_failures(reports))


def test_every_skipped_check_names_its_spec_section():
    skipped = yaml.safe_load(CONFIG.read_text())["skip-check"]
    assert skipped, "no skips: then drop this test's premise"
    lines = CONFIG.read_text().splitlines()
    for check in skipped:
        (line,) = [x for x in lines if re.match(rf"\s*-\s*{re.escape(check)}\s*#", x)]
        assert SPEC_REF.search(line.split("#", 1)[1]), f"skip of {check} gives no spec section: {line.strip()}"
    inline = [
        f"{p}:{n}"
        for p in TERRAFORM_DIR.rglob("*.tf")
        for n, x in enumerate(p.read_text().splitlines(), 1)
        if "checkov:skip" in x and not SPEC_REF.search(x)
    ]
    assert not inline, f"inline checkov skips without a spec section: {inline}"

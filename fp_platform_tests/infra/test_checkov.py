"""checkov over the Terraform (stacks and modules, Confluent included), the Kubernetes manifests (infra/k8s), the
Dockerfile and the image workflow: no failed check, and every check `.checkov.yaml` skips names the spec section
that makes it wrong for dev_min."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fp_platform.handles import handles
from fp_platform.operate import k8s
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


def test_k8s_manifests_have_no_failed_check(checkov, tmp_path):
    """The committed rendering (placeholders), a real one (run, account, digest) and, as the control, a copy of
    one Deployment without its securityContext and probes: checkov must fail that copy and nothing else."""
    full = handles("dev_full")
    pins = k8s.Pins(
        "platform_20250101T000000Z", "123456789012", k8s.image_ref(full, "123456789012", "sha256:" + "0" * 64)
    )
    k8s.write_manifests(tmp_path / "real", full, pins)
    weak = k8s.render_pack(full, k8s.SPINE_PACKS[1], pins)[0]
    (container,) = weak["spec"]["template"]["spec"]["containers"]
    for key in ("securityContext", "livenessProbe", "readinessProbe", "startupProbe"):
        del container[key]
    (tmp_path / "weak").mkdir()
    (tmp_path / "weak" / "deployment.yaml").write_text(yaml.safe_dump(weak))
    shutil.copytree(REPO / "infra" / "k8s", tmp_path / "committed")  # one directory: checkov's JSON is one report
    reports = _scan(checkov, "-d", str(tmp_path), "--framework", "kubernetes")
    (summary,) = [r["summary"] for r in reports]
    assert summary["parsing_errors"] == 0
    objects = sum(len(docs) for docs in k8s.render_docs(full, pins).values())  # packs' and one-shot jobs'
    assert summary["resource_count"] >= 2 * objects + 1, summary  # both renderings and the control
    failed = _failures(reports)
    assert failed and all("/weak/" in f for f in failed), "\n".join(failed)
    assert {f.split()[0] for f in failed} >= {"CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_22", "CKV_K8S_20", "CKV_K8S_28"}


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

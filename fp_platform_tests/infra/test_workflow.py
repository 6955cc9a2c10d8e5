"""The image workflow (.github/workflows/image.yml, run-process P(-1).5 Option A): valid against GitHub's workflow
schema (vendored by check-jsonschema, offline), linted by actionlint where its binary is installed, and wired the way
P(-1) needs: the immutable tag from the full commit, the smoke with no network or secrets, an SBOM, an OIDC push
role instead of stored keys, and the repository and region the handles name."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fp_platform.handles import handles

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "image.yml"
BIN = Path(sys.executable).parent
# docs/decisions.md D18: a third-party action is pinned to a full commit sha with its release in a comment.
PINNED_USE = re.compile(r"^\s*(?:-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s+v\d+\.\d+\.\d+\s*$")
USES = re.compile(r"^\s*(?:-\s+)?uses:")


def _tool(name: str) -> str | None:
    return str(BIN / name) if (BIN / name).exists() else shutil.which(name)


@pytest.fixture(scope="module")
def workflow() -> dict:
    doc = yaml.safe_load(WORKFLOW.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


@pytest.fixture(scope="module")
def steps(workflow) -> list[dict]:
    return workflow["jobs"]["image"]["steps"]


def _step(steps: list[dict], uses: str) -> dict:
    (step,) = [s for s in steps if s.get("uses", "").startswith(uses)]
    return step


def test_the_workflow_matches_githubs_schema():
    binary = _tool("check-jsonschema")
    if binary is None:
        pytest.skip("check-jsonschema is not installed (make setup installs the dev extra)")
    out = subprocess.run(
        [binary, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_finds_nothing():
    binary = _tool("actionlint")
    if binary is None:
        pytest.skip(
            "actionlint is not installed: `pip install -e '.[actionlint]'` (its sdist fetches the binary from "
            "GitHub releases) or put actionlint on PATH"
        )
    out = subprocess.run([binary, "-no-color", str(WORKFLOW)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_image_is_tagged_with_the_full_commit_and_smoked_without_network(steps):
    runs = "\n".join(s.get("run", "") for s in steps)
    assert 'echo "tag=git-${GITHUB_SHA}"' in runs  # the full sha, never a short or `unknown` one
    assert '--build-arg "GIT_SHA=${GITHUB_SHA}"' in runs
    (smoke,) = [s["run"] for s in steps if " smoke" in s.get("run", "")]
    assert "--network none" in smoke and "docker run --rm" in smoke
    assert "secrets." not in WORKFLOW.read_text()  # nothing stored is handed to any step


def test_an_sbom_is_made_from_the_built_image(steps):
    sbom = _step(steps, "anchore/sbom-action@")
    assert sbom["with"]["image"].startswith("fp-platform:")


def test_the_push_uses_an_oidc_role_and_no_stored_keys(workflow, steps):
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["jobs"]["image"]["permissions"]["id-token"] == "write"
    creds = _step(steps, "aws-actions/configure-aws-credentials@")["with"]
    assert set(creds) == {"role-to-assume", "aws-region"}  # no aws-access-key-id / aws-secret-access-key
    assert "docker push" in _step_run(steps, "push")


def _step_run(steps: list[dict], step_id: str) -> str:
    (step,) = [s for s in steps if s.get("id") == step_id]
    return step["run"]


def test_the_repository_and_region_are_the_handles(workflow):
    pins = yaml.safe_load((ROOT / "infra" / "handles" / "dev_min.yaml").read_text())["handles"]
    assert workflow["env"]["ECR_REPOSITORY"] == pins["ECR_REPO_NAME"]
    assert workflow["env"]["AWS_REGION"] == handles("dev_min").get("AWS_REGION")
    assert str(handles("dev_min").get("ECR_REPO_URI")).endswith("/" + pins["ECR_REPO_NAME"])


def test_every_action_is_pinned_to_a_commit_sha_with_its_release_in_a_comment():
    uses = [line for line in WORKFLOW.read_text().splitlines() if USES.match(line)]
    assert len(uses) == 4, uses
    unpinned = [line.strip() for line in uses if not PINNED_USE.match(line)]
    assert not unpinned, f"actions not pinned to a full commit sha with `# vX.Y.Z` (decisions.md D18): {unpinned}"


@pytest.mark.parametrize(
    "line",
    [
        "      - uses: actions/checkout@v4",
        "        uses: aws-actions/amazon-ecr-login@03f1aad4c6c7ffd436567f42f9384779290529bd",
        "        uses: aws-actions/amazon-ecr-login@03f1aad4c6  # v2.1.7",
        "        uses: aws-actions/amazon-ecr-login@main  # v2.1.7",
    ],
)
def test_a_tag_a_short_sha_or_a_missing_release_comment_is_not_a_pin(line):
    assert USES.match(line) and not PINNED_USE.match(line)


def test_the_push_runs_only_on_the_ref_the_push_role_trusts(workflow):
    """Terraform's trust names `repo:<owner>/<repo>:ref:<GITHUB_OIDC_PUSH_REF>`: a push from any other branch would
    get no session, so the workflow runs on that branch alone."""
    pins = yaml.safe_load((ROOT / "infra" / "handles" / "dev_min.yaml").read_text())["handles"]
    assert workflow["on"]["push"]["branches"] == [pins["GITHUB_OIDC_PUSH_REF"].removeprefix("refs/heads/")]

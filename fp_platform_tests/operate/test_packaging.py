"""P(-1) PACKAGING_READY without the stack: the immutable tag refuses an unknown commit, the lock check catches a
pyproject edit, the registry digest comes from ECR (moto, in-process) and fails closed on a missing tag, the asset
records its evidence and P1 pins the registry digest (cloud) or says there is no image (local)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
from dagster import DagsterInstance, materialize
from moto import mock_aws

from fp_platform.contracts.evidence import EvidenceError, EvidenceWriter
from fp_platform.contracts.gates import gate_evidence_name, judge
from fp_platform.contracts.phases import P_M1
from fp_platform.handles import handles
from fp_platform.operate import gates, packaging, run_pinning
from fp_platform.operate.assets import platform_image
from fp_platform.operate.provenance import CodeIdentity
from fp_platform.resources import GateCatalog, PlatformResource, platform_run_partitions
from fp_platform_tests.gates.test_phase_asset import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
SHA = "0123456789abcdef0123456789abcdef01234567"
TAG = f"git-{SHA}"
RUN = "platform_15000101T000001Z"
REPO = "fraud-platform-dev-min-platform"
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 1,
            "digest": "sha256:" + "a" * 64,
        },
        "layers": [],
    }
)
STORE = MemoryStore()


class MemoryPlatform(PlatformResource):
    """The platform resource with its evidence in memory (no object store)."""

    def evidence(self, platform_run_id: str) -> EvidenceWriter:
        return EvidenceWriter(STORE, "evidence", f"runs/{platform_run_id}/", platform_run_id)


def _identity(sha: str | None, tag_env: str | None = None) -> CodeIdentity:
    return CodeIdentity(sha, False, (), "image" if sha else "unknown", tag_env)


@pytest.fixture
def aws(monkeypatch):
    """Fake credentials and moto's in-process AWS; the image's commit baked in as the Dockerfile does."""
    for var, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    monkeypatch.setenv("FP_GIT_SHA", SHA)
    monkeypatch.setenv("FP_IMAGE_TAG", TAG)
    with mock_aws():
        yield boto3.client("ecr", region_name="eu-west-2")


def _seed(ecr, tag: str = TAG) -> str:
    """Push (as far as ECR knows) an image manifest under `tag`; the digest the registry gave it."""
    ecr.create_repository(repositoryName=REPO, imageTagMutability="IMMUTABLE")
    return ecr.put_image(repositoryName=REPO, imageManifest=MANIFEST, imageTag=tag)["image"]["imageId"]["imageDigest"]


def _materialize(profile: str):
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(platform_run_partitions.name, [RUN])
    result = materialize(
        [platform_image],
        partition_key=RUN,
        instance=instance,
        resources={
            "platform": MemoryPlatform(profile=profile),
            "gate_catalog": GateCatalog(spine_verdicts=[], assets=28, checks=94),
        },
        raise_on_error=False,
    )
    writer = MemoryPlatform(profile=profile).evidence(RUN)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    return writer, checks


# --- the tag ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sha", [None, "unknown", SHA[:12], SHA.upper(), ""])
def test_an_unknown_or_abbreviated_commit_has_no_immutable_tag(sha):
    with pytest.raises(packaging.PackagingError, match="full git sha"):
        packaging.immutable_tag(handles("local"), _identity(sha))


def test_the_tag_is_git_and_the_full_sha_and_agrees_with_the_image():
    assert packaging.immutable_tag(handles("dev_min"), _identity(SHA, TAG)) == TAG
    with pytest.raises(packaging.PackagingError, match="declares tag git-other"):
        packaging.immutable_tag(handles("dev_min"), _identity(SHA, "git-other"))


# --- the lock -----------------------------------------------------------------------------------------------
def test_the_committed_lock_matches_pyproject():
    check = packaging.lock_check(ROOT)
    assert check["consistent"], check["detail"]
    assert check["lock_digest"].startswith("sha256:")


def test_a_dependency_added_without_relocking_is_caught(tmp_path):
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    added = pyproject.read_text().replace('  "pyyaml>=6,<7",\n', '  "pyyaml>=6,<7",\n  "tabulate>=0.9",\n')
    assert "tabulate" in added
    pyproject.write_text(added)
    check = packaging.lock_check(tmp_path)
    assert not check["consistent"], check
    assert "error" in check["detail"], check["detail"]  # uv says why (needs updating, or cannot resolve offline)
    assert not packaging.lock_check(tmp_path / "nowhere")["consistent"]


# --- the registry (moto ECR) --------------------------------------------------------------------------------
def test_the_registry_digest_is_resolved_by_tag(aws):
    digest = _seed(aws)
    uri = packaging.repository_uri(handles("dev_min"), "123456789012")
    found = packaging.registry_image(aws, uri, TAG)
    assert found["found"] and found["digest"] == digest and found["image_ref"] == f"{uri}@{digest}"


def test_a_missing_tag_or_repository_fails_closed(aws):
    uri = packaging.repository_uri(handles("dev_min"), "123456789012")
    assert "no repository" in packaging.registry_image(aws, uri, TAG)["detail"]
    _seed(aws, tag=f"git-{'f' * 40}")
    missing = packaging.registry_image(aws, uri, TAG)
    assert not missing["found"] and missing["digest"] is None and TAG in missing["detail"]


def test_the_local_profile_has_no_repository():
    assert packaging.repository_uri(handles("local"), "123456789012") is None


# --- the asset and run.json ---------------------------------------------------------------------------------
def test_p_minus_1_on_dev_min_records_the_registry_digest_and_p1_pins_it(aws, monkeypatch):
    digest = _seed(aws)
    # the image's own smoke runs in a child process (tested in test_smoke.py); here: what P(-1) makes of its answer
    monkeypatch.setattr(packaging, "smoke_subprocess", lambda: {"ok": True, "mode": "subprocess", "entrypoints": []})
    writer, checks = _materialize("dev_min")
    assert checks == {n: True for n in checks} and len(checks) == len(gates.PLATFORM_IMAGE), checks
    doc = writer.read("packaging/image_provenance.json")
    assert doc["phase_id"] == P_M1 and doc["image"]["image_digest"] == digest
    assert writer.read(gate_evidence_name(P_M1, "platform_image"))["verdict"] == "PASS"
    image = run_pinning.image_from_packaging(doc)
    run_json = run_pinning.run_json_doc(handles("dev_min"), RUN, run_pinning.RunParams(scale="smoke"), image)
    assert run_json["image_digest"] == digest and run_json["image_digest_kind"] == "registry"
    assert run_json["image_tag"] == TAG and run_json["image_ref"].endswith(f"@{digest}")
    assert run_pinning.check_run_json_complete({**run_json, "written_at_utc": "t"}) == []


def test_p_minus_1_on_dev_min_fails_closed_when_the_tag_was_never_pushed(aws, monkeypatch):
    monkeypatch.setattr(packaging, "smoke_subprocess", lambda: {"ok": True, "mode": "subprocess", "entrypoints": []})
    aws.create_repository(repositoryName=REPO)
    writer, checks = _materialize("dev_min")
    assert checks["image_in_registry"] is False and checks["immutable_tag"] is True
    assert writer.read(gate_evidence_name(P_M1, "platform_image"))["verdict"] == "FAIL"


def test_p_minus_1_on_the_local_profile_records_the_source_digest_and_no_image(monkeypatch):
    monkeypatch.setenv("FP_GIT_SHA", SHA)  # the commit as an image would bake it: the verdict does not hang on git
    monkeypatch.delenv("FP_IMAGE_TAG", raising=False)
    writer, checks = _materialize("local")
    assert checks == {g.name: True for g in gates.PLATFORM_IMAGE}, checks
    image = writer.read("packaging/image_provenance.json")["image"]
    assert image["image_digest"] is None and image["image_ref"] is None
    assert image["image_digest_kind"].startswith("none") and image["source_digest"].startswith("sha256:")
    run_json = run_pinning.run_json_doc(handles("local"), RUN, run_pinning.RunParams(scale="smoke"), image)
    assert run_pinning.check_run_json_complete({**run_json, "written_at_utc": "t"}) == []


def test_run_json_needs_the_registry_digest_when_it_claims_one():
    run_json = {f: "x" for f in run_pinning.RUN_JSON_REQUIRED} | {"config": {"a": 1}, "image_digest_kind": "registry"}
    assert "image_digest" in run_pinning.check_run_json_complete(run_json)


def test_p1_refuses_a_run_without_p_minus_1s_image():
    with pytest.raises(EvidenceError, match="no image identity"):
        run_pinning.image_from_packaging({"platform_run_id": RUN, "image": {"image_tag": None}})


def test_gates_on_a_dirty_checkout_warn_only():
    facts = {
        "profile": "local",
        "git_sha": SHA,
        "git_origin": "git",
        "git_dirty": True,
        "dirty_paths": ["Makefile"],
        "image_tag": TAG,
        "tag_error": None,
        "source_digest": "sha256:" + "c" * 64,
        "lock": {"lock_file": "uv.lock", "lock_digest": "sha256:x", "consistent": True, "detail": ""},
        "smoke": {"ok": True, "mode": "in_process", "entrypoints": ["m"]},
        "registry": None,
    }
    results = {r.name: r for r in judge(gates.PLATFORM_IMAGE, facts)}
    assert not results["tree_committed"].passed and results["tree_committed"].advisory
    assert "Makefile" in results["tree_committed"].detail
    assert all(r.passed for n, r in results.items() if n != "tree_committed")


def test_p_minus_1_in_the_platform_run_job_judges_the_whole_graph(monkeypatch):
    """As `fp-platform run` executes it (the platform_run job of the Definitions, in-process, P(-1) alone
    selected): the in-process smoke counts every asset of the Definitions, not just the selected one."""
    from dagster import AssetKey, Definitions

    from fp_platform.definitions import all_assets, defs, platform_run_job

    monkeypatch.setenv("FP_GIT_SHA", SHA)
    monkeypatch.delenv("FP_IMAGE_TAG", raising=False)
    resources = {**defs.resources, "platform": MemoryPlatform(profile="local")}
    job = Definitions(assets=all_assets, jobs=[platform_run_job], resources=resources).resolve_job_def("platform_run")
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(platform_run_partitions.name, [RUN])
    result = job.execute_in_process(
        instance=instance, partition_key=RUN, asset_selection=[AssetKey("platform_image")], raise_on_error=False
    )
    assert result.success
    facts = MemoryPlatform(profile="local").evidence(RUN).read("packaging/image_provenance.json")
    assert facts["smoke"]["definitions"] == {
        "assets": sum(len(a.keys) for a in all_assets),
        "checks": sum(len(list(a.check_specs)) for a in all_assets),
    }
    assert facts["smoke"]["definitions"]["assets"] >= 20
    assert facts["smoke"]["ok"] and facts["image"]["image_tag"] == TAG

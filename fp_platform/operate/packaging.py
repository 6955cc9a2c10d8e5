"""P(-1) PACKAGING_READY (run-process §5 P(-1)): the run executes packaged, identified code.

What P(-1) establishes, on every profile: the commit is known and names an immutable `git-<sha>` tag, the dependency
lock matches pyproject.toml (`uv lock --check`), the platform's entrypoints are in the package and its smoke runs
without secrets. Where the profile runs an image (`ECR_REPO_URI` set: dev_min, dev_full) the image with that tag must
exist in the registry, and its registry digest is what `run.json` records; the local profile has no image and
records the digest of the source files instead, named as such.

Plain Python (no Dagster): `operate/assets.py` turns it into the `platform_image` asset, `operate/gates.py`
judges what `packaging_facts` returns, and `fp-platform smoke` runs `smoke_report`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fp_platform
from fp_platform.handles import HandleError, Handles
from fp_platform.operate.packs import SPINE_PACKS
from fp_platform.operate.provenance import CodeIdentity, code_identity, file_digest, source_digest
from fp_platform.substrate.paths import project_root

GIT_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
LOCK_FILE = "uv.lock"
LOCK_CHECK_TIMEOUT_S = 60
SMOKE_TIMEOUT_S = 300
# One-shot jobs the assets launch (`python -m <module> <job>`, checks.launch_job): run-process P(-1).4's job cards.
JOB_MODULES = (
    "fp_platform.world.jobs",
    "fp_platform.control.jobs",
    "fp_platform.obs_gov.jobs",
    "fp_platform.learning.jobs",
)
CLI_MODULE = "fp_platform.cli"
# Variables the smoke child must not see: a smoke that passes only with credentials in reach proves nothing.
_SECRET_ENV = re.compile(r"^(AWS_|FP_PG_DSN$|PGPASSWORD$|DAGSTER_PG|FP_DAGSTER_PG_URL$|KAFKA_|CONFLUENT_)")


class PackagingError(ValueError):
    """The code cannot be named by an immutable tag (unknown commit, a tag that disagrees with the commit)."""


def immutable_tag(h: Handles, identity: CodeIdentity) -> str:
    """`git-<full sha>` (IMAGE_TAG_GIT_SHA_PATTERN). Refuses an unknown or abbreviated commit: a tag that does not
    name one commit is not immutable (run-process P(-1).2.3), and an image whose FP_IMAGE_TAG says otherwise."""
    sha = identity.git_sha or ""
    if not GIT_SHA_RE.match(sha):
        raise PackagingError(
            f"the commit is {sha or 'unknown'!r} ({identity.origin}): an immutable tag needs a full git sha "
            "(build the image with --build-arg GIT_SHA=$(git rev-parse HEAD), or run from a git checkout)"
        )
    tag = h.pattern("IMAGE_TAG_GIT_SHA_PATTERN", git_sha=sha)
    if identity.image_tag_env and identity.image_tag_env != tag:
        raise PackagingError(f"the image declares tag {identity.image_tag_env} but its commit gives {tag}")
    return tag


def uv_binary() -> str | None:
    """uv beside this interpreter (`make setup` and the image install it there), else on PATH."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.exists() else shutil.which("uv")


def lock_check(root: Path) -> dict[str, Any]:
    """Whether `root/uv.lock` still matches `root/pyproject.toml`: `uv lock --check --offline` resolves nothing
    when the lock satisfies the project (tens of milliseconds, no network) and fails when pyproject changed."""
    lock = root / LOCK_FILE
    doc: dict[str, Any] = {"lock_file": str(lock), "lock_digest": file_digest(lock), "consistent": False}
    uv = uv_binary()
    if doc["lock_digest"] is None:
        return {**doc, "detail": f"no {LOCK_FILE} at {root}"}
    if not (root / "pyproject.toml").is_file():
        return {**doc, "detail": f"no pyproject.toml at {root} to check the lock against"}
    if uv is None:
        return {**doc, "detail": "uv is not installed (make setup installs it into .venv)"}
    try:
        out = subprocess.run(
            [uv, "lock", "--check", "--offline", "--project", str(root)],
            capture_output=True,
            text=True,
            timeout=LOCK_CHECK_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {**doc, "detail": f"uv lock --check did not finish: {exc}"}
    said = " ".join((out.stderr or out.stdout).split())[-400:]
    return {**doc, "consistent": out.returncode == 0, "detail": said or f"uv exited {out.returncode}"}


def repository_uri(h: Handles, account_id: str) -> str | None:
    """The profile's ECR repository URI for `account_id`, None where the profile runs no image (local)."""
    pattern = h.values.get("ECR_REPO_URI")
    return str(pattern).format(aws_account_id=account_id) if pattern else None


def registry_image(ecr: Any, repo_uri: str, tag: str) -> dict[str, Any]:
    """The image at `repo_uri:tag` as the registry describes it (an ECR client, boto3's or moto's): its digest
    and the reference an ECS task definition pins (`repo@digest`). Fails closed: a missing repository or tag, or an
    answer without a digest, is `found: False` with the registry's reason."""
    host, _, repository = repo_uri.partition("/")
    registry_id = host.split(".", 1)[0]  # <account>.dkr.ecr.<region>.amazonaws.com
    doc: dict[str, Any] = {"repository_uri": repo_uri, "tag": tag, "found": False, "digest": None, "image_ref": None}
    try:
        images = ecr.describe_images(registryId=registry_id, repositoryName=repository, imageIds=[{"imageTag": tag}])[
            "imageDetails"
        ]
    except ecr.exceptions.ImageNotFoundException:
        return {**doc, "detail": f"no image tagged {tag} in {repo_uri}"}
    except ecr.exceptions.RepositoryNotFoundException:
        return {**doc, "detail": f"no repository {repository} in registry {registry_id}"}
    digests = sorted({i.get("imageDigest") for i in images if tag in i.get("imageTags", [])} - {None})
    if len(digests) != 1:
        return {**doc, "detail": f"the registry answered {len(digests)} digests for {tag}: {digests}"}
    digest = digests[0]
    return {
        **doc,
        "found": True,
        "digest": digest,
        "image_ref": f"{repo_uri}@{digest}",
        "detail": f"{repo_uri}:{tag} is {digest}",
    }


def _entrypoint_missing(module: str) -> bool:
    """True when `python -m module` could not run: no module, or a package without `__main__`."""
    try:
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.submodule_search_locations is not None:
            spec = importlib.util.find_spec(f"{module}.__main__")
    except ModuleNotFoundError:
        return True
    return spec is None


def smoke_report(h: Handles) -> dict[str, Any]:
    """What `fp-platform smoke` proves without touching a secret or a server: the profile's handles load and
    resolve (topics, buckets, the evidence root, the image tag pattern), and every entrypoint of run-process
    P(-1).4 (pack workers, one-shot jobs, the CLI) is in the package."""
    problems: list[str] = []
    try:
        topics, buckets = len(h.topics()), len(h.buckets())
        h.pattern("S3_EVIDENCE_RUN_ROOT_PATTERN", platform_run_id="platform_20000101T000000Z")
        if "{git_sha}" not in str(h.get("IMAGE_TAG_GIT_SHA_PATTERN")):
            problems.append("IMAGE_TAG_GIT_SHA_PATTERN does not name the commit")
    except (HandleError, KeyError, ValueError) as exc:
        topics = buckets = 0
        problems.append(f"handles: {exc}")
    workers = sorted({w.module for p in SPINE_PACKS for w in p.workers})
    entrypoints = [*workers, *JOB_MODULES, CLI_MODULE]
    missing = [m for m in entrypoints if _entrypoint_missing(m)]
    problems += [f"entrypoint {m} is not in the package" for m in missing]
    return {
        "profile": h.profile,
        "package_version": fp_platform.__version__,
        "topics": topics,
        "buckets": buckets,
        "entrypoints": entrypoints,
        "problems": problems,
        "ok": not problems,
    }


def smoke_subprocess(timeout_s: float = SMOKE_TIMEOUT_S) -> dict[str, Any]:
    """`python -m fp_platform.cli smoke --json` in a child with no credentials in its environment and an empty
    state directory (no local secrets files): what the image's entrypoint does in CI, here in this interpreter."""
    env = {k: v for k, v in os.environ.items() if not _SECRET_ENV.match(k)}
    with tempfile.TemporaryDirectory(prefix="fp-smoke-") as empty:
        env |= {"FP_STATE_DIR": empty, "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull}
        env |= {"AWS_SHARED_CREDENTIALS_FILE": os.devnull}
        try:
            out = subprocess.run(
                [sys.executable, "-m", CLI_MODULE, "smoke", "--json"],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env=env,
                cwd=empty,
            )
        except subprocess.TimeoutExpired:
            return {"ok": False, "mode": "subprocess", "problems": [f"smoke did not finish in {timeout_s:.0f}s"]}
    try:
        report = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        report = {"ok": False, "problems": [f"smoke exited {out.returncode}: {out.stderr.strip()[-400:]}"]}
    ok = out.returncode == 0 and report.get("ok") is True
    return {**report, "ok": ok, "mode": "subprocess", "exit_code": out.returncode}


def packaging_facts(
    h: Handles,
    *,
    in_process_definitions: dict[str, int] | None = None,
    ecr_factory: Callable[[], Any] | None = None,
    account_id: Callable[[], str] | None = None,
    root: Path | None = None,
) -> dict[str, Any]:
    """Everything P(-1)'s gates judge (`operate/gates.py` PLATFORM_IMAGE). `in_process_definitions` (asset and
    check counts of the Definitions this process loaded) is the smoke when PACKAGING_SMOKE_MODE is `in_process`;
    `ecr_factory`/`account_id` reach the registry where the profile runs an image."""
    identity = code_identity()
    try:
        tag, tag_error = immutable_tag(h, identity), None
    except PackagingError as exc:
        tag, tag_error = None, str(exc)
    if h.get("PACKAGING_SMOKE_MODE") == "subprocess":
        smoke = smoke_subprocess()
    else:
        smoke = {**smoke_report(h), "mode": "in_process", "definitions": in_process_definitions}
        if not in_process_definitions or not in_process_definitions.get("assets"):
            smoke |= {"ok": False, "problems": [*smoke["problems"], "no loaded Definitions to judge"]}
    registry: dict[str, Any] | None = None
    if h.values.get("ECR_REPO_URI"):
        if tag is None:
            registry = {"found": False, "digest": None, "detail": "no immutable tag to look up"}
        elif ecr_factory is None or account_id is None:
            registry = {"found": False, "digest": None, "detail": "no registry client for a profile that runs an image"}
        else:
            try:
                uri = repository_uri(h, account_id())
                registry = registry_image(ecr_factory(), str(uri), tag)
            except Exception as exc:  # noqa: BLE001 - an unreachable registry fails the gate with its reason
                registry = {"found": False, "digest": None, "detail": f"registry unreachable: {exc}"}
    return {
        "profile": h.profile,
        "git_sha": identity.git_sha,
        "git_origin": identity.origin,
        "git_dirty": identity.git_dirty,
        "dirty_paths": list(identity.dirty_paths[:20]),
        "image_tag": tag,
        "tag_error": tag_error,
        "source_digest": source_digest(),
        "lock": lock_check(root or project_root()),
        "smoke": smoke,
        "registry": registry,
        "package_version": fp_platform.__version__,
    }


def image_provenance(facts: dict[str, Any]) -> dict[str, Any]:
    """The image identity P1 pins into run.json (spec §6.3.1 "image digest/tag (from P(-1))"): the registry digest
    where there is an image, and on the local profile no image at all, said plainly, with the source digest that
    identifies the code instead."""
    registry = facts["registry"]
    has_image = registry is not None
    return {
        "image_tag": facts["image_tag"],
        "image_digest": registry["digest"] if has_image else None,
        "image_ref": registry.get("image_ref") if has_image else None,
        "image_digest_kind": "registry" if has_image else "none: the local profile runs the source tree",
        "source_digest": facts["source_digest"],
        "lock_digest": facts["lock"]["lock_digest"],
        "git_sha": facts["git_sha"],
        "git_dirty": facts["git_dirty"],
        "package_version": facts["package_version"],
    }

"""The Kubernetes supervisor: the spine packs' workers as apps/v1 Deployments (dev_full, EKS).

Locally `operate/daemons.py` runs each `packs.SPINE_PACKS` worker as a subprocess; here the same
entries render one Deployment each (one replica, Recreate, run scope in the env) and `apply` creates
or patches them. `infra/k8s/` holds the rendering with placeholder run id and image, for review.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from fp_platform.contracts.ids import check_platform_run_id
from fp_platform.handles import PROFILE_ENV_VAR, HandleError, Handles, handles
from fp_platform.operate.packs import SPINE_PACKS, Pack, WorkerEntry, pack
from fp_platform.operate.settings import SupervisorSettings

RUN_ID_PLACEHOLDER = "${PLATFORM_RUN_ID}"
IMAGE_PLACEHOLDER = "${IMAGE}"
MANIFEST_PROFILE = "dev_full"
DEFAULT_OUT_DIR = Path("infra/k8s")
RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
LABEL_PACK, LABEL_COMPONENT, LABEL_RUN = "fp.platform/pack", "fp.platform/component", "fp.platform/run"
LABEL_NAME = "app.kubernetes.io/name"
MERGE_PATCH = "application/merge-patch+json"  # lists (containers, env) replaced whole: live converges on render


class K8sError(RuntimeError):
    """The supervisor cannot render or apply: a handle this profile lacks, or a bad run id / image."""


def _need(h: Handles, key: str, what: str) -> Any:
    """The handle's value, or a K8sError naming what needed it (local/dev_min have no EKS)."""
    try:
        return h.get(key)
    except HandleError as e:
        raise K8sError(
            f"{what} needs handle {key}, which profile {h.profile} does not set ({e}); "
            f"Kubernetes Deployments exist only where EKS does ({MANIFEST_PROFILE})"
        ) from e


def namespace_key(p: Pack) -> str:
    """PACK_ID_X → EKS_NAMESPACE_X: each pack runs in its own namespace."""
    return "EKS_NAMESPACE_" + p.pack_key.removeprefix("PACK_ID_")


def deployment_name(component: str) -> str:
    """A component id as a DNS-1123 name (`archive_writer` → `archive-writer`)."""
    return component.replace("_", "-")


def image_ref(h: Handles, aws_account_id: str, git_sha: str) -> str:
    """The pinned platform image (ECR repo at an immutable git-sha tag) that `apply` should run."""
    repo = str(_need(h, "ECR_REPO_URI", "the platform image")).format(aws_account_id=aws_account_id)
    return f"{repo}:{h.pattern('IMAGE_TAG_GIT_SHA_PATTERN', git_sha=git_sha)}"


def _check_pins(platform_run_id: str, image: str) -> None:
    """Real values must be a platform_run_id and a tagged/digested image; placeholders pass."""
    if platform_run_id != RUN_ID_PLACEHOLDER:
        try:
            check_platform_run_id(platform_run_id)
        except ValueError as e:
            raise K8sError(str(e)) from e
    last = image.rsplit("/", 1)[-1]
    if image != IMAGE_PLACEHOLDER and ":" not in last and "@" not in last:
        raise K8sError(f"image {image!r} has no tag or digest; Deployments run a pinned image (image_ref)")


def deployment(h: Handles, p: Pack, w: WorkerEntry, platform_run_id: str, image: str) -> dict[str, Any]:
    """One worker's Deployment as a plain dict: the same command and run scope the local supervisor uses."""
    _check_pins(platform_run_id, image)
    component, pack_id = h.get(w.component_key), h.get(p.pack_key)
    name = deployment_name(component)
    namespace = _need(h, namespace_key(p), f"pack {pack_id}")
    selector = {LABEL_NAME: name}
    labels = {**selector, LABEL_PACK: pack_id, LABEL_COMPONENT: component, LABEL_RUN: platform_run_id}
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",  # tags are immutable git shas
        "command": ["python", "-m", w.module, *(a.format(component=component) for a in w.args)],
        "env": [
            {"name": PROFILE_ENV_VAR, "value": h.profile},
            {"name": _need(h, "REQUIRED_PLATFORM_RUN_ID_ENV_KEY", f"{name} run scope"), "value": platform_run_id},
            {"name": "AWS_REGION", "value": _need(h, "AWS_REGION", f"{name} AWS clients")},
        ],
        "resources": copy.deepcopy(RESOURCES),
    }
    if w.ready_path_key:
        port = int(_need(h, "IG_PORT", f"{name} readiness"))
        container["ports"] = [{"name": "http", "containerPort": port}]
        container["readinessProbe"] = {
            "httpGet": {"path": _need(h, w.ready_path_key, f"{name} readiness"), "port": port},
            "periodSeconds": 5,
            "failureThreshold": 3,
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": SupervisorSettings.load(h).daemon_replicas_per_worker,
            "strategy": {"type": "Recreate"},  # never two replicas of one consumer at once
            "selector": {"matchLabels": selector},  # immutable, so it leaves the run label out
            "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": [container]}},
        },
    }


def render_pack(h: Handles, p: Pack, platform_run_id: str, image: str) -> list[dict[str, Any]]:
    """The pack's Deployments, one per worker."""
    return [deployment(h, p, w, platform_run_id, image) for w in p.workers]


def render_all(h: Handles, platform_run_id: str, image: str) -> dict[str, str]:
    """`<pack_id>/<component>.yaml` → YAML for every spine worker, in stable order (diffable files)."""
    out: dict[str, str] = {}
    for p in SPINE_PACKS:
        for w, doc in zip(p.workers, render_pack(h, p, platform_run_id, image), strict=True):
            out[f"{h.get(p.pack_key)}/{h.get(w.component_key)}.yaml"] = yaml.safe_dump(doc, sort_keys=False)
    return out


def write_manifests(out_dir: Path, h: Handles, platform_run_id: str, image: str) -> list[Path]:
    """Write the rendering under `out_dir` and drop stale YAML in the pack folders it owns."""
    rendered = render_all(h, platform_run_id, image)
    written = []
    for rel, text in rendered.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    for pack_dir in (out_dir / h.get(p.pack_key) for p in SPINE_PACKS):
        for stale in sorted(pack_dir.glob("*.yaml")) if pack_dir.is_dir() else ():
            if stale.relative_to(out_dir).as_posix() not in rendered:
                stale.unlink()
        if pack_dir.is_dir() and not any(pack_dir.iterdir()):
            pack_dir.rmdir()
    return written


def _apps_api() -> Any:
    """AppsV1Api from the in-cluster service account, else the operator's kubeconfig."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        config.load_incluster_config()
    except ConfigException:
        config.load_kube_config()
    return client.AppsV1Api()


def _selected(h: Handles, pack_ids: list[str] | None) -> list[Pack]:
    return list(SPINE_PACKS) if pack_ids is None else [pack(h, i) for i in pack_ids]


def _is_404(e: Exception) -> bool:
    from kubernetes.client.exceptions import ApiException

    return isinstance(e, ApiException) and e.status == 404


def apply(
    h: Handles, platform_run_id: str, image: str, pack_ids: list[str] | None = None, api: Any = None
) -> dict[str, str]:
    """Create or patch each selected pack's Deployments for this run; `namespace/name` → created|patched."""
    if platform_run_id == RUN_ID_PLACEHOLDER or image == IMAGE_PLACEHOLDER:
        raise K8sError("apply needs a real platform_run_id and image, not the manifest placeholders")
    api = api or _apps_api()
    done: dict[str, str] = {}
    for p in _selected(h, pack_ids):
        for body in render_pack(h, p, platform_run_id, image):
            name, ns = body["metadata"]["name"], body["metadata"]["namespace"]
            try:
                api.read_namespaced_deployment(name, ns)
            except Exception as e:
                if not _is_404(e):
                    raise
                api.create_namespaced_deployment(ns, body)
                done[f"{ns}/{name}"] = "created"
                continue
            api.patch_namespaced_deployment(name, ns, body, _content_type=MERGE_PATCH)
            done[f"{ns}/{name}"] = "patched"
    return done


def delete(
    h: Handles, pack_ids: list[str] | None = None, api: Any = None, scale_to_zero: bool = False
) -> dict[str, str]:
    """Stop packs: delete their Deployments, or keep them at 0 replicas; `namespace/name` → action."""
    api = api or _apps_api()
    done: dict[str, str] = {}
    for p in _selected(h, pack_ids):
        ns = _need(h, namespace_key(p), f"pack {h.get(p.pack_key)}")
        for w in p.workers:
            name = deployment_name(h.get(w.component_key))
            try:
                if scale_to_zero:
                    api.patch_namespaced_deployment(name, ns, {"spec": {"replicas": 0}}, _content_type=MERGE_PATCH)
                else:
                    api.delete_namespaced_deployment(name, ns)
                done[f"{ns}/{name}"] = "scaled_to_zero" if scale_to_zero else "deleted"
            except Exception as e:
                if not _is_404(e):
                    raise
                done[f"{ns}/{name}"] = "absent"
    return done


def status(h: Handles, pack_ids: list[str] | None = None, api: Any = None) -> dict[str, dict[str, Any]]:
    """Desired and ready replicas (and the run served) per Deployment; absent ones show 0/0."""
    api = api or _apps_api()
    out: dict[str, dict[str, Any]] = {}
    for p in _selected(h, pack_ids):
        ns = _need(h, namespace_key(p), f"pack {h.get(p.pack_key)}")
        for w in p.workers:
            name = deployment_name(h.get(w.component_key))
            try:
                d = api.read_namespaced_deployment(name, ns)
            except Exception as e:
                if not _is_404(e):
                    raise
                out[f"{ns}/{name}"] = {"present": False, "desired": 0, "ready": 0, "run": None}
                continue
            out[f"{ns}/{name}"] = {
                "present": True,
                "desired": d.spec.replicas or 0,
                "ready": (d.status.ready_replicas if d.status else None) or 0,
                "run": (d.metadata.labels or {}).get(LABEL_RUN),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m fp_platform.operate.k8s [OUT_DIR]`: regenerate the reviewed manifests (infra/k8s)."""
    parser = argparse.ArgumentParser(prog="python -m fp_platform.operate.k8s", description=main.__doc__)
    parser.add_argument("out_dir", nargs="?", type=Path, default=DEFAULT_OUT_DIR)
    args = parser.parse_args(argv)
    for path in write_manifests(args.out_dir, handles(MANIFEST_PROFILE), RUN_ID_PLACEHOLDER, IMAGE_PLACEHOLDER):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The spine packs' workers as apps/v1 Deployments (dev_full, EKS): rendering and apply.

Locally `operate/daemons.py` runs each `packs.SPINE_PACKS` worker as a subprocess; here the same
entries render one Deployment each (one replica, Recreate, run scope in the env, hardened pod, probes,
an image pinned by digest) beside each pack's Namespace, ServiceAccount (IRSA) and NetworkPolicies and
IG's Service (`k8s_objects.py`); `apply` creates or patches all of them, in dependency order, so a fresh
cluster takes it, and writes nothing when the cluster already holds the rendering. `k8s_supervisor.py`
supervises the Deployments (readiness, crash restarts, scale to zero). `infra/k8s/` holds the rendering
with placeholder run id, account and image digest, for review.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fp_platform.contracts.canonical import canonical_json, sha256_hex
from fp_platform.contracts.ids import check_platform_run_id
from fp_platform.handles import AWS_ACCOUNT_ENV_VAR, PROFILE_ENV_VAR, Handles, handles
from fp_platform.operate import k8s_objects as objects
from fp_platform.operate.k8s_objects import ACCOUNT_PLACEHOLDER, K8sError, namespace_key, need
from fp_platform.operate.packs import SPINE_PACKS, Pack, WorkerEntry, pack
from fp_platform.operate.settings import SupervisorSettings
from fp_platform.resources import K8S_RUN_LABEL, ONE_SHOT_JOBS
from fp_platform.substrate import pod_hardening, probe
from fp_platform.substrate.settings import WorkerSettings

__all__ = ["K8sError", "namespace_key"]

RUN_ID_PLACEHOLDER = "${PLATFORM_RUN_ID}"
DIGEST_PLACEHOLDER = "sha256:${IMAGE_DIGEST}"
MANIFEST_PROFILE = "dev_full"
DEFAULT_OUT_DIR = Path("infra/k8s")
PACK_FILE = "_pack.yaml"  # a pack's Namespace, ServiceAccount and NetworkPolicies (sorts before its workers)
JOBS_FILE = "jobs/_jobs.yaml"  # the one-shot jobs' ServiceAccounts, the learning Namespace, the job policies
RBAC_FILE = "supervisor/_rbac.yaml"  # the supervisor's rights: applied once by an operator, never by `apply`
RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
LABEL_PACK, LABEL_COMPONENT, LABEL_RUN = "fp.platform/pack", "fp.platform/component", K8S_RUN_LABEL
LABEL_NAME = "app.kubernetes.io/name"
APPLIED_DIGEST = "fp.platform/applied-digest"  # `rendering_digest` of what `apply` last wrote to the object
MERGE_PATCH = "application/merge-patch+json"  # lists (containers, env) replaced whole: live converges on render
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
ACCOUNT_ID = re.compile(r"\d{12}")
GRACE_S = 90  # SIGTERM → the worker settles its outbox (PUBLISH_TIMEOUT_S = 60) and writes its STOPPED beat
STARTUP_BUDGET_S = 600  # lock, partition assignment, start-up state (snapshots, IG's reconcile) before the first beat


@dataclass(frozen=True)
class Pins:
    """What one apply pins: the run (REQUIRED_PLATFORM_RUN_ID), the AWS account (role ARNs) and the image
    (`<ECR_REPO_URI>@sha256:<digest>`, the digest P(-1) recorded)."""

    platform_run_id: str
    aws_account_id: str
    image: str


def image_ref(h: Handles, aws_account_id: str, digest: str) -> str:
    """The platform image by digest (`repo@sha256:<hex>`): a tag can be moved, a digest cannot."""
    repo = str(need(h, "ECR_REPO_URI", "the platform image")).format(aws_account_id=aws_account_id)
    if digest != DIGEST_PLACEHOLDER and not DIGEST.fullmatch(digest):
        raise K8sError(f"image digest {digest!r} is not sha256:<64 hex> (P(-1) records it)")
    return f"{repo}@{digest}"


def placeholders(h: Handles) -> Pins:
    """The pins of the reviewed rendering: `${PLATFORM_RUN_ID}`, `${AWS_ACCOUNT_ID}`, `${IMAGE_DIGEST}`."""
    return Pins(RUN_ID_PLACEHOLDER, ACCOUNT_PLACEHOLDER, image_ref(h, ACCOUNT_PLACEHOLDER, DIGEST_PLACEHOLDER))


def is_placeholder(h: Handles, pins: Pins) -> bool:
    """True when any pin is still a placeholder (nothing to apply)."""
    fake = placeholders(h)
    return (
        pins.platform_run_id == fake.platform_run_id
        or pins.aws_account_id == fake.aws_account_id
        or DIGEST_PLACEHOLDER in pins.image
    )


def _check_pins(h: Handles, pins: Pins) -> None:
    """Real values must be a platform_run_id, a 12-digit account and an image pinned by digest; placeholders
    pass (they are the reviewed rendering)."""
    fake = placeholders(h)
    if pins.platform_run_id != fake.platform_run_id:
        try:
            check_platform_run_id(pins.platform_run_id)
        except ValueError as e:
            raise K8sError(str(e)) from e
    if pins.aws_account_id != fake.aws_account_id and not ACCOUNT_ID.fullmatch(pins.aws_account_id):
        raise K8sError(f"AWS account id {pins.aws_account_id!r} is not 12 digits")
    if pins.image != fake.image:
        repo, at, digest = pins.image.partition("@")
        if not at or not repo or not DIGEST.fullmatch(digest):
            raise K8sError(f"image {pins.image!r} is not pinned by digest (repo@sha256:<64 hex>; see image_ref)")


def deployment_name(component: str) -> str:
    """A component id as a DNS-1123 name (`archive_writer` → `archive-writer`)."""
    return component.replace("_", "-")


def _selector(h: Handles, w: WorkerEntry) -> dict[str, str]:
    return {LABEL_NAME: deployment_name(h.get(w.component_key))}


def _ig_worker(p: Pack) -> WorkerEntry | None:
    """The pack's HTTP service worker (IG), the one with a readiness path."""
    return next((w for w in p.workers if w.ready_path_key), None)


def _ig_selector(h: Handles) -> dict[str, str]:
    ig = next(w for p in SPINE_PACKS if (w := _ig_worker(p)))
    return _selector(h, ig)


def _http_probes(h: Handles, w: WorkerEntry, name: str) -> dict[str, Any]:
    """IG: readiness on its ready path (start-up reconcile done, stores reachable); liveness and start-up on the
    port, because a store outage must take IG out of the Service, not restart it (health needs the API key)."""
    port = int(need(h, "IG_PORT", f"{name} probes"))
    tcp = {"tcpSocket": {"port": "http"}}
    return {
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "startupProbe": {**tcp, "periodSeconds": 5, "failureThreshold": STARTUP_BUDGET_S // 5},
        "livenessProbe": {**tcp, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3},
        "readinessProbe": {
            "httpGet": {"path": need(h, w.ready_path_key, f"{name} readiness"), "port": "http"},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
    }


def _worker_probes(h: Handles, component: str, platform_run_id: str) -> dict[str, Any]:
    """Bus workers: the worker base's exec probe (`substrate/probe.py`) on the heartbeat file. Liveness: a
    beat within WORKER_HEARTBEAT_STALE_SECONDS (the loop turns); readiness: this run's scope confirmed and
    GREEN/AMBER; start-up allows the lock, assignment and start-up state before the first beat."""
    stale = f"{WorkerSettings.load(h).heartbeat_stale_seconds:g}"
    alive = ["python", "-m", probe.__name__, component, "--max-age-s", stale]
    return {
        "startupProbe": {"exec": {"command": alive}, "periodSeconds": 10, "failureThreshold": STARTUP_BUDGET_S // 10},
        "livenessProbe": {"exec": {"command": alive}, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
        "readinessProbe": {
            "exec": {"command": [*alive, "--run-id", platform_run_id]},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
    }


def deployment(h: Handles, p: Pack, w: WorkerEntry, pins: Pins) -> dict[str, Any]:
    """One worker's Deployment as a plain dict: the same command and run scope the local supervisor uses, in a
    hardened pod under the pack's ServiceAccount."""
    _check_pins(h, pins)
    component, pack_id = h.get(w.component_key), h.get(p.pack_key)
    name = deployment_name(component)
    ns = need(h, namespace_key(p), f"pack {pack_id}")
    selector = _selector(h, w)
    labels = {**selector, LABEL_PACK: pack_id, LABEL_COMPONENT: component, LABEL_RUN: pins.platform_run_id}
    volumes, mounts, env = pod_hardening.writable_volumes()
    container: dict[str, Any] = {
        "name": name,
        "image": pins.image,
        "imagePullPolicy": "IfNotPresent",  # pinned by digest: the cached image is the same bytes
        "command": ["python", "-m", w.module, *(a.format(component=component) for a in w.args)],
        "env": [
            {"name": PROFILE_ENV_VAR, "value": h.profile},
            {"name": need(h, "REQUIRED_PLATFORM_RUN_ID_ENV_KEY", f"{name} run scope"), "value": pins.platform_run_id},
            {"name": "AWS_REGION", "value": need(h, "AWS_REGION", f"{name} AWS clients")},
            {"name": AWS_ACCOUNT_ENV_VAR, "value": pins.aws_account_id},  # bucket names carry it (decisions.md D10)
            *env,
        ],
        "resources": copy.deepcopy(RESOURCES),
        "securityContext": pod_hardening.container_security(),
        "volumeMounts": mounts,
        **(_http_probes(h, w, name) if w.ready_path_key else _worker_probes(h, component, pins.platform_run_id)),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
        "spec": {
            "replicas": SupervisorSettings.load(h).daemon_replicas_per_worker,
            "strategy": {"type": "Recreate"},  # never two replicas of one consumer at once
            "selector": {"matchLabels": selector},  # immutable, so it leaves the run label out
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "serviceAccountName": objects.service_account_name(p),
                    "automountServiceAccountToken": False,  # IRSA's token is projected by the EKS webhook
                    "securityContext": pod_hardening.pod_security(),
                    "terminationGracePeriodSeconds": GRACE_S,
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def pack_objects(h: Handles, p: Pack, pins: Pins) -> list[dict[str, Any]]:
    """The pack's Namespace, ServiceAccount and NetworkPolicies: what its Deployments need to exist and run."""
    _check_pins(h, pins)
    return [
        objects.pack_namespace(h, p),
        objects.pack_service_account(h, p, pins.aws_account_id),
        *objects.network_policies(h, namespace_key(p), _ig_selector(h)),
    ]


def render_pack(h: Handles, p: Pack, pins: Pins) -> list[dict[str, Any]]:
    """The pack's Deployments, one per worker."""
    return [deployment(h, p, w, pins) for w in p.workers]


def pack_files(h: Handles, p: Pack, pins: Pins) -> dict[str, list[dict[str, Any]]]:
    """One pack's files: `<pack_id>/_pack.yaml` first (what the rest needs), then `<pack_id>/<component>.yaml`
    per worker; IG's file also holds its Service."""
    pack_id = h.get(p.pack_key)
    out = {f"{pack_id}/{PACK_FILE}": pack_objects(h, p, pins)}
    for w, doc in zip(p.workers, render_pack(h, p, pins), strict=True):
        docs = [doc]
        if w.ready_path_key:
            docs.append(objects.ig_service(h, p, _selector(h, w), "http"))
        out[f"{pack_id}/{h.get(w.component_key)}.yaml"] = docs
    return out


def job_files(h: Handles, pins: Pins) -> dict[str, list[dict[str, Any]]]:
    """The one-shot jobs' file: what their pods need to run under their own IRSA roles (`k8s_objects.job_objects`)."""
    _check_pins(h, pins)
    return {JOBS_FILE: objects.job_objects(h, pins.aws_account_id, _ig_selector(h))}


def rbac_files(h: Handles) -> dict[str, list[dict[str, Any]]]:
    """The supervisor's RBAC in every namespace it applies to, and the Pipes pods' in the jobs' namespaces
    (`k8s_objects.supervisor_rbac`)."""
    job_keys = sorted({j.namespace_key for j in ONE_SHOT_JOBS.values()})
    ns_keys = list(dict.fromkeys([namespace_key(p) for p in SPINE_PACKS] + job_keys))
    return {RBAC_FILE: objects.supervisor_rbac(h, ns_keys, job_keys)}


def render_docs(h: Handles, pins: Pins) -> dict[str, list[dict[str, Any]]]:
    """Every spine pack's files, the jobs' and the supervisor's RBAC → their objects, in stable order."""
    packs = {path: docs for p in SPINE_PACKS for path, docs in pack_files(h, p, pins).items()}
    return packs | job_files(h, pins) | rbac_files(h)


class _Dumper(yaml.SafeDumper):
    """Double-quotes a value that is a placeholder alone: `${AWS_ACCOUNT_ID}` replaced by its twelve digits must
    still read as a string (an env value Kubernetes refuses as a number)."""


_Dumper.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style='"' if re.fullmatch(r"\$\{[A-Z_]+\}", value) else None
    ),
)


def render_all(h: Handles, pins: Pins) -> dict[str, str]:
    """Every rendered file as YAML (one document per object), in stable order (diffable files)."""
    return {path: yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False) for path, docs in render_docs(h, pins).items()}


def write_manifests(out_dir: Path, h: Handles, pins: Pins) -> list[Path]:
    """Write the rendering under `out_dir` and drop stale YAML in the pack folders it owns."""
    rendered = render_all(h, pins)
    written = []
    for rel, text in rendered.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    owned = [out_dir / h.get(p.pack_key) for p in SPINE_PACKS] + [(out_dir / f).parent for f in (JOBS_FILE, RBAC_FILE)]
    for pack_dir in owned:
        for stale in sorted(pack_dir.glob("*.yaml")) if pack_dir.is_dir() else ():
            if stale.relative_to(out_dir).as_posix() not in rendered:
                stale.unlink()
        if pack_dir.is_dir() and not any(pack_dir.iterdir()):
            pack_dir.rmdir()
    return written


def api_client(group: str) -> Any:
    """AppsV1Api, CoreV1Api or NetworkingV1Api from the in-cluster service account (the Dagster daemon's pod),
    else the operator's kubeconfig."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        config.load_incluster_config()
    except ConfigException:
        config.load_kube_config()
    return getattr(client, group)()


# kind → (API, the method suffix of its read_/create_/patch_ calls, namespaced)
_KINDS = {
    "Namespace": ("core", "namespace", False),
    "ServiceAccount": ("core", "namespaced_service_account", True),
    "NetworkPolicy": ("net", "namespaced_network_policy", True),
    "Service": ("core", "namespaced_service", True),
}


def rendering_digest(body: dict[str, Any]) -> str:
    """sha256 of the object's canonical JSON as rendered: what `apply` records on the live object, so a tick
    that would write the same object writes nothing (the role of kubectl's last-applied-configuration)."""
    return sha256_hex(canonical_json(body))


def _create_or_patch(api: Any, body: dict[str, Any]) -> str:
    """Create the object when absent (404); merge-patch it when its recorded rendering digest differs from this
    rendering's (or, for a Deployment, its replicas do: `down` scaled it); else leave it. created|patched|unchanged.
    A hand edit that leaves the digest annotation in place is not reverted until the rendering changes."""
    _, suffix, namespaced = _KINDS.get(body["kind"], ("apps", "namespaced_deployment", True))
    meta = body["metadata"]
    where = (meta["name"], meta["namespace"]) if namespaced else (meta["name"],)
    digest = rendering_digest(body)
    body = {**body, "metadata": {**meta, "annotations": {**meta.get("annotations", {}), APPLIED_DIGEST: digest}}}
    try:
        live = getattr(api, f"read_{suffix}")(*where)
    except Exception as e:
        if not is_404(e):
            raise
        getattr(api, f"create_{suffix}")(*where[1:], body)
        return "created"
    replicas = body.get("spec", {}).get("replicas") if body["kind"] == "Deployment" else None
    if (live.metadata.annotations or {}).get(APPLIED_DIGEST) == digest and (
        replicas is None or live.spec.replicas == replicas
    ):
        return "unchanged"
    getattr(api, f"patch_{suffix}")(*where, body, _content_type=MERGE_PATCH)
    return "patched"


def _selected(h: Handles, pack_ids: list[str] | None) -> list[Pack]:
    return list(SPINE_PACKS) if pack_ids is None else [pack(h, i) for i in pack_ids]


def is_404(e: Exception) -> bool:
    from kubernetes.client.exceptions import ApiException

    return isinstance(e, ApiException) and e.status == 404


def apply(
    h: Handles,
    pins: Pins,
    pack_ids: list[str] | None = None,
    api: Any = None,
    core: Any = None,
    net: Any = None,
    jobs: bool = True,
) -> dict[str, str]:
    """Create or patch each selected pack's objects for this run, in dependency order (Namespace,
    ServiceAccount, NetworkPolicies, then the Deployments and IG's Service), so a fresh cluster takes it; with
    `jobs`, the one-shot jobs' objects first (every run launches them; Dagster's namespace is the Helm release's).
    Returns `namespace/name` → created|patched|unchanged for Deployments and `<Kind> [namespace/]name` for the
    rest; a second apply of the same rendering writes nothing."""
    if is_placeholder(h, pins):
        raise K8sError("apply needs a real platform_run_id, account and image digest, not the manifest placeholders")
    # everything renders (and is checked) before the first API call: a bad handle applies nothing
    files = [job_files(h, pins)] if jobs else []
    files += [pack_files(h, p, pins) for p in _selected(h, pack_ids)]
    bodies = [body for f in files for docs in f.values() for body in docs]
    apis = {"apps": api, "core": core, "net": net}
    names = {"apps": "AppsV1Api", "core": "CoreV1Api", "net": "NetworkingV1Api"}
    done: dict[str, str] = {}
    for body in bodies:
        group = _KINDS.get(body["kind"], ("apps",))[0]
        apis[group] = apis[group] or api_client(names[group])
        meta = body["metadata"]
        where = f"{meta['namespace']}/{meta['name']}" if "namespace" in meta else meta["name"]
        done[where if body["kind"] == "Deployment" else f"{body['kind']} {where}"] = _create_or_patch(apis[group], body)
    return done


def main(argv: list[str] | None = None) -> int:
    """`python -m fp_platform.operate.k8s [OUT_DIR]`: regenerate the reviewed manifests (infra/k8s)."""
    parser = argparse.ArgumentParser(prog="python -m fp_platform.operate.k8s", description=main.__doc__)
    parser.add_argument("out_dir", nargs="?", type=Path, default=DEFAULT_OUT_DIR)
    args = parser.parse_args(argv)
    h = handles(MANIFEST_PROFILE)
    for path in write_manifests(args.out_dir, h, placeholders(h)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

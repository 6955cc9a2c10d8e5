"""The Kubernetes objects around the packs' Deployments (dev_full): what a fresh EKS cluster needs besides them.

Spec DA dev_full §9.2 pins the posture: namespace segmentation by lane (one Namespace per pack,
`EKS_NAMESPACE_*`), network policy restrictions (deny by default, then only DNS, the stores and the IG
callers), workload identity mapped to least-privilege IAM roles (one ServiceAccount per pack, annotated with
the pack's `ROLE_*` for IRSA; §10.2 role per service) — plus the Service that gives IG the name `IG_BASE_URL`
pins, and the pod hardening every Deployment shares (non-root, read-only root filesystem, no capabilities).
Plain dicts, like `k8s.py`: the same rendering feeds the reviewed files and the API calls.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fp_platform.handles import HandleError, Handles
from fp_platform.operate.packs import Pack
from fp_platform.resources import K8S_JOB_LABEL, ONE_SHOT_JOBS, role_service_account_name

CLUSTER_DOMAIN = "cluster.local"  # EKS's cluster DNS domain
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every Namespace (1.21+)
ACCOUNT_PLACEHOLDER = "${AWS_ACCOUNT_ID}"
# The pack's IAM role (IRSA). obs_gov's only daemon is the conformance worker, whose role is not the reporter's
# (dev_min App. C.3); the reporter is P11's one-shot job and gets its own identity where jobs are launched.
PACK_ROLES = {
    "PACK_ID_CONTROL_INGRESS": "ROLE_IG_SERVICE",
    "PACK_ID_RTDL_CORE": "ROLE_RTDL_CORE",
    "PACK_ID_RTDL_DECISION_LANE": "ROLE_DECISION_LANE",
    "PACK_ID_CASE_LABELS": "ROLE_CASE_LABELS",
    "PACK_ID_OBS_GOV": "ROLE_OBS_GOV_CONFORMANCE",
}
# Namespaces whose pods call IG over HTTP: Dagster (P4's ig_ready, the WSP/SR jobs it launches), the control
# and ingress pack itself, and obs_gov (the conformance worker reads IG's health).
IG_CALLER_NAMESPACES = ("EKS_NAMESPACE_DAGSTER", "EKS_NAMESPACE_CONTROL_INGRESS", "EKS_NAMESPACE_OBS_GOV")
DAGSTER_NAMESPACE_KEY = "EKS_NAMESPACE_DAGSTER"  # the Helm release's namespace (infra/helm/dagster)
DNS_PORT, HTTPS_PORT = 53, 443  # cluster DNS; S3, SSM and STS (IRSA token exchange) over HTTPS


class K8sError(RuntimeError):
    """A handle the objects need is missing, or two handles disagree (the IG Service and IG_BASE_URL)."""


def need(h: Handles, key: str, what: str) -> Any:
    """The handle's value, or a K8sError naming what needed it (local/dev_min have no EKS)."""
    try:
        return h.get(key)
    except HandleError as e:
        raise K8sError(
            f"{what} needs handle {key}, which profile {h.profile} does not set ({e}); "
            f"Kubernetes objects exist only where EKS does (dev_full)"
        ) from e


def namespace_key(p: Pack) -> str:
    """PACK_ID_X → EKS_NAMESPACE_X: each pack runs in its own namespace."""
    return "EKS_NAMESPACE_" + p.pack_key.removeprefix("PACK_ID_")


def namespace(h: Handles, ns_key: str, owner: dict[str, str]) -> dict[str, Any]:
    """A Namespace of ours (a pack's, or the learning jobs'), labelled with its `owner`; Pod Security admission
    enforces `restricted`, the profile our pods are built to."""
    name = need(h, ns_key, "the Namespace")
    labels = {
        **owner,
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def pack_namespace(h: Handles, p: Pack) -> dict[str, Any]:
    return namespace(h, namespace_key(p), {"fp.platform/pack": h.get(p.pack_key)})


def role_arn(h: Handles, role_key: str, aws_account_id: str) -> str:
    """`arn:aws:iam::<account>:role/<ROLE_* value>`: the handle names the role, the account is the apply's."""
    return f"arn:aws:iam::{aws_account_id}:role/{need(h, role_key, 'IRSA')}"


def service_account_name(p: Pack) -> str:
    return role_service_account_name(PACK_ROLES[p.pack_key])


def service_account(h: Handles, role_key: str, ns_key: str, aws_account_id: str) -> dict[str, Any]:
    """The ServiceAccount bound to an IAM role (IRSA), named after the role's handle (what Terraform's trust
    names). The API token is not mounted: the EKS webhook projects the IRSA web-identity token on its own, and
    no workload of ours talks to the Kubernetes API."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": role_service_account_name(role_key),
            "namespace": need(h, ns_key, "the ServiceAccount"),
            "annotations": {IRSA_ANNOTATION: role_arn(h, role_key, aws_account_id)},
        },
        "automountServiceAccountToken": False,
    }


def pack_service_account(h: Handles, p: Pack, aws_account_id: str) -> dict[str, Any]:
    return service_account(h, PACK_ROLES[p.pack_key], namespace_key(p), aws_account_id)


def ig_service(h: Handles, p: Pack, selector: dict[str, str], port_name: str) -> dict[str, Any]:
    """IG's ClusterIP Service, named SVC_IG in the pack's namespace and refused unless its DNS name and port are
    exactly IG_BASE_URL's host and port (what WSP, P4 and conformance call)."""
    name, ns = need(h, "SVC_IG", "the IG Service"), need(h, namespace_key(p), "the IG Service")
    url = urlsplit(need(h, "IG_BASE_URL", "the IG Service"))
    dns = f"{name}.{ns}.svc.{CLUSTER_DOMAIN}"
    if url.hostname not in (dns, dns.removesuffix("." + CLUSTER_DOMAIN)) or url.port is None:
        raise K8sError(f"IG_BASE_URL {url.geturl()} does not name the IG Service {dns} with a port")
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": dict(selector)},
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector),
            "ports": [{"name": port_name, "port": url.port, "targetPort": port_name, "protocol": "TCP"}],
        },
    }


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _namespaces(h: Handles, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: need(h, k, "NetworkPolicy")}}} for k in keys]


def network_policies(
    h: Handles, ns_key: str, ig_selector: dict[str, str], pods: dict[str, Any] | None = None, prefix: str = ""
) -> list[dict[str, Any]]:
    """Deny all traffic to and from `pods` (default: every pod) of the namespace, then allow egress to DNS, MSK
    (IAM listener), Aurora and HTTPS (S3, SSM, STS), to IG for the namespaces that call it, and ingress to IG from
    those namespaces. `prefix` names the policies apart where they share a namespace with others (Dagster's)."""
    ns = need(h, ns_key, "NetworkPolicy")
    selected = dict(pods or {})
    msk, db = int(need(h, "MSK_IAM_PORT", "NetworkPolicy")), int(need(h, "DB_PORT", "NetworkPolicy"))
    ig_port = int(need(h, "IG_PORT", "NetworkPolicy"))
    ig_ns = need(h, "EKS_NAMESPACE_CONTROL_INGRESS", "NetworkPolicy")
    dns = {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}],
    }
    egress: list[dict[str, Any]] = [dns, {"ports": _tcp(msk, db, HTTPS_PORT)}]
    if ns_key in IG_CALLER_NAMESPACES:
        ig_peer = {
            "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: ig_ns}},
            "podSelector": {"matchLabels": dict(ig_selector)},
        }
        egress.append({"to": [ig_peer], "ports": _tcp(ig_port)})

    def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        meta = {"name": prefix + name, "namespace": ns}
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta, "spec": spec}

    out = [
        policy("default-deny", {"podSelector": selected, "policyTypes": ["Ingress", "Egress"]}),
        policy("allow-egress-stores", {"podSelector": selected, "policyTypes": ["Egress"], "egress": egress}),
    ]
    if ns == ig_ns:
        ingress = [{"from": _namespaces(h, IG_CALLER_NAMESPACES), "ports": _tcp(ig_port)}]
        spec = {"podSelector": {"matchLabels": dict(ig_selector)}, "policyTypes": ["Ingress"], "ingress": ingress}
        out.append(policy("allow-ingress-ig", spec))
    return out


def job_objects(h: Handles, aws_account_id: str, ig_selector: dict[str, str]) -> list[dict[str, Any]]:
    """What the one-shot jobs' pods (`resources.ONE_SHOT_JOBS`: world, SR, WSP, reporter in Dagster's namespace,
    learning in its own) need besides the Dagster release: the learning Namespace and its policies, one
    ServiceAccount per job role (IRSA), and in Dagster's namespace policies that select only the job pods (label
    K8S_JOB_LABEL), so the chart's webserver, daemon and run pods keep the release's own networking."""
    jobs = sorted({(j.namespace_key, j.role) for j in ONE_SHOT_JOBS.values()})
    own = sorted({ns_key for ns_key, _ in jobs} - {DAGSTER_NAMESPACE_KEY})
    out = [namespace(h, ns_key, {"fp.platform/jobs": need(h, ns_key, "the jobs' Namespace")}) for ns_key in own]
    out += [service_account(h, role, ns_key, aws_account_id) for ns_key, role in jobs]
    for ns_key in sorted({ns_key for ns_key, _ in jobs}):
        if ns_key == DAGSTER_NAMESPACE_KEY:
            job_pods = {"matchExpressions": [{"key": K8S_JOB_LABEL, "operator": "Exists"}]}
            out += network_policies(h, ns_key, ig_selector, job_pods, prefix="fp-jobs-")
        else:
            out += network_policies(h, ns_key, ig_selector)
    return out


SUPERVISOR_ROLE = "ROLE_DAGSTER_ORCHESTRATOR"  # the Dagster daemon's ServiceAccount runs the pack_supervisor sensor
RBAC_API = "rbac.authorization.k8s.io/v1"
# What operate/k8s_supervisor.py calls, by API group and resource (fp_platform_tests/operate/test_k8s_supervisor.py
# replays a supervision against the API double and checks every call is granted here, and nothing more).
SUPERVISOR_RULES = (
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "create", "patch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "delete"]},
    {"apiGroups": [""], "resources": ["serviceaccounts", "services"], "verbs": ["get", "create", "patch"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["get", "create", "patch"]},
)
NAMESPACE_RULES = ({"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "create", "patch"]},)
# What PipesK8sClient (dagster-k8s) calls to run a one-shot job's pod in a job namespace: create it, follow its
# status, events and log, delete it (fp_platform_tests/operate/test_k8s_jobs.py reads the calls from dagster-k8s).
PIPES_RULES = (
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "create", "delete"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
)


def supervisor_rbac(h: Handles, namespace_keys: list[str], job_namespace_keys: list[str]) -> list[dict[str, Any]]:
    """What the supervisor's identity may do, and nothing more: create and patch the platform's Namespaces
    (cluster-wide: a Namespace is not namespaced), and in each of `namespace_keys` (the packs' and the jobs')
    apply and read Deployments, ServiceAccounts, Services and NetworkPolicies, list and delete pods. An
    operator applies this once with cluster-admin, after the Namespaces (`kubectl apply`); the supervisor
    cannot grant itself rights, so `k8s.apply` never sends it. The same identity launches the one-shot jobs'
    pods through PipesK8sClient from the run pods: in `job_namespace_keys` it may also run pods (PIPES_RULES)."""
    subject = {
        "kind": "ServiceAccount",
        "name": role_service_account_name(SUPERVISOR_ROLE),
        "namespace": need(h, DAGSTER_NAMESPACE_KEY, "the supervisor's ServiceAccount"),
    }
    name, ns_name, pipes = "fp-pack-supervisor", "fp-pack-supervisor-namespaces", "fp-pipes-pods"

    def cluster_role(role: str, rules: tuple[dict[str, Any], ...]) -> dict[str, Any]:
        return {"apiVersion": RBAC_API, "kind": "ClusterRole", "metadata": {"name": role}, "rules": list(rules)}

    def ref(role: str) -> dict[str, str]:
        return {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}

    roles = ((ns_name, NAMESPACE_RULES), (name, SUPERVISOR_RULES), (pipes, PIPES_RULES))
    out = [cluster_role(role, rules) for role, rules in roles]
    out.append(
        {
            "apiVersion": RBAC_API,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": ns_name},
            "roleRef": ref(ns_name),
            "subjects": [subject],
        }
    )
    for role, keys in ((name, namespace_keys), (pipes, job_namespace_keys)):
        for ns_key in keys:
            meta = {"name": role, "namespace": need(h, ns_key, "a RoleBinding")}
            binding = {"apiVersion": RBAC_API, "kind": "RoleBinding", "metadata": meta, "roleRef": ref(role)}
            out.append({**binding, "subjects": [subject]})
    return out

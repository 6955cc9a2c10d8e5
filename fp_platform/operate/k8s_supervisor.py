"""dev_full's supervisor: the spine packs' workers as EKS Deployments, kept for the active run through the
Kubernetes API (the official `kubernetes` client), never as local processes.

`supervisor.reconcile`, `status` and `down` dispatch here when DAEMON_SUPERVISOR is `k8s_deployment`, so the
pack_supervisor sensor, P2 and P17 act the same way on every profile. A tick applies the run's rendering
(`k8s.apply`: create what is absent, patch what serves another run or an older rendering, write nothing
otherwise), then reads each Deployment and its pods: available → RUNNING; a pod in CrashLoopBackOff → a
rollout restart (the pod-template annotation `kubectl rollout restart` sets), with the local supervisor's
backoff between restarts counted on the Deployment itself; an image or configuration error → FAILED (a
restart cannot fix it). `down` scales to zero replicas: the Deployment, its ServiceAccount and policies stay
for the next run and cost nothing. The run's image and account come from its run.json (P(-1)'s digest).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from fp_platform.contracts.evidence import utc_now_iso
from fp_platform.handles import Handles
from fp_platform.operate import k8s, supervisor
from fp_platform.operate.k8s_objects import K8sError, namespace_key, need
from fp_platform.operate.packs import SPINE_PACKS, Pack, WorkerEntry, spec_for
from fp_platform.resources import ONE_SHOT_JOBS
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.residuals import Residual

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"  # the pod-template annotation of `kubectl rollout restart`
RESTARTS = "fp.platform/restarts"  # how many times this supervisor restarted the Deployment for RESTARTS_RUN
RESTARTS_RUN = "fp.platform/restarts-run"
CRASHING = frozenset({"CrashLoopBackOff"})
# Waiting reasons a new pod would hit again: reported, never restarted.
STUCK = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)


@dataclass(frozen=True)
class Cluster:
    """The three API groups the supervisor calls (tests pass doubles built from the client's models)."""

    apps: Any  # AppsV1Api
    core: Any  # CoreV1Api
    net: Any  # NetworkingV1Api


def connect() -> Cluster:
    """The cluster the Dagster daemon's pod runs in (its ServiceAccount), else the operator's kubeconfig."""
    return Cluster(k8s.api_client("AppsV1Api"), k8s.api_client("CoreV1Api"), k8s.api_client("NetworkingV1Api"))


def run_pins(h: Handles, platform_run_id: str) -> k8s.Pins:
    """The run's pins from its run.json: the image P(-1) resolved by digest, and the account of the registry
    that holds it (ECR_REPO_URI's `{aws_account_id}`), which the IRSA role ARNs share."""
    image = run_evidence(h, platform_run_id).read(h.get("EVIDENCE_RUN_JSON_KEY")).get("image_ref") or ""
    pattern = re.escape(str(need(h, "ECR_REPO_URI", "the platform image"))).replace(
        re.escape("{aws_account_id}"), r"(?P<account>\d{12})"
    )
    found = re.fullmatch(pattern + r"@sha256:[0-9a-f]{64}", image)
    if found is None:
        raise K8sError(f"run {platform_run_id}: run.json's image_ref {image!r} is not this profile's image by digest")
    return k8s.Pins(platform_run_id, found["account"], image)


def _where(h: Handles, p: Pack, w: WorkerEntry) -> tuple[str, str]:
    """(namespace, Deployment name) of a worker."""
    return need(h, namespace_key(p), f"pack {h.get(p.pack_key)}"), k8s.deployment_name(h.get(w.component_key))


def _read(cluster: Cluster, ns: str, name: str) -> Any | None:
    try:
        return cluster.apps.read_namespaced_deployment(name, ns)
    except Exception as e:
        if not k8s.is_404(e):
            raise
        return None


def _pods(cluster: Cluster, ns: str, name: str) -> list[Any]:
    return cluster.core.list_namespaced_pod(ns, label_selector=f"{k8s.LABEL_NAME}={name}").items


def _waiting(pods: list[Any]) -> list[tuple[str, str, int]]:
    """(pod, waiting reason, restart count) of every container that is waiting with a reason."""
    out = []
    for pod in pods:
        for c in (pod.status.container_statuses if pod.status else None) or []:
            waiting = c.state.waiting if c.state else None
            if waiting is not None and waiting.reason:
                out.append((pod.metadata.name, waiting.reason, c.restart_count or 0))
    return out


def _restarts(d: Any, run_id: str | None) -> int:
    notes = d.metadata.annotations or {}
    return int(notes.get(RESTARTS, 0)) if run_id is not None and notes.get(RESTARTS_RUN) == run_id else 0


def _restarted_at(d: Any) -> datetime | None:
    notes = (d.spec.template.metadata.annotations if d.spec.template.metadata else None) or {}
    return datetime.fromisoformat(notes[RESTARTED_AT]) if RESTARTED_AT in notes else None


def _observed(h: Handles, p: Pack, w: WorkerEntry, d: Any | None, pods: list[Any]) -> supervisor.WorkerStatus:
    """What one Deployment is doing, without acting: STOPPED (absent or zero replicas), FAILED (a pod waits on
    something a restart cannot fix), BACKOFF (crashing), RUNNING (available) or STARTED (rolling out)."""
    pack_id, component = h.get(p.pack_key), h.get(w.component_key)
    ns, name = _where(h, p, w)
    if d is None:
        return supervisor.WorkerStatus(pack_id, component, supervisor.STOPPED, detail=f"no Deployment {ns}/{name}")
    run_id = (d.metadata.labels or {}).get(k8s.LABEL_RUN)
    desired = d.spec.replicas or 0
    available = (d.status.available_replicas if d.status else None) or 0
    # a status the controller has not yet brought up to the latest spec (just after a patch) proves nothing
    current = d.status is not None and (d.status.observed_generation or 0) >= (d.metadata.generation or 0)
    updated = (d.status.updated_replicas if d.status else None) or 0
    st = supervisor.WorkerStatus(pack_id, component, supervisor.RUNNING, run_id, restarts=_restarts(d, run_id))
    st.detail = f"deployment {ns}/{name} {available}/{desired} available"
    waiting = _waiting(pods)
    if desired == 0:
        st.state = supervisor.STOPPED
    elif stuck := [x for x in waiting if x[1] in STUCK]:
        st.state, st.detail = supervisor.FAILED, f"{st.detail}; pod {stuck[0][0]} {stuck[0][1]}"
    elif crashing := [x for x in waiting if x[1] in CRASHING]:
        pod, reason, count = crashing[0]
        st.state, st.detail = supervisor.BACKOFF, f"{st.detail}; pod {pod} {reason} after {count} restarts"
    elif available < desired or not current or updated < desired:
        st.state = supervisor.STARTED
    return st


def _restart(cluster: Cluster, ns: str, name: str, run_id: str, restarts: int) -> None:
    """`kubectl rollout restart`: a new pod-template annotation makes the Deployment replace its pods; the
    Deployment records how often this supervisor did so for the run."""
    patch = {
        "metadata": {"annotations": {RESTARTS: str(restarts), RESTARTS_RUN: run_id}},
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: utc_now_iso()}}}},
    }
    cluster.apps.patch_namespaced_deployment(name, ns, patch, _content_type=k8s.MERGE_PATCH)


def _supervise_one(
    h: Handles, cluster: Cluster, p: Pack, w: WorkerEntry, run_id: str, action: str, log: Callable[[str], None]
) -> supervisor.WorkerStatus:
    """Observe one applied Deployment; restart it when its pod crash-loops and the backoff has passed."""
    ns, name = _where(h, p, w)
    d = _read(cluster, ns, name)
    st = _observed(h, p, w, d, _pods(cluster, ns, name) if d is not None else [])
    if action != "unchanged":  # created, or patched to this run's rendering: its pods are being replaced
        log(f"{st.component}: Deployment {ns}/{name} {action} for {run_id}")
        st.state, st.detail = supervisor.STARTED, f"{action}; {st.detail}"
    elif st.state == supervisor.BACKOFF:
        last = _restarted_at(d)
        due = last is None or datetime.now(UTC) >= last + timedelta(seconds=supervisor.backoff_s(h, st.restarts))
        if due:
            st.restarts += 1
            log(f"{st.component}: {st.detail}; rollout restart #{st.restarts}")
            _restart(cluster, ns, name, run_id, st.restarts)
            st.state = supervisor.RESTARTED
    return st


def _with_beats(statuses: list[supervisor.WorkerStatus], conn: psycopg.Connection | None) -> None:
    """Attach each worker's heartbeat (the worker base writes it to the database from its pod) when it beats
    for the run its Deployment serves."""
    beats = supervisor.heartbeats(conn) if conn is not None else {}
    for st in statuses:
        beat = beats.get(st.component)
        if beat and st.platform_run_id is not None and beat["platform_run_id"] == st.platform_run_id:
            st.health_state, st.heartbeat_age_s = beat["health_state"], round(beat["age_s"], 1)
            st.heartbeat_run_id = beat["platform_run_id"]


def _with_hosted(
    h: Handles,
    packs: tuple[Pack, ...],
    workers: dict[str, supervisor.WorkerStatus],
    host_status: Callable[[Pack, WorkerEntry], supervisor.WorkerStatus],
) -> list[supervisor.WorkerStatus]:
    """The workers' statuses, then each hosted component's (its host's Deployment), as the local backend lists
    them; a host in a pack outside `packs` gets `host_status` (the decision processor hosts DL and DF)."""
    out = list(workers.values())
    for p in packs:
        for x in p.hosted:
            host = spec_for(h, x.host_key).component
            if host not in workers:
                workers[host] = host_status(*_entry(x.host_key))
            out.append(supervisor._hosted(h, p, x, workers[host]))
    return out


def _entry(component_key: str) -> tuple[Pack, WorkerEntry]:
    """The spine pack and worker entry of a component key."""
    return next((p, w) for p in SPINE_PACKS for w in p.workers if w.component_key == component_key)


def _host_packs(h: Handles, packs: tuple[Pack, ...]) -> tuple[Pack, ...]:
    """`packs` and the packs of the workers that host their components: applying a pack applies its hosts."""
    extra = [_entry(x.host_key)[0] for p in packs for x in p.hosted]
    return tuple(dict.fromkeys([*packs, *extra]))


def reconcile(
    h: Handles,
    conn: psycopg.Connection | None,
    platform_run_id: str,
    packs: tuple[Pack, ...],
    log: Callable[[str], None] = lambda _: None,
    cluster: Cluster | None = None,
) -> list[supervisor.WorkerStatus]:
    """Apply the packs' objects for the run (and their hosts' packs) and supervise each Deployment; what each
    worker is doing now. A run without a digest-pinned image applies nothing and fails every worker."""
    try:
        pins = run_pins(h, platform_run_id)
    except Exception as exc:  # no run.json, or no image in it: reported as a failed start is
        reason = f"cannot apply: {exc}"

        def failed(p: Pack, w: WorkerEntry) -> supervisor.WorkerStatus:
            component = h.get(w.component_key)
            return supervisor.WorkerStatus(
                h.get(p.pack_key), component, supervisor.FAILED, platform_run_id, detail=reason
            )

        return _with_hosted(h, packs, {h.get(w.component_key): failed(p, w) for p in packs for w in p.workers}, failed)
    cluster = cluster or connect()
    applied = k8s.apply(
        h, pins, [h.get(p.pack_key) for p in _host_packs(h, packs)], cluster.apps, cluster.core, cluster.net
    )

    def one(p: Pack, w: WorkerEntry) -> supervisor.WorkerStatus:
        ns, name = _where(h, p, w)
        return _supervise_one(h, cluster, p, w, platform_run_id, applied.get(f"{ns}/{name}", "unchanged"), log)

    statuses = _with_hosted(h, packs, {h.get(w.component_key): one(p, w) for p in packs for w in p.workers}, one)
    _with_beats(statuses, conn)
    return statuses


def _observe_one(h: Handles, cluster: Cluster, p: Pack, w: WorkerEntry) -> supervisor.WorkerStatus:
    ns, name = _where(h, p, w)
    d = _read(cluster, ns, name)
    return _observed(h, p, w, d, _pods(cluster, ns, name) if d is not None else [])


def status(
    h: Handles, conn: psycopg.Connection | None, packs: tuple[Pack, ...], cluster: Cluster | None = None
) -> list[supervisor.WorkerStatus]:
    """What each worker's Deployment is doing now, without writing anything."""
    cluster = cluster or connect()

    def one(p: Pack, w: WorkerEntry) -> supervisor.WorkerStatus:
        return _observe_one(h, cluster, p, w)

    statuses = _with_hosted(h, packs, {h.get(w.component_key): one(p, w) for p in packs for w in p.workers}, one)
    _with_beats(statuses, conn)
    return statuses


def _deployments(h: Handles, cluster: Cluster, packs: tuple[Pack, ...], run_id: str | None) -> list[tuple[str, Any]]:
    """(component, Deployment) of the packs' workers that exist, serving `run_id` when it is given."""
    out = []
    for p in packs:
        for w in p.workers:
            d = _read(cluster, *_where(h, p, w))
            if d is not None and (run_id is None or (d.metadata.labels or {}).get(k8s.LABEL_RUN) == run_id):
                out.append((h.get(w.component_key), d))
    return out


def down(h: Handles, packs: tuple[Pack, ...], only_run: str | None = None, cluster: Cluster | None = None) -> list[str]:
    """Scale the packs' Deployments to zero replicas (with `only_run`, only those serving that run: a closed
    run's teardown leaves the next run's workers alone); the components scaled."""
    cluster = cluster or connect()
    scaled = []
    for component, d in _deployments(h, cluster, packs, only_run):
        if d.spec.replicas:
            zero = {"spec": {"replicas": 0}}
            cluster.apps.patch_namespaced_deployment(
                d.metadata.name, d.metadata.namespace, zero, _content_type=k8s.MERGE_PATCH
            )
            scaled.append(component)
    return scaled


def _run_pods(h: Handles, cluster: Cluster, platform_run_id: str) -> list[Any]:
    """The run's one-shot job pods (labelled with the run by `resources.k8s_job_params`) in the namespaces the
    jobs run in (resources.ONE_SHOT_JOBS)."""
    namespaces = sorted({need(h, j.namespace_key, "one-shot job pods") for j in ONE_SHOT_JOBS.values()})
    selector = f"{k8s.LABEL_RUN}={platform_run_id}"
    return [pod for ns in namespaces for pod in cluster.core.list_namespaced_pod(ns, label_selector=selector).items]


def delete_run_pods(h: Handles, platform_run_id: str, cluster: Cluster | None = None) -> list[str]:
    """Delete the run's one-shot job pods that are still there (a pod that outlived its step holds a node);
    `namespace/pod` of each deleted."""
    cluster = cluster or connect()
    deleted = []
    for pod in _run_pods(h, cluster, platform_run_id):
        try:
            cluster.core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace)
        except Exception as e:
            if not k8s.is_404(e):  # gone between the list and the delete (Pipes cleans up its own pods)
                raise
            continue
        deleted.append(f"{pod.metadata.namespace}/{pod.metadata.name}")
    return deleted


def worker_pods(h: Handles, packs: tuple[Pack, ...] = SPINE_PACKS, cluster: Cluster | None = None) -> dict[str, Any]:
    """Per worker, the pods of its Deployment that are not terminating (P2's duplicate-consumer gate: more than
    one is a second consumer) and the Deployment's desired replicas."""
    cluster = cluster or connect()
    out = {}
    for p in packs:
        for w in p.workers:
            ns, name = _where(h, p, w)
            d = _read(cluster, ns, name)
            pods = [pod for pod in _pods(cluster, ns, name) if pod.metadata.deletion_timestamp is None]
            out[spec_for(h, w.component_key).component] = {
                "processes": sorted(f"{ns}/{pod.metadata.name}" for pod in pods),
                "k8s_deployment": {"deployment": f"{ns}/{name}", "desired": d.spec.replicas if d else None},
            }
    return out


def run_workloads(
    h: Handles, platform_run_id: str, packs: tuple[Pack, ...], cluster: Cluster | None = None
) -> list[Residual]:
    """The run's workloads still on the cluster (P17's daemons gate): Deployments serving it with replicas or
    pods left, and its one-shot job pods."""
    cluster = cluster or connect()
    found = []
    for _, d in _deployments(h, cluster, packs, platform_run_id):
        ns, name = d.metadata.namespace, d.metadata.name
        pods = _pods(cluster, ns, name)
        if d.spec.replicas or pods:
            found.append(Residual("k8s_deployment", f"{ns}/{name}", f"replicas {d.spec.replicas}, pods {len(pods)}"))
    for pod in _run_pods(h, cluster, platform_run_id):
        phase = pod.status.phase if pod.status else ""
        found.append(Residual("k8s_pod", f"{pod.metadata.namespace}/{pod.metadata.name}", phase))
    return found

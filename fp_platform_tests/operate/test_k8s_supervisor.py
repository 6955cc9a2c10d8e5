"""dev_full's supervisor acts through the Kubernetes API: a pack_supervisor sensor tick against an in-memory API
built from the client's models (`k8s_double`, not a real cluster) creates, patches and scales the packs'
Deployments, restarts a crash-looping one, and never starts a local process. The run's image comes from its
run.json in the (moto) evidence bucket."""

from __future__ import annotations

from typing import Any

import pytest
from dagster import build_sensor_context

from fp_platform.contracts.gates import judge
from fp_platform.handles import Handles
from fp_platform.operate import daemons, k8s, k8s_supervisor, sensors, supervisor, teardown
from fp_platform.operate.active_run import record_active_run
from fp_platform.operate.packs import SPINE_PACKS, daemon_specs
from fp_platform.resources import PlatformResource
from fp_platform.substrate import residuals
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform_tests.operate.cloud import ACCOUNT
from fp_platform_tests.operate.k8s_double import FakeCluster

pytestmark = pytest.mark.unit

RUN = "platform_20250101T000000Z"
NEXT = "platform_20250102T000000Z"
IMAGE = f"{ACCOUNT}.dkr.ecr.eu-west-2.amazonaws.com/fraud-platform-dev-full-platform@sha256:" + "ab" * 32
WORKERS = sum(len(p.workers) for p in SPINE_PACKS)
HOSTED = sum(len(p.hosted) for p in SPINE_PACKS)
HOSTED_BY_DP = ("context_store_flow_binding", "online_feature_plane", "degrade_ladder", "decision_fabric")


def _pin(h: Handles, run_id: str, image: str | None = IMAGE) -> None:
    """What P(-1)/P1 leave for a run: its run.json with the image by digest."""
    s3 = residuals.aws_client(h, "s3")
    bucket = h.get("S3_EVIDENCE_BUCKET")
    if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": h.get("AWS_REGION")})
    run_evidence(h, run_id).write_summary(h.get("EVIDENCE_RUN_JSON_KEY"), {"image_ref": image}, phase_id="P1")


class _NoBeats:
    """A database with no heartbeat yet (the sensor's connection; the workers would write beats from their pods)."""

    autocommit = False

    def __enter__(self) -> _NoBeats:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def execute(self, *_: Any) -> Any:
        return self

    def fetchall(self) -> list[Any]:
        return []


class _Platform(PlatformResource):
    def connect(self) -> Any:  # type: ignore[override]
        return _NoBeats()


@pytest.fixture
def cluster(dev_full: Handles, monkeypatch, tmp_path) -> FakeCluster:
    """dev_full on moto with the run pinned, the active run recorded, a fake cluster behind the supervisor,
    and any local process start recorded (there must be none)."""
    fake = FakeCluster()
    monkeypatch.setattr(k8s_supervisor, "connect", fake.cluster)
    monkeypatch.setattr(sensors.caught_up, "lag_report", lambda *_: {"max_lag": None})  # the bus is not under test
    fake.spawned = []  # type: ignore[attr-defined]
    monkeypatch.setattr(daemons.subprocess, "Popen", lambda *a, **k: fake.spawned.append(a))  # type: ignore[attr-defined]
    _pin(dev_full, RUN)
    record_active_run(dev_full, RUN)  # an object in the evidence bucket: the daemon's pod has no operator's disk
    return fake


def _tick(tmp_path=None) -> dict[str, Any]:
    """One pack_supervisor tick; the daemons_ready observation's metadata."""
    result = sensors.pack_supervisor(build_sensor_context(resources={"platform": _Platform(profile="dev_full")}))
    (observation,) = result.asset_events
    return {k: v.value for k, v in observation.metadata.items()}


def _where(h: Handles, component: str) -> tuple[str, str]:
    for p in SPINE_PACKS:
        for w in p.workers:
            if h.get(w.component_key) == component:
                return h.get("EKS_NAMESPACE_" + p.pack_key.removeprefix("PACK_ID_")), k8s.deployment_name(component)
    raise KeyError(component)


def _all_ready(h: Handles, fake: FakeCluster) -> None:
    for spec in daemon_specs(h):
        fake.ready(*_where(h, spec.component))


def _states(statuses: list[supervisor.WorkerStatus]) -> dict[str, str]:
    return {s.component: s.state for s in statuses}


def test_a_sensor_tick_creates_every_deployment_and_never_starts_a_local_process(dev_full, cluster):
    h = dev_full
    meta = _tick()
    assert meta["workers"] == WORKERS + HOSTED and meta["workers_up"] == WORKERS + HOSTED
    deployments = {k: v for k, v in cluster.objects.items() if k[0] == "namespaced_deployment"}
    assert len(deployments) == WORKERS
    for spec in daemon_specs(h):
        d = cluster.deployment(*_where(h, spec.component))
        assert d["metadata"]["labels"][k8s.LABEL_RUN] == RUN and d["spec"]["replicas"] == 1
        container = d["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == IMAGE and container["command"] == ["python", "-m", spec.module, *spec.args]
        assert {"name": "REQUIRED_PLATFORM_RUN_ID", "value": RUN} in container["env"]
        assert meta[spec.component].startswith("STARTED")
        assert len(cluster.pods(*_where(h, spec.component))) == 1  # the controller made its pod
    sa = cluster.objects[("namespaced_service_account", "fp-rtdl-core", "rtdl-core")]
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == (
        f"arn:aws:iam::{ACCOUNT}:role/{h.get('ROLE_RTDL_CORE')}"
    )
    assert ("namespace", None, "fp-control-ingress") in cluster.objects
    assert ("namespaced_service_account", "fp-dagster", "oracle-job") in cluster.objects  # the one-shot jobs' too
    assert cluster.spawned == []


def test_two_ticks_are_idempotent_and_report_running_once_available(dev_full, cluster):
    h = dev_full
    _tick()
    _all_ready(h, cluster)
    writes, objects = list(cluster.writes), {k: dict(v) for k, v in cluster.objects.items()}
    meta = _tick()
    assert cluster.writes == writes, "the second tick wrote to the cluster"
    assert cluster.objects == objects
    assert meta["actions"] == "none" and meta["workers_up"] == WORKERS + HOSTED
    statuses = supervisor.status(h, None)
    assert set(_states(statuses).values()) == {supervisor.RUNNING}
    assert {s.platform_run_id for s in statuses} == {RUN} and all(s.pid is None for s in statuses)
    assert cluster.spawned == []


def test_a_crashed_pod_is_reported_and_its_deployment_restarted_with_backoff(dev_full, cluster, monkeypatch):
    h = dev_full
    _tick()
    _all_ready(h, cluster)
    ns, name = _where(h, "decision_processor")
    (crashed,) = cluster.pods(ns, name)
    cluster.crash(ns, name)
    writes = len(cluster.writes)
    observed = {s.component: s for s in supervisor.status(h, None)}["decision_processor"]
    assert observed.state == supervisor.BACKOFF and "CrashLoopBackOff after 4 restarts" in observed.detail
    assert len(cluster.writes) == writes  # status reports it and acts on nothing
    meta = _tick()
    assert "decision_processor RESTARTED" in meta["actions"]
    assert meta["decision_processor"].startswith("RESTARTED")
    d = cluster.deployment(ns, name)
    assert d["metadata"]["annotations"][k8s_supervisor.RESTARTS] == "1"
    assert k8s_supervisor.RESTARTED_AT in d["spec"]["template"]["metadata"]["annotations"]
    (replacement,) = cluster.pods(ns, name)
    assert replacement["metadata"]["name"] != crashed["metadata"]["name"]  # rollout restart replaced the pod
    statuses = {s.component: s for s in supervisor.status(h, None)}
    for hosted in HOSTED_BY_DP:
        assert statuses[hosted].detail.startswith("hosted by decision_processor")
    others = [c for c, s in statuses.items() if s.state != supervisor.RUNNING]
    assert set(others) == {"decision_processor", *HOSTED_BY_DP}

    cluster.crash(ns, name)  # crashes again at once: backoff holds the next restart
    writes = len(cluster.writes)
    statuses = supervisor.reconcile(h, None, RUN)
    assert _states(statuses)["decision_processor"] == supervisor.BACKOFF and len(cluster.writes) == writes
    monkeypatch.setattr(supervisor, "backoff_s", lambda *_: 0.0)
    statuses = {s.component: s for s in supervisor.reconcile(h, None, RUN)}
    assert statuses["decision_processor"].state == supervisor.RESTARTED and statuses["decision_processor"].restarts == 2
    assert cluster.spawned == []


def test_an_image_that_cannot_be_pulled_fails_without_restarts(dev_full, cluster):
    h = dev_full
    _tick()
    ns, name = _where(h, "archive_writer")
    cluster.crash(ns, name, restarts=0, reason="ImagePullBackOff")
    writes = len(cluster.writes)
    states = _states(supervisor.reconcile(h, None, RUN))
    assert states["archive_writer"] == supervisor.FAILED and len(cluster.writes) == writes


def test_a_new_run_patches_every_deployment_and_resets_restarts(dev_full, cluster, tmp_path):
    h = dev_full
    _tick()
    _all_ready(h, cluster)
    ns, name = _where(h, "label_store")
    cluster.crash(ns, name)
    _tick()
    _pin(h, NEXT)
    record_active_run(h, NEXT)
    meta = _tick()
    assert all(meta[s.component].startswith("STARTED") for s in daemon_specs(h))
    for spec in daemon_specs(h):
        d = cluster.deployment(*_where(h, spec.component))
        (container,) = d["spec"]["template"]["spec"]["containers"]
        assert {"name": "REQUIRED_PLATFORM_RUN_ID", "value": NEXT} in container["env"]
        assert d["metadata"]["labels"][k8s.LABEL_RUN] == NEXT
    assert {s.component: s.restarts for s in supervisor.status(h, None)}["label_store"] == 0
    assert ("patch", "namespaced_deployment", ns, name) in cluster.writes


def test_down_scales_the_runs_deployments_to_zero_and_a_tick_scales_them_back(dev_full, cluster):
    h = dev_full
    _tick()
    _all_ready(h, cluster)
    assert supervisor.down(h, None, only_run=NEXT) == []  # another run's teardown leaves these alone
    scaled = supervisor.down(h, None, only_run=RUN)
    assert sorted(scaled) == sorted(s.component for s in daemon_specs(h))
    assert all(not cluster.pods(*_where(h, s.component)) for s in daemon_specs(h))
    assert set(_states(supervisor.status(h, None)).values()) == {supervisor.STOPPED}
    assert k8s_supervisor.run_workloads(h, RUN, SPINE_PACKS) == []
    assert supervisor.down(h, None) == []  # nothing left to scale
    _tick()
    assert all(cluster.deployment(*_where(h, s.component))["spec"]["replicas"] == 1 for s in daemon_specs(h))


def test_a_run_without_a_digest_pinned_image_applies_nothing(dev_full, cluster):
    h = dev_full
    _pin(h, RUN, image=IMAGE.split("@")[0] + ":git-" + "a" * 40)
    statuses = supervisor.reconcile(h, None, RUN)
    assert set(_states(statuses).values()) == {supervisor.FAILED} and len(statuses) == WORKERS + HOSTED
    assert "not this profile's image by digest" in statuses[0].detail
    assert cluster.objects == {}


def test_local_processes_stay_refused_on_dev_full(dev_full, cluster):
    with pytest.raises(daemons.LocalProcessRefused, match="never as local processes"):
        daemons.start(dev_full, daemon_specs(dev_full)[0], RUN)
    assert cluster.spawned == []


def test_the_run_pins_come_from_run_json(dev_full, cluster):
    pins = k8s_supervisor.run_pins(dev_full, RUN)
    assert pins == k8s.Pins(RUN, ACCOUNT, IMAGE)
    _pin(dev_full, RUN, image=IMAGE.replace("fraud-platform-dev-full-platform", "someone-elses-image"))
    with pytest.raises(k8s.K8sError, match="not this profile's image"):
        k8s_supervisor.run_pins(dev_full, RUN)


# method suffix of the client → (API group, resource, namespaced)
RESOURCES = {
    "namespace": ("", "namespaces", False),
    "namespaced_deployment": ("apps", "deployments", True),
    "namespaced_pod": ("", "pods", True),
    "namespaced_service_account": ("", "serviceaccounts", True),
    "namespaced_service": ("", "services", True),
    "namespaced_network_policy": ("networking.k8s.io", "networkpolicies", True),
}
KINDS = {
    "Namespace": "namespace",
    "Deployment": "namespaced_deployment",
    "ServiceAccount": "namespaced_service_account",
    "Service": "namespaced_service",
    "NetworkPolicy": "namespaced_network_policy",
}
VERBS = {"read": "get", "list": "list", "create": "create", "patch": "patch", "delete": "delete"}


def _granted(h: Handles) -> set[tuple[str | None, str, str, str]]:
    """(namespace or None for cluster-wide, group, resource, verb) the supervisor's roles grant its ServiceAccount
    in the rendered RBAC (infra/k8s/supervisor/_rbac.yaml; the Pipes pods' role is test_k8s_jobs's)."""
    (docs,) = k8s.rbac_files(h).values()
    roles = {d["metadata"]["name"]: d["rules"] for d in docs if d["kind"] == "ClusterRole"}
    sa = {"kind": "ServiceAccount", "name": "dagster-orchestrator", "namespace": h.get("EKS_NAMESPACE_DAGSTER")}
    out = set()
    bindings = [d for d in docs if d["kind"] in ("ClusterRoleBinding", "RoleBinding") and sa in d["subjects"]]
    for b in (b for b in bindings if b["roleRef"]["name"].startswith("fp-pack-supervisor")):
        where = b["metadata"].get("namespace")
        for rule in roles[b["roleRef"]["name"]]:
            out |= {(where, g, r, v) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    return out


def _needed(calls: list[tuple[str, str, str | None]]) -> set[tuple[str | None, str, str, str]]:
    return {(ns, *RESOURCES[suffix][:2], VERBS[verb]) for verb, suffix, ns in calls}


def test_the_supervisors_rbac_grants_every_call_it_makes_and_nothing_more(dev_full, cluster, tmp_path, monkeypatch):
    """Replays what the supervisor does (a fresh cluster, a crash restart, a new run, teardown's scale-down and
    pod deletion, status) and an operator's bootstrap apply it then adopts, against the double; every call must
    be granted in its namespace by the rendered RBAC, and every grant must be used."""
    h = dev_full
    _tick()
    _all_ready(h, cluster)
    cluster.crash(*_where(h, "case_management"))
    _tick()
    _pin(h, NEXT)
    record_active_run(h, NEXT)
    _tick()
    job_pod = {"name": "sr-1", "labels": {k8s.LABEL_RUN: NEXT}}  # one of the run's job pods is left over
    spec = {"containers": [{"name": "main", "image": IMAGE}]}
    cluster.cluster().core.create_namespaced_pod(h.get("EKS_NAMESPACE_DAGSTER"), {"metadata": job_pod, "spec": spec})
    supervisor.down(h, None, only_run=NEXT)
    assert k8s_supervisor.delete_run_pods(h, NEXT) == [f"{h.get('EKS_NAMESPACE_DAGSTER')}/sr-1"]
    k8s_supervisor.run_workloads(h, NEXT, SPINE_PACKS)
    supervisor.status(h, None)
    calls = [c for c in cluster.calls if c[1] != "namespaced_pod" or c[0] != "create"]  # the test's own create

    adopted = FakeCluster()  # objects an operator applied with kubectl (no recorded rendering): patched once
    pins = k8s_supervisor.run_pins(h, NEXT)
    files = [k8s.job_files(h, pins), *(k8s.pack_files(h, p, pins) for p in SPINE_PACKS)]
    for body in (body for f in files for docs in f.values() for body in docs):
        adopted.seed(KINDS[body["kind"]], body["metadata"].get("namespace"), body)
    monkeypatch.setattr(k8s_supervisor, "connect", adopted.cluster)
    supervisor.reconcile(h, None, NEXT)
    calls += adopted.calls

    needed, granted = _needed(calls), _granted(h)
    assert needed - granted == set(), "calls the RBAC does not grant"
    by_scope = {(g, r, v) for _, g, r, v in needed}
    assert {(g, r, v) for _, g, r, v in granted} == by_scope, "grants no call uses"
    assert not any("*" in x for grant in granted for x in grant[1:])
    assert {ns for ns, *_ in granted} == {None} | {ns for ns, *_ in needed if ns}


def test_p2_sees_a_second_pod_or_replica_of_a_worker_on_eks(dev_full, cluster):
    """P2's duplicate-consumer gate on dev_full: one pod per Deployment passes; a second replica, or a second
    pod that is not terminating, fails naming the Deployment; a terminating pod is no consumer."""
    from fp_platform.operate import gates, readiness

    h = dev_full
    _tick()
    _all_ready(h, cluster)

    def verdict() -> tuple[bool, str]:
        doc = readiness.readiness_doc(h, supervisor.status(h, None), RUN)  # type: ignore[arg-type]
        (result,) = [r for r in judge(gates.DAEMONS_READY, doc) if r.name == "no_duplicate_consumers"]
        return result.passed, result.detail

    assert verdict()[0], verdict()
    ns, name = _where(h, "decision_processor")
    (pod,) = cluster.pods(ns, name)
    extra = {**pod, "metadata": {**pod["metadata"], "name": f"{name}-by-hand"}}
    cluster.objects[("namespaced_pod", ns, f"{name}-by-hand")] = extra
    passed, detail = verdict()
    assert not passed and f"Deployment {ns}/{name} desired 1" in detail and f"{name}-by-hand" in detail
    extra["metadata"]["deletionTimestamp"] = "2026-11-30T00:00:00Z"
    assert verdict()[0], verdict()
    cluster.deployment(ns, name)["spec"]["replicas"] = 2
    passed, detail = verdict()
    assert not passed and "desired 2" in detail


def test_a_status_the_controller_has_not_caught_up_with_is_not_running(dev_full, cluster):
    """Just after a patch the Deployment's status still describes the previous spec: available pods of the old
    template prove nothing about the new one."""
    h = dev_full
    _tick()
    _all_ready(h, cluster)
    ns, name = _where(h, "decision_processor")
    assert _states(supervisor.status(h, None))["decision_processor"] == supervisor.RUNNING
    d = cluster.deployment(ns, name)
    d["metadata"]["generation"] += 1  # a patch the controller has not observed yet
    assert _states(supervisor.status(h, None))["decision_processor"] == supervisor.STARTED
    d["status"]["observedGeneration"] = d["metadata"]["generation"]
    d["status"]["updatedReplicas"] = 0  # observed, but the new template's pod is not up yet
    assert _states(supervisor.status(h, None))["decision_processor"] == supervisor.STARTED


def test_the_supervisor_brings_nothing_back_for_a_torn_down_run(dev_full, cluster):
    """After P17 the active run is closed: a tick must not scale its Deployments back up (nor, locally, restart
    its processes)."""
    h = dev_full
    _tick()
    supervisor.down(h, None)
    writes = len(cluster.writes)
    run_evidence(h, RUN).write_summary(h.get("TEARDOWN_PROOF_PATH_PATTERN"), {"env": "dev_full"}, phase_id="P17")
    result = sensors.pack_supervisor(build_sensor_context(resources={"platform": _Platform(profile="dev_full")}))
    assert not result.asset_events and "torn down" in result.skip_reason.skip_message
    assert len(cluster.writes) == writes
    assert all(
        d["spec"]["replicas"] == 0 for (kind, *_), d in cluster.objects.items() if kind == "namespaced_deployment"
    )


def test_a_tick_during_p17_leaves_the_scaled_down_deployments_alone(dev_full, cluster, monkeypatch):
    """P17 scales to zero, then waits up to the pods' grace period before its proof: a tick in that window
    (the daemon reads the active-run record from the bucket every interval) must not patch the Deployments
    back to one replica. P17's first act, the started marker, is what the sensor sees."""
    h = dev_full
    _tick()
    _all_ready(h, cluster)
    ticks: list[Any] = []

    def scan_with_a_tick(*args, **kwargs):
        ticks.append(
            sensors.pack_supervisor(build_sensor_context(resources={"platform": _Platform(profile="dev_full")}))
        )
        return original(*args, **kwargs)

    original = k8s_supervisor.run_workloads
    monkeypatch.setattr(k8s_supervisor, "run_workloads", scan_with_a_tick)
    monkeypatch.setattr(teardown, "SETTLE_S", 0)
    facts = teardown.teardown_facts(h, run_evidence(h, RUN), lambda: None, destroy=None)
    assert ticks and all(not t.asset_events and "tearing down" in t.skip_reason.skip_message for t in ticks)
    assert facts["daemons"]["alive"]["found"] == []
    assert all(
        d["spec"]["replicas"] == 0 for (kind, *_), d in cluster.objects.items() if kind == "namespaced_deployment"
    )

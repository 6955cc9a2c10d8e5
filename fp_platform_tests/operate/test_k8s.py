"""The packs' Kubernetes objects, by rendering and applied to an in-memory API double (`k8s_double`; no
cluster here): the Deployments and the objects around them (Namespaces, IRSA ServiceAccounts, NetworkPolicies,
IG's Service), validated against the pinned Kubernetes version's schemas (checkov runs in
fp_platform_tests/infra/test_checkov.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from fp_platform.handles import AWS_ACCOUNT_ENV_VAR, Handles, handles
from fp_platform.operate import k8s
from fp_platform.operate.packs import SPINE_PACKS, daemon_spec
from fp_platform.resources import ONE_SHOT_JOBS, k8s_job_params
from fp_platform_tests.operate import k8s_double
from fp_platform_tests.operate.k8s_double import FakeCluster

pytestmark = pytest.mark.infra

RUN = "platform_20250101T000000Z"
ACCOUNT = "123456789012"
DIGEST = "sha256:" + "ab" * 32
IMAGE = f"{ACCOUNT}.dkr.ecr.eu-west-2.amazonaws.com/fraud-platform-dev-full-platform@{DIGEST}"
PINS = k8s.Pins(RUN, ACCOUNT, IMAGE)
REPO = Path(__file__).resolve().parents[2]
INFRA_K8S = REPO / "infra" / "k8s"
# The pinned cluster version (infra/handles: Terraform's EKS version, not read by the runtime).
K8S_VERSION = yaml.safe_load((REPO / "infra" / "handles" / "dev_full.yaml").read_text())["handles"][
    "EKS_KUBERNETES_VERSION"
]
# Each pack's IAM role, written out here so that a wrong mapping in k8s_objects.PACK_ROLES fails.
EXPECTED_ROLES = {
    "control_ingress": "ROLE_IG_SERVICE",
    "rtdl_core": "ROLE_RTDL_CORE",
    "rtdl_decision_lane": "ROLE_DECISION_LANE",
    "case_labels": "ROLE_CASE_LABELS",
    "obs_gov": "ROLE_OBS_GOV_CONFORMANCE",
}


@pytest.fixture(scope="module")
def full() -> Handles:
    return handles("dev_full")


def _env(doc: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in doc["spec"]["template"]["spec"]["containers"][0]["env"]}


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return container


def _objects(full: Handles, pins: k8s.Pins = PINS) -> list[dict[str, Any]]:
    return [doc for docs in k8s.render_docs(full, pins).values() for doc in docs]


def _of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_every_spine_worker_renders_one_deployment(full):
    for p in SPINE_PACKS:
        docs = k8s.render_pack(full, p, PINS)
        assert len(docs) == len(p.workers)
        for w, doc in zip(p.workers, docs, strict=True):
            spec = daemon_spec(full, p, w)  # what the local supervisor runs
            assert doc["kind"] == "Deployment" and doc["apiVersion"] == "apps/v1"
            assert doc["metadata"]["name"] == spec.component.replace("_", "-")
            assert doc["metadata"]["namespace"] == full.get("EKS_NAMESPACE_" + p.pack_key.removeprefix("PACK_ID_"))
            assert doc["spec"]["replicas"] == 1
            assert doc["spec"]["strategy"] == {"type": "Recreate"}
            assert _env(doc)["FP_PROFILE"] == "dev_full"
            assert _env(doc)[AWS_ACCOUNT_ENV_VAR] == ACCOUNT  # the pod renders the suffixed bucket names
            assert _env(doc)[full.get("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")] == RUN
            assert _container(doc)["command"] == ["python", "-m", spec.module, *spec.args]
            assert _container(doc)["image"] == IMAGE
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert labels[k8s.LABEL_RUN] == RUN and labels[k8s.LABEL_PACK] == spec.pack_id
            assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()
            assert k8s.LABEL_RUN not in doc["spec"]["selector"]["matchLabels"]  # selector is immutable


def test_render_covers_every_spine_worker_and_pack(full):
    rendered = k8s.render_all(full, PINS)
    workers = {f"{full.get(p.pack_key)}/{full.get(w.component_key)}.yaml" for p in SPINE_PACKS for w in p.workers}
    packs = {f"{full.get(p.pack_key)}/{k8s.PACK_FILE}" for p in SPINE_PACKS}
    assert set(rendered) == workers | packs | {k8s.JOBS_FILE, k8s.RBAC_FILE}
    assert "control_ingress/ingestion_gate.yaml" in rendered and "rtdl_core/archive_writer.yaml" in rendered
    assert "rtdl_core/decision_processor.yaml" in rendered and "case_labels/label_store.yaml" in rendered
    assert "obs_gov/environment_conformance.yaml" in rendered
    assert rendered == k8s.render_all(full, PINS)  # stable
    kinds = sorted(d["kind"] for d in _objects(full))
    n = len(SPINE_PACKS)
    roles = {j.role for j in ONE_SHOT_JOBS.values()}
    assert kinds.count("Namespace") == n + 1  # and the learning jobs'
    assert kinds.count("ServiceAccount") == n + len(roles) and kinds.count("Service") == 1
    assert kinds.count("Deployment") == sum(len(p.workers) for p in SPINE_PACKS)


@pytest.mark.parametrize("pins", ["real", "placeholders"])
def test_every_object_passes_strict_schema_validation_for_the_pinned_version(full, pins):
    docs = _objects(full, PINS if pins == "real" else k8s.placeholders(full))
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises ValidationError
    applied = {"Namespace", "ServiceAccount", "NetworkPolicy", "Deployment", "Service"}
    assert {d["kind"] for d in docs} == applied | {"ClusterRole", "ClusterRoleBinding", "RoleBinding"}


def test_strict_validation_catches_a_misspelt_field(full):
    """The validator is strict: an unknown field (what a typo in k8s.py would make) fails."""
    doc = k8s.render_pack(full, SPINE_PACKS[1], PINS)[0]
    doc["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_committed_manifests_pass_the_kubernetes_validate_cli(tmp_path):
    """`kubernetes-validate --strict` itself, over every committed file (a misspelt copy is the control)."""
    cli = [str(Path(sys.executable).parent / "kubernetes-validate"), "--strict", "--quiet", "-k", K8S_VERSION]
    files = sorted(str(p) for p in INFRA_K8S.rglob("*.yaml"))
    assert len(files) >= 16
    done = subprocess.run([*cli, *files], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (INFRA_K8S / "rtdl_core" / "_pack.yaml").read_text().replace("namespace: fp-rtdl-core", "namspace: x")
    )
    done = subprocess.run([*cli, str(bad)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "namspace" in done.stdout + done.stderr


def test_ig_service_dns_name_is_the_host_of_ig_base_url(full):
    (svc,) = _of_kind(_objects(full), "Service")
    url = urlsplit(full.get("IG_BASE_URL"))
    assert f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc.cluster.local" == url.hostname
    (port,) = svc["spec"]["ports"]
    assert port["port"] == url.port
    ig = k8s.render_docs(full, PINS)["control_ingress/ingestion_gate.yaml"][0]
    assert svc["spec"]["selector"].items() <= ig["spec"]["template"]["metadata"]["labels"].items()
    assert port["targetPort"] in [p["name"] for p in _container(ig)["ports"]]
    assert _container(ig)["ports"][0]["containerPort"] == full.get("IG_PORT")


def test_ig_base_url_naming_another_host_is_refused(full):
    moved = Handles(full.profile, {**full.values, "IG_BASE_URL": "http://ingestion-gate.fp-control-ingress.svc:8081"})
    with pytest.raises(k8s.K8sError, match="does not name the IG Service fp-ingestion-gate"):
        k8s.render_docs(moved, PINS)


def test_each_service_account_carries_its_packs_role_arn(full):
    docs = k8s.render_docs(full, PINS)
    for p in SPINE_PACKS:
        pack_id = full.get(p.pack_key)
        (sa,) = _of_kind(docs[f"{pack_id}/{k8s.PACK_FILE}"], "ServiceAccount")
        role = full.get(EXPECTED_ROLES[pack_id])
        assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == f"arn:aws:iam::{ACCOUNT}:role/{role}"
        assert role.startswith("fraud-platform-dev-full-")
        for w in p.workers:
            pod = docs[f"{pack_id}/{full.get(w.component_key)}.yaml"][0]["spec"]["template"]["spec"]
            assert pod["serviceAccountName"] == sa["metadata"]["name"]
            assert (
                sa["metadata"]["namespace"]
                == docs[f"{pack_id}/{full.get(w.component_key)}.yaml"][0]["metadata"]["namespace"]
            )


def test_every_namespace_denies_by_default_and_allows_only_dns_stores_and_ig(full):
    docs = _objects(full)
    namespaces = {d["metadata"]["name"] for d in _of_kind(docs, "Namespace")}
    learning = full.get("EKS_NAMESPACE_LEARNING")
    assert namespaces - {learning} == {d["metadata"]["namespace"] for d in _of_kind(docs, "Deployment")}
    policies = _of_kind(docs, "NetworkPolicy")
    ig_ns = full.get("EKS_NAMESPACE_CONTROL_INGRESS")
    for ns in namespaces:
        mine = {d["metadata"]["name"]: d["spec"] for d in policies if d["metadata"]["namespace"] == ns}
        assert mine["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        ports = {(p["protocol"], p["port"]) for rule in mine["allow-egress-stores"]["egress"] for p in rule["ports"]}
        assert ports >= {("UDP", 53), ("TCP", 53), ("TCP", 9098), ("TCP", full.get("DB_PORT")), ("TCP", 443)}
        assert ports <= {("UDP", 53), ("TCP", 53), ("TCP", 9098), ("TCP", 5432), ("TCP", 443), ("TCP", 8081)}
        assert ("allow-ingress-ig" in mine) == (ns == ig_ns)
    (ingress,) = [d["spec"] for d in policies if d["metadata"]["name"] == "allow-ingress-ig"]
    callers = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in ingress["ingress"][0]["from"]
    }
    assert callers == {full.get("EKS_NAMESPACE_DAGSTER"), ig_ns, full.get("EKS_NAMESPACE_OBS_GOV")}
    assert ingress["ingress"][0]["ports"] == [{"protocol": "TCP", "port": full.get("IG_PORT")}]


def test_each_one_shot_job_role_has_its_irsa_service_account_where_its_pod_runs(full):
    """Every job of resources.ONE_SHOT_JOBS finds, in the namespace its pod is launched in, the ServiceAccount
    its pod names, annotated with its ROLE_* handle's ARN and trusted by Terraform's runtime stack for that role."""
    jobs = k8s.render_docs(full, PINS)[k8s.JOBS_FILE]
    accounts = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in _of_kind(jobs, "ServiceAccount")}
    irsa = json.loads((REPO / "infra/terraform/dev_full/runtime/handles.auto.tfvars.json").read_text())["irsa"]
    trusted = {(v["namespace"], v["service_account"]): v["role_name"] for v in irsa.values()}
    for (module, job), spec in ONE_SHOT_JOBS.items():
        params = k8s_job_params(full, module, job or "train", ["python"], {}, IMAGE, RUN)
        where = (params["namespace"], params["base_pod_spec"]["serviceAccountName"])
        sa = accounts[where]
        arn = f"arn:aws:iam::{ACCOUNT}:role/{full.get(spec.role)}"
        assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == arn
        assert trusted[where] == full.get(spec.role)
        assert sa["automountServiceAccountToken"] is False
    assert len(accounts) == len({j.role for j in ONE_SHOT_JOBS.values()})


def test_job_policies_deny_by_default_and_in_dagsters_namespace_select_only_job_pods(full):
    jobs = k8s.render_docs(full, PINS)[k8s.JOBS_FILE]
    dagster, learning = full.get("EKS_NAMESPACE_DAGSTER"), full.get("EKS_NAMESPACE_LEARNING")
    assert [d["metadata"]["name"] for d in _of_kind(jobs, "Namespace")] == [learning]  # Dagster's is Helm's
    policies = {(d["metadata"]["namespace"], d["metadata"]["name"]): d["spec"] for d in _of_kind(jobs, "NetworkPolicy")}
    assert set(policies) == {
        (dagster, "fp-jobs-default-deny"),
        (dagster, "fp-jobs-allow-egress-stores"),
        (learning, "default-deny"),
        (learning, "allow-egress-stores"),
    }
    job_pods = policies[(dagster, "fp-jobs-default-deny")]["podSelector"]
    assert job_pods == {"matchExpressions": [{"key": "fp.platform/job", "operator": "Exists"}]}
    labels = k8s_job_params(full, "fp_platform.control.jobs", "wsp", ["python"], {}, IMAGE, RUN)["base_pod_meta"]
    assert "fp.platform/job" in labels["labels"] and labels["labels"][k8s.LABEL_RUN] == RUN
    assert policies[(learning, "default-deny")]["podSelector"] == {}
    ig_port = full.get("IG_PORT")
    egress_ports = {
        ns: {p["port"] for rule in policies[(ns, name)]["egress"] for p in rule["ports"]}
        for ns, name in policies
        if "allow-egress" in name
    }
    assert ig_port in egress_ports[dagster] and ig_port not in egress_ports[learning]  # WSP/SR call IG; learning not


def test_pods_run_non_root_on_a_read_only_root_with_writable_tmp_and_state(full):
    for doc in _of_kind(_objects(full), "Deployment"):
        pod, c = doc["spec"]["template"]["spec"], _container(doc)
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] >= 10000
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert pod["automountServiceAccountToken"] is False
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        assert mounts.keys() == {"/tmp", _env(doc)["FP_STATE_DIR"]}
        assert {v["name"] for v in pod["volumes"] if "emptyDir" in v} == set(mounts.values())
        assert c["resources"]["requests"] and c["resources"]["limits"]


def test_ig_probes_use_its_ready_path_and_workers_the_heartbeat_probe(full):
    rendered = k8s.render_docs(full, PINS)
    ig = _container(rendered["control_ingress/ingestion_gate.yaml"][0])
    assert ig["readinessProbe"]["httpGet"] == {"path": full.get("IG_READY_PATH"), "port": "http"}
    assert ig["livenessProbe"]["tcpSocket"] == {"port": "http"} and "startupProbe" in ig
    rtdl = [docs[0] for path, docs in rendered.items() if path.startswith("rtdl_core/") and "_pack" not in path]
    assert len(rtdl) == 3
    for doc in rtdl:
        c = _container(doc)
        component = c["command"][-1]
        alive = ["python", "-m", "fp_platform.substrate.probe", component, "--max-age-s", "30"]
        assert c["livenessProbe"]["exec"]["command"] == alive == c["startupProbe"]["exec"]["command"]
        assert c["readinessProbe"]["exec"]["command"] == [*alive, "--run-id", RUN]
        assert "ports" not in c
    assert [_container(doc)["command"][-1] for doc in rtdl] == [
        "archive_writer",
        "identity_entity_graph",
        "decision_processor",
    ]


def test_the_rendered_exec_probe_runs_and_judges_the_heartbeat_file(full, tmp_path):
    """The manifest's probe commands, run as the kubelet would: fail before the first beat, pass after it,
    and readiness fails for another run's heartbeat."""
    from fp_platform.substrate.probe import write_probe

    c = _container(k8s.render_pack(full, SPINE_PACKS[1], PINS)[0])
    env = {"FP_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def run(cmd: list[str]) -> int:
        return subprocess.run([sys.executable, *cmd[1:]], env=env, capture_output=True, timeout=60).returncode

    live, ready = c["livenessProbe"]["exec"]["command"], c["readinessProbe"]["exec"]["command"]
    assert run(live) == 1
    write_probe("archive_writer", RUN, "GREEN", root=tmp_path)
    assert run(live) == 0 and run(ready) == 0
    write_probe("archive_writer", "platform_20240101T000000Z", "GREEN", root=tmp_path)
    assert run(live) == 0 and run(ready) == 1


def test_committed_manifests_equal_the_rendering(full):
    expected = k8s.render_all(full, k8s.placeholders(full))
    committed = {p.relative_to(INFRA_K8S).as_posix(): p.read_text() for p in sorted(INFRA_K8S.rglob("*.yaml"))}
    assert committed == expected, "regenerate: .venv/bin/python -m fp_platform.operate.k8s infra/k8s"


def test_substituting_the_placeholders_gives_the_real_rendering(full):
    templates = k8s.render_all(full, k8s.placeholders(full))
    real = k8s.render_all(full, PINS)
    subst = {"${PLATFORM_RUN_ID}": RUN, "${AWS_ACCOUNT_ID}": ACCOUNT, "${IMAGE_DIGEST}": DIGEST.removeprefix("sha256:")}
    for path, text in templates.items():
        for placeholder, value in subst.items():
            text = text.replace(placeholder, value)
        assert list(yaml.safe_load_all(text)) == list(yaml.safe_load_all(real[path]))


def test_write_manifests_replaces_stale_files_it_owns(full, tmp_path):
    (tmp_path / "rtdl_core").mkdir()
    (tmp_path / "rtdl_core" / "retired_worker.yaml").write_text("stale\n")
    (tmp_path / "obs_gov").mkdir()
    (tmp_path / "obs_gov" / "platform_run_reporter.yaml").write_text("stale\n")
    (tmp_path / "README.md").write_text("keep\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.yaml").write_text("keep\n")
    written = k8s.write_manifests(tmp_path, full, PINS)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == sorted(k8s.render_all(full, PINS))
    assert not (tmp_path / "rtdl_core" / "retired_worker.yaml").exists()
    assert not (tmp_path / "obs_gov" / "platform_run_reporter.yaml").exists()
    assert (tmp_path / "README.md").exists() and (tmp_path / "other" / "keep.yaml").exists()


def test_image_ref_pins_the_digest(full):
    assert k8s.image_ref(full, ACCOUNT, DIGEST) == IMAGE
    with pytest.raises(k8s.K8sError, match="not sha256"):
        k8s.image_ref(full, ACCOUNT, "git-abc1234")
    assert k8s.placeholders(full).image.endswith("@sha256:${IMAGE_DIGEST}")


def test_bad_pins_are_refused(full):
    p = SPINE_PACKS[1]
    with pytest.raises(k8s.K8sError, match="not a platform_run_id"):
        k8s.deployment(full, p, p.workers[0], k8s.Pins("yesterday", ACCOUNT, IMAGE))
    tagged = IMAGE.split("@")[0] + ":git-abc1234"
    with pytest.raises(k8s.K8sError, match="not pinned by digest"):
        k8s.deployment(full, p, p.workers[0], k8s.Pins(RUN, ACCOUNT, tagged))
    with pytest.raises(k8s.K8sError, match="not pinned by digest"):
        k8s.deployment(full, p, p.workers[0], k8s.Pins(RUN, ACCOUNT, IMAGE[:-1]))  # 63 hex digits
    with pytest.raises(k8s.K8sError, match="not 12 digits"):
        k8s.pack_objects(full, p, k8s.Pins(RUN, "12345", IMAGE))
    with pytest.raises(k8s.K8sError, match="placeholders"):
        k8s.apply(full, k8s.Pins(k8s.RUN_ID_PLACEHOLDER, ACCOUNT, IMAGE), **_fakes())
    with pytest.raises(k8s.K8sError, match="placeholders"):
        k8s.apply(full, k8s.Pins(RUN, ACCOUNT, k8s.placeholders(full).image), **_fakes())


def test_local_profile_has_no_eks_and_says_so():
    local = handles("local")
    with pytest.raises(k8s.K8sError, match="profile local"):
        k8s.render_all(local, PINS)
    with pytest.raises(k8s.K8sError, match="EKS"):
        k8s.apply(local, PINS, **_fakes())


def _fakes(fake: FakeCluster | None = None, error: int | None = None) -> dict[str, Any]:
    fake = fake or FakeCluster(error=error)
    c = fake.cluster()
    return {"api": c.apps, "core": c.core, "net": c.net}


def test_the_api_double_refuses_what_the_client_would():
    c = FakeCluster().cluster()
    with pytest.raises(AttributeError):
        c.core.create_namespaced_network_policy("ns", {"metadata": {"name": "x"}})  # NetworkingV1Api's, not core's
    with pytest.raises(TypeError):
        c.core.read_namespaced_service("only-a-name")
    with pytest.raises(TypeError, match="label_selectr"):
        c.core.list_namespaced_pod("ns", label_selectr="a=b")  # a keyword the client does not document
    assert isinstance(c.core.list_namespaced_pod("ns"), client.V1PodList)


def test_apply_to_a_fresh_cluster_creates_every_object_in_order_then_writes_nothing(full):
    fake = FakeCluster()
    result = k8s.apply(full, PINS, pack_ids=["control_ingress"], jobs=False, **_fakes(fake))
    assert result == {
        "Namespace fp-control-ingress": "created",
        "ServiceAccount fp-control-ingress/ig-service": "created",
        "NetworkPolicy fp-control-ingress/default-deny": "created",
        "NetworkPolicy fp-control-ingress/allow-egress-stores": "created",
        "NetworkPolicy fp-control-ingress/allow-ingress-ig": "created",
        "fp-control-ingress/ingestion-gate": "created",
        "Service fp-control-ingress/fp-ingestion-gate": "created",
    }
    assert fake.writes[0] == ("create", "namespace", None, "fp-control-ingress")  # namespace first
    kinds = {k[0] for k in fake.objects}
    assert kinds == {
        "namespace",
        "namespaced_service_account",
        "namespaced_network_policy",
        "namespaced_deployment",
        "namespaced_service",
        "namespaced_pod",  # the double's Deployment controller
    }
    sa = fake.objects[("namespaced_service_account", "fp-control-ingress", "ig-service")]
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(":role/" + full.get("ROLE_IG_SERVICE"))
    writes = list(fake.writes)
    again = k8s.apply(full, PINS, pack_ids=["control_ingress"], jobs=False, **_fakes(fake))
    assert set(again.values()) == {"unchanged"} and again.keys() == result.keys()
    assert fake.writes == writes  # idempotent: the recorded rendering digest matches, nothing is written


def test_apply_creates_the_jobs_objects_first(full):
    fake = FakeCluster()
    result = k8s.apply(full, PINS, pack_ids=["obs_gov"], **_fakes(fake))
    first = list(result)[: len(k8s.job_files(full, PINS)[k8s.JOBS_FILE])]
    assert first[0] == "Namespace fp-learning" and "ServiceAccount fp-dagster/wsp-task" in first
    assert ("namespaced_service_account", "fp-learning", "learning-job") in fake.objects
    everything = k8s.apply(full, PINS, **_fakes(fake))  # every pack: still never the supervisor's own RBAC
    assert not [k for k in everything if k.split()[0] in ("ClusterRole", "ClusterRoleBinding", "RoleBinding")]
    assert {suffix for suffix, *_ in fake.objects} <= set(k8s_double.MODELS)


def test_apply_creates_when_absent_and_patches_when_the_rendering_changed(full):
    fake = FakeCluster()
    result = k8s.apply(full, PINS, pack_ids=["rtdl_core"], **_fakes(fake))
    assert {k: v for k, v in result.items() if " " not in k} == {
        "fp-rtdl-core/archive-writer": "created",
        "fp-rtdl-core/identity-entity-graph": "created",
        "fp-rtdl-core/decision-processor": "created",
    }
    live = fake.deployment("fp-rtdl-core", "archive-writer")
    rendered = k8s.deployment(full, SPINE_PACKS[1], SPINE_PACKS[1].workers[0], PINS)
    assert live["spec"] == rendered["spec"]
    assert live["metadata"]["annotations"][k8s.APPLIED_DIGEST] == k8s.rendering_digest(rendered)
    next_run = "platform_20250102T000000Z"
    result = k8s.apply(full, k8s.Pins(next_run, ACCOUNT, IMAGE), **_fakes(fake))
    assert result["fp-control-ingress/ingestion-gate"] == "created"
    assert [v for k, v in result.items() if k.startswith("fp-rtdl-core/")] == ["patched"] * 3
    assert result["Namespace fp-rtdl-core"] == "unchanged"  # nothing in it names the run
    assert ("patch", "namespaced_deployment", "fp-rtdl-core", "archive-writer") in fake.writes
    assert _env(fake.deployment("fp-rtdl-core", "archive-writer"))["REQUIRED_PLATFORM_RUN_ID"] == next_run


def test_apply_restores_replicas_that_were_scaled_away(full):
    fake = FakeCluster()
    k8s.apply(full, PINS, pack_ids=["obs_gov"], **_fakes(fake))
    fake.cluster().apps.patch_namespaced_deployment(
        "environment-conformance", "fp-obs-gov", {"spec": {"replicas": 0}}, _content_type=k8s.MERGE_PATCH
    )
    assert k8s.apply(full, PINS, pack_ids=["obs_gov"], **_fakes(fake))["fp-obs-gov/environment-conformance"] == (
        "patched"
    )
    assert fake.deployment("fp-obs-gov", "environment-conformance")["spec"]["replicas"] == 1


def test_apply_surfaces_errors_other_than_404(full):
    with pytest.raises(ApiException) as e:
        k8s.apply(full, PINS, pack_ids=["control_ingress"], **_fakes(error=403))
    assert e.value.status == 403


def test_apply_rejects_unknown_pack(full):
    with pytest.raises(KeyError, match="unknown pack"):
        k8s.apply(full, PINS, pack_ids=["no_such_pack"], **_fakes())

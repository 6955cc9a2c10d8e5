"""dev_full runs Dagster on Kubernetes: the instance loads K8sRunLauncher, and each one-shot job's pod (built
through PipesK8sClient's own pod builder) runs the run's digest-pinned image under the ServiceAccount whose IRSA
role Terraform grants that job's writer boundary."""

import json
import re
from pathlib import Path

import pytest
import yaml
from dagster_k8s import K8sRunLauncher
from dagster_k8s.pipes import build_pod_body

from fp_platform.handles import AWS_ACCOUNT_ENV_VAR, handles
from fp_platform.resources import ONE_SHOT_JOBS, k8s_job_params, pipes_client, role_service_account_name

REPO = Path(__file__).resolve().parents[2]
IMAGE = "123456789012.dkr.ecr.eu-west-2.amazonaws.com/fraud-platform-dev-full-platform@sha256:" + "b" * 64
ENV = {"FP_PROFILE": "dev_full"}
RUN = "platform_20250101T000000Z"


@pytest.fixture(scope="module")
def full():
    return handles("dev_full")


def test_the_dev_full_instance_loads_the_k8s_run_launcher_with_a_valid_config(full):
    from dagster._config import process_config

    instance = yaml.safe_load((REPO / full.get("DAGSTER_INSTANCE_YAML")).read_text())
    launcher = instance["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    result = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert result.success, result.errors
    assert launcher["config"]["job_namespace"] == full.get("EKS_NAMESPACE_DAGSTER")
    assert launcher["config"]["dagster_home"] == full.get("DAGSTER_HOME_DIR")
    assert launcher["config"]["service_account_name"] == role_service_account_name("ROLE_DAGSTER_ORCHESTRATOR")
    broken = {**launcher["config"], "job_namespace": 7}  # the control: the schema does refuse a bad value
    assert not process_config(K8sRunLauncher.config_type(), broken).success


def test_dev_full_chooses_the_k8s_pipes_client(full):
    assert type(pipes_client(full)).__name__ == "PipesK8sClient"


@pytest.mark.parametrize("module,job", [(m, j or "train") for m, j in ONE_SHOT_JOBS])
def test_each_one_shot_job_pod_runs_the_pinned_image_under_its_irsa_service_account(full, module, job, monkeypatch):
    monkeypatch.setenv(AWS_ACCOUNT_ENV_VAR, "123456789012")  # the orchestrator's: the pod renders the same buckets
    params = k8s_job_params(full, module, job, ["python", "-m", module, job], ENV, IMAGE, RUN)
    pod = build_pod_body(
        "fp-job", params["image"], params["command"], params["env"], params["base_pod_meta"], params["base_pod_spec"]
    )
    container = pod.spec.containers[0]
    assert container.image == IMAGE and container.command == ["python", "-m", module, job]
    env = {(e.name, e.value) for e in container.env}
    assert {("FP_PROFILE", "dev_full"), (AWS_ACCOUNT_ENV_VAR, "123456789012")} <= env
    assert pod.metadata.labels["fp.platform/run"] == RUN and pod.metadata.labels["fp.platform/job"] == job
    assert container.security_context.read_only_root_filesystem and pod.spec.security_context.run_as_non_root
    # Terraform's runtime stack trusts exactly this ServiceAccount in this namespace for the job's role
    irsa = json.loads((REPO / "infra/terraform/dev_full/runtime/handles.auto.tfvars.json").read_text())["irsa"]
    trusted = {(v["namespace"], v["service_account"], v["role_name"]) for v in irsa.values()}
    role = ONE_SHOT_JOBS.get((module, job)) or ONE_SHOT_JOBS[(module, None)]
    assert (params["namespace"], pod.spec.service_account_name, full.get(role.role)) in trusted


def test_a_pod_without_a_digest_pinned_image_is_refused(full):
    with pytest.raises(ValueError, match="not pinned by digest"):
        k8s_job_params(full, "fp_platform.control.jobs", "sr", ["python"], ENV, IMAGE.split("@")[0] + ":git-abc", RUN)
    with pytest.raises(ValueError, match="no cloud runner"):
        k8s_job_params(full, "fp_platform.nowhere.jobs", "x", ["python"], ENV, IMAGE, RUN)


# dagster-k8s's CoreV1Api calls around a Pipes pod → (resource, verb) they need
PIPES_CALLS = {
    "create_namespaced_pod": ("pods", "create"),
    "read_namespaced_pod": ("pods", "get"),
    "list_namespaced_pod": ("pods", "list"),
    "delete_namespaced_pod": ("pods", "delete"),
    "read_namespaced_pod_log": ("pods/log", "get"),
    "list_namespaced_event": ("events", "list"),
}


def test_the_orchestrator_may_run_the_pipes_pods_in_every_job_namespace(full):
    """Every CoreV1Api call dagster-k8s's Pipes client and its pod waiter make (read from the installed
    library) is granted to the orchestrator's ServiceAccount in each one-shot job namespace."""
    import dagster_k8s

    from fp_platform.operate import k8s

    source = "".join((Path(dagster_k8s.__file__).parent / f).read_text() for f in ("pipes.py", "client.py"))
    calls = set(re.findall(r"core_api\.([a-z_]+)\(", source))
    assert calls and calls <= set(PIPES_CALLS), f"dagster-k8s calls {calls - set(PIPES_CALLS)}: map and grant them"
    (docs,) = k8s.rbac_files(full).values()
    rules = {d["metadata"]["name"]: d["rules"] for d in docs if d["kind"] == "ClusterRole"}
    sa = {"kind": "ServiceAccount", "name": "dagster-orchestrator", "namespace": full.get("EKS_NAMESPACE_DAGSTER")}
    for ns in {full.get(j.namespace_key) for j in ONE_SHOT_JOBS.values()}:
        bound = [d["roleRef"]["name"] for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["namespace"] == ns]
        assert all(sa in d["subjects"] for d in docs if d["kind"] == "RoleBinding")
        granted = {(r, v) for name in bound for rule in rules[name] for r in rule["resources"] for v in rule["verbs"]}
        assert {PIPES_CALLS[c] for c in calls} <= granted, ns

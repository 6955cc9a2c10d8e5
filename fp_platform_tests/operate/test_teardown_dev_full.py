"""P17 on dev_full against moto (AWS) and the in-memory Kubernetes API double (`k8s_double`, not a real
cluster): the run's Deployments go to zero replicas and its job pods are deleted; the residual scan covers EKS
node groups, MSK, Aurora and SageMaker endpoints by tag, leaves the pinned always-on set (the cluster, node group,
bus and database that host the orchestrator) out of the verdict, and names a leftover SageMaker endpoint."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from fp_platform.contracts.gates import judge
from fp_platform.handles import Handles
from fp_platform.operate import gates, k8s_supervisor, supervisor, teardown
from fp_platform.substrate import residuals
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform_tests.infra.terraform import REPO
from fp_platform_tests.operate.cloud import ACCOUNT
from fp_platform_tests.operate.k8s_double import FakeCluster
from fp_platform_tests.operate.test_k8s_supervisor import NEXT, RUN, _all_ready, _pin

pytestmark = pytest.mark.unit

ROLE = f"arn:aws:iam::{ACCOUNT}:role/fixture"


def _tags(h: Handles) -> dict[str, str]:
    return dict(str(h.get(k)).split("=", 1) for k in ("TAG_PROJECT", "TAG_ENV"))


def _seed_runtime(h: Handles) -> None:
    """What dev_full's streaming, runtime and data_ml stacks leave between runs (the always-on set), tagged."""
    tags = _tags(h)
    by_kind = {e["kind"]: e["name"] for e in h.get("TEARDOWN_ALWAYS_ON")}
    eks = residuals.aws_client(h, "eks")
    eks.create_cluster(name=by_kind["eks:cluster"], roleArn=ROLE, resourcesVpcConfig={"subnetIds": []}, tags=tags)
    _nodegroup(h, by_kind["eks:nodegroup"])
    residuals.aws_client(h, "kafka").create_cluster_v2(
        ClusterName=by_kind["kafka:cluster"], Serverless={"VpcConfigs": [{"SubnetIds": ["subnet-1"]}]}, Tags=tags
    )
    residuals.aws_client(h, "rds").create_db_cluster(
        DBClusterIdentifier=by_kind["rds:cluster"],
        Engine="aurora-postgresql",
        MasterUsername="fp_admin",
        MasterUserPassword="not-a-real-password",
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )
    for i in (0, 1):  # Aurora Serverless v2's writer and reader: instances of the always-on cluster, tagged too
        residuals.aws_client(h, "rds").create_db_instance(
            DBInstanceIdentifier=f"{by_kind['rds:cluster']}-{i}",
            DBClusterIdentifier=by_kind["rds:cluster"],
            DBInstanceClass="db.serverless",
            Engine="aurora-postgresql",
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )


def _nodegroup(h: Handles, name: str) -> None:
    cluster = next(e["name"] for e in h.get("TEARDOWN_ALWAYS_ON") if e["kind"] == "eks:cluster")
    residuals.aws_client(h, "eks").create_nodegroup(
        clusterName=cluster,
        nodegroupName=name,
        nodeRole=ROLE,
        subnets=["subnet-1"],
        scalingConfig={"minSize": 0, "maxSize": 3, "desiredSize": 2},
        tags=_tags(h),
    )


def _endpoint(h: Handles, name: str = "fraud-platform-dev-full-scorer") -> str:
    """A SageMaker endpoint P15's shadow scoring left behind."""
    sm = residuals.aws_client(h, "sagemaker")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "platform@sha256:" + "ab" * 32})
    variant = {"VariantName": "v", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    tags = [{"Key": k, "Value": v} for k, v in _tags(h).items()]
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name, Tags=tags)
    return name


def _job_pod(fake: FakeCluster, ns: str, run_id: str) -> None:
    """A one-shot job pod of the run that outlived its step (labelled as resources.k8s_job_params labels it)."""
    labels = {"fp.platform/job": "wsp", "fp.platform/run": run_id}
    body = {
        "metadata": {"name": f"wsp-{run_id[9:17]}", "labels": labels},
        "spec": {"containers": [{"name": "m", "image": "platform@sha256:" + "ab" * 32}]},
    }
    fake.cluster().core.create_namespaced_pod(ns, body)


def _verdicts(facts: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    return {r.name: (r.passed, r.detail) for r in judge(gates.TEARDOWN, facts)}


def _no_db() -> Any:
    raise AssertionError("dev_full's teardown needs no database connection")


@pytest.fixture
def live_run(dev_full: Handles, monkeypatch) -> FakeCluster:
    """A dev_full run in flight: its packs applied and available on the (fake) cluster, a job pod left over, the
    runtime stacks' always-on resources in (moto) AWS, and one evidence file to read back."""
    fake = FakeCluster()
    monkeypatch.setattr(k8s_supervisor, "connect", fake.cluster)
    monkeypatch.setattr(teardown, "SETTLE_S", 0)  # the double deletes at once: one scan is the verdict
    _pin(dev_full, RUN)
    supervisor.reconcile(dev_full, None, RUN)
    _all_ready(dev_full, fake)
    _job_pod(fake, dev_full.get("EKS_NAMESPACE_DAGSTER"), RUN)
    _seed_runtime(dev_full)
    return fake


def test_teardown_scales_the_packs_to_zero_and_a_leftover_endpoint_fails_the_scan(dev_full, live_run):
    h, fake = dev_full, live_run
    _job_pod(fake, h.get("EKS_NAMESPACE_DAGSTER"), NEXT)  # the next run's job: not this teardown's to delete
    endpoint = _endpoint(h)
    writer = run_evidence(h, RUN)
    facts = teardown.teardown_facts(h, writer, _no_db, destroy=None)
    v = _verdicts(facts)
    assert (
        not v["no_cost_bearing_residuals"][0] and f"sagemaker:endpoint {endpoint}" in v["no_cost_bearing_residuals"][1]
    )
    assert v["daemons_stopped"][0], v["daemons_stopped"]
    assert v["demo_stack_destroyed"][0] and v["demo_credentials_removed"][0]  # no per-run stack on dev_full
    assert v["evidence_readable"][0], v["evidence_readable"]
    assert len(facts["daemons"]["stopped"]) == 11
    assert facts["daemons"]["deleted_pods"] == [f"{h.get('EKS_NAMESPACE_DAGSTER')}/wsp-20250101"]
    assert all(d["spec"]["replicas"] == 0 for (kind, *_), d in fake.objects.items() if kind == "namespaced_deployment")
    left_pods = [k for k in fake.objects if k[0] == "namespaced_pod"]
    assert left_pods == [("namespaced_pod", h.get("EKS_NAMESPACE_DAGSTER"), "wsp-20250102")]
    always_on = {(r["kind"], r["ident"].rsplit("/", 1)[-1]) for r in facts["residuals"]["always_on"]}
    aurora = next(e["name"] for e in h.get("TEARDOWN_ALWAYS_ON") if e["kind"] == "rds:cluster")
    instances = {("rds_instance", f"{aurora}-{i}") for i in (0, 1)}  # billed with their always-on cluster
    assert always_on == {(e["kind"], e["name"]) for e in h.get("TEARDOWN_ALWAYS_ON")} | instances
    assert teardown.proof_doc(facts, {})["present"]["sagemaker_endpoint"] is True

    residuals.aws_client(h, "sagemaker").delete_endpoint(EndpointName=endpoint)
    facts = teardown.teardown_facts(h, writer, _no_db, destroy=None)
    assert all(passed for passed, _ in _verdicts(facts).values()), _verdicts(facts)
    assert teardown.proof_doc(facts, {})["present"]["sagemaker_endpoint"] is False


def test_a_node_group_outside_the_always_on_set_is_a_residual(dev_full, live_run):
    _nodegroup(dev_full, "gpu-left-running")
    scan = teardown.cloud_scan(dev_full, [])
    assert [(r["kind"], r["ident"]) for r in scan["found"]] == [
        ("eks:nodegroup", "fraud-platform-dev-full/gpu-left-running")
    ]
    assert scan["found"][0]["detail"] == "desired 2"


def test_a_run_workload_that_survives_fails_the_daemons_gate(dev_full, live_run, monkeypatch):
    """A Deployment that could not be scaled (its down fails) is still seen by the outside check."""
    monkeypatch.setattr(k8s_supervisor, "down", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("forbidden")))
    facts = teardown.teardown_facts(dev_full, run_evidence(dev_full, RUN), _no_db, destroy=None)
    passed, detail = _verdicts(facts)["daemons_stopped"]
    assert not passed and "k8s_deployment fp-rtdl-core/decision-processor" in detail and "forbidden" in detail


def test_the_always_on_set_names_what_terraform_creates():
    """TEARDOWN_ALWAYS_ON repeats names infra/handles pins for Terraform (the runtime must not read those)."""
    from fp_platform.handles import handles

    pins = yaml.safe_load((REPO / "infra" / "handles" / "dev_full.yaml").read_text())["handles"]
    names = {e["kind"]: e["name"] for e in handles("dev_full").get("TEARDOWN_ALWAYS_ON")}
    assert names["eks:cluster"] == pins["EKS_CLUSTER_NAME"]
    assert names["kafka:cluster"] == pins["MSK_CLUSTER_NAME"] and names["rds:cluster"] == pins["RDS_CLUSTER_ID"]
    eks_tf = (REPO / "infra" / "terraform" / "dev_full" / "runtime" / "eks.tf").read_text()
    assert 'node_group_name = "${local.name_prefix}-default"' in eks_tf
    assert names["eks:nodegroup"] == names["eks:cluster"] + "-default"  # name_prefix is the cluster's name
    assert handles("dev_min").get("TEARDOWN_ALWAYS_ON") == []


def test_p16_judges_dev_full_workloads_by_its_own_scan_before_p17_and_fails_closed_without_it(
    dev_full, live_run, monkeypatch
):
    """P16 comes before P17 (spec P17 entry gate): P16's asset scans what still serves the run with P17's probe
    (planes never import operate, so the verdict reads the scan from evidence). It fails while the run's
    Deployments or job pods serve it, fails closed without a scan or when the scan could not look, and passes
    once the verification run has taken the Deployments over and the job pods are gone."""
    from fp_platform.obs_gov import verdict

    h, fake = dev_full, live_run
    writer = run_evidence(h, RUN)
    e = verdict.Evidence(h, writer)
    passed, detail = verdict._processes_gone(e)
    assert not passed and "nothing scanned" in detail
    with pytest.raises(residuals.ScanElsewhere):
        residuals.run_daemons_alive(h, RUN, [], [])

    def p16() -> tuple[bool, str]:
        writer.write_summary(
            h.get("VERDICT_WORKLOAD_SCAN_PATH_PATTERN"), teardown.workloads_at_verdict(h, writer), phase_id="P16"
        )
        return verdict._processes_gone(e)

    passed, detail = p16()  # the run's packs and its left-over job pod still serve it
    scan = writer.read(h.get("VERDICT_WORKLOAD_SCAN_PATH_PATTERN"))
    assert not passed and "12 still serving the run" in detail and "k8s_deployment fp-" in detail, detail
    assert {r["kind"] for r in scan["found"]} == {"k8s_deployment", "k8s_pod"}

    def refuse(*_a, **_k):
        raise RuntimeError("forbidden")

    with monkeypatch.context() as m:
        m.setattr(k8s_supervisor, "run_workloads", refuse)
        passed, detail = p16()  # could not look: no verdict from its silence
    assert not passed and "residual scan failed" in detail and "forbidden" in detail

    _pin(h, NEXT)
    supervisor.reconcile(h, None, NEXT)  # the verification run takes the Deployments over
    k8s_supervisor.delete_run_pods(h, RUN)  # Pipes deletes a job's pod when its step ends
    passed, detail = p16()
    assert passed and "0 still serving the run" in detail, detail
    assert all(
        d["metadata"]["labels"]["fp.platform/run"] == NEXT
        for (kind, *_), d in fake.objects.items()
        if kind == "namespaced_deployment"
    )


def test_p17_waits_for_terminating_pods_before_its_verdict(dev_full, live_run, monkeypatch):
    """On a real cluster a scale to zero or a pod delete returns before the pods are gone (up to their grace
    period): P17 scans again until nothing is left or SETTLE_S passes."""
    left = residuals.Residual("k8s_pod", "fp-dagster/wsp-20250101", "Running")
    scans = iter([[left], [left], []])
    monkeypatch.setattr(k8s_supervisor, "run_workloads", lambda *a, **k: next(scans))
    monkeypatch.setattr(teardown, "SETTLE_S", 5)
    monkeypatch.setattr(teardown, "SETTLE_POLL_S", 0.01)
    facts = teardown.teardown_facts(dev_full, run_evidence(dev_full, RUN), _no_db, destroy=None)
    assert _verdicts(facts)["daemons_stopped"][0] and next(scans, "done") == "done"
    monkeypatch.setattr(k8s_supervisor, "run_workloads", lambda *a, **k: [left])  # never goes: the last scan stands
    monkeypatch.setattr(teardown, "SETTLE_S", 0.05)
    facts = teardown.teardown_facts(dev_full, run_evidence(dev_full, RUN), _no_db, destroy=None)
    passed, detail = _verdicts(facts)["daemons_stopped"]
    assert not passed and "wsp-20250101" in detail

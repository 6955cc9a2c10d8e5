"""Dagster resources and the run partitioning shared by every plane's assets.

Resources are chosen per profile (FP_PROFILE): the same classes configured with that profile's
handles registry, the way Dagster's reference projects pick resources per deployment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import psycopg
from dagster import ConfigurableResource, DynamicPartitionsDefinition, PipesClient, PipesSubprocessClient, ResourceParam

from fp_platform.contracts.evidence import EvidenceWriter
from fp_platform.handles import AWS_ACCOUNT_ENV_VAR, Handles, current_profile, handles
from fp_platform.substrate import db, pod_hardening
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.substrate.secrets import get_secret

# How assets ask for the profile's Pipes client (`pipes_client`): the base class is not a resource type by
# itself, so the annotation says it is one.
Pipes = ResourceParam[PipesClient]

platform_run_partitions = DynamicPartitionsDefinition(name=handles().get("PLATFORM_RUN_PARTITIONS"))


class PlatformResource(ConfigurableResource):
    """Handles, object store, evidence and database of one profile."""

    profile: str

    @property
    def handles(self) -> Handles:
        return handles(self.profile)

    @cached_property
    def store(self) -> S3ObjectStore:
        return S3ObjectStore(self.handles)

    def evidence(self, platform_run_id: str) -> EvidenceWriter:
        return run_evidence(self.handles, platform_run_id, store=self.store)

    def connect(self) -> psycopg.Connection:
        return db.connect(self.handles)


class GateCatalog(ConfigurableResource):
    """The gate verdict files the run's closure requires (one per gated asset of P1..P10 in the Definitions), and
    how many assets and checks the Definitions hold (P(-1)'s in-process smoke). `definitions.py` fills it from the
    assets it holds (so an asset needs no import of the graph that contains it)."""

    spine_verdicts: list[str]
    assets: int = 0
    checks: int = 0


def pipes_client(h: Handles) -> PipesClient:
    """The one place a profile's one-shot job launcher is chosen (handle DAGSTER_PIPES_CLIENT): local
    subprocesses; ECS tasks on dev_min (messages back through CloudWatch, the tasks' awslogs driver);
    Kubernetes pods on dev_full. Every one runs the same `python -m <module> <job>` entrypoint."""
    kind = h.get("DAGSTER_PIPES_CLIENT")
    if kind == "PipesSubprocessClient":
        return PipesSubprocessClient()
    if kind == "PipesECSClient":
        import boto3
        from dagster_aws.pipes import PipesECSClient

        return PipesECSClient(client=boto3.client("ecs", region_name=h.get("AWS_REGION")))
    if kind == "PipesK8sClient":
        from dagster_k8s import PipesK8sClient

        return PipesK8sClient()
    raise ValueError(f"DAGSTER_PIPES_CLIENT={kind!r} in profile {h.profile} is not a Pipes client this platform runs")


@dataclass(frozen=True)
class OneShotJob:
    """Who runs a one-shot job in the cloud: its ECS task definition (dev_min; the task carries its role) and the
    IAM role its pod assumes through its ServiceAccount in `namespace_key` (dev_full, IRSA)."""

    ecs_task_family: str  # handle of the task definition family
    role: str  # handle of the writer boundary's IAM role
    namespace_key: str = "EKS_NAMESPACE_DAGSTER"


# (module, job) -> who runs it; a module's entry without a job covers its other jobs (infra/terraform/tfvars.py
# grants each role its writer boundary).
ONE_SHOT_JOBS = {
    ("fp_platform.world.jobs", "engine"): OneShotJob("TD_WORLD_ENGINE", "ROLE_ORACLE_JOB"),
    ("fp_platform.world.jobs", "seal"): OneShotJob("TD_ORACLE_SEED", "ROLE_ORACLE_JOB"),
    ("fp_platform.world.jobs", "stream-sort"): OneShotJob("TD_ORACLE_STREAM_SORT", "ROLE_ORACLE_JOB"),
    ("fp_platform.world.jobs", "check"): OneShotJob("TD_ORACLE_CHECKER", "ROLE_ORACLE_JOB"),
    ("fp_platform.control.jobs", "sr"): OneShotJob("TD_SR", "ROLE_SR_TASK"),
    ("fp_platform.control.jobs", "wsp"): OneShotJob("TD_WSP", "ROLE_WSP_TASK"),
    ("fp_platform.obs_gov.jobs", None): OneShotJob("TD_REPORTER", "ROLE_REPORTER_SINGLE_WRITER"),
    ("fp_platform.learning.jobs", None): OneShotJob("TD_LEARNING_JOB", "ROLE_LEARNING_JOB", "EKS_NAMESPACE_LEARNING"),
}


def one_shot_job(module: str, job: str) -> OneShotJob:
    found = ONE_SHOT_JOBS.get((module, job)) or ONE_SHOT_JOBS.get((module, None))
    if found is None:
        raise ValueError(f"no cloud runner is declared for {module} {job} (resources.ONE_SHOT_JOBS)")
    return found


def ecs_task_params(h: Handles, module: str, job: str, command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """`ecs.run_task` parameters of a one-shot job: its task family, Fargate in the demo's public subnets with
    the app security group (no NAT: a public IP reaches ECR and the APIs), the command and env overridden."""
    family = one_shot_job(module, job).ecs_task_family
    return {
        "cluster": h.get("ECS_CLUSTER_NAME"),
        "taskDefinition": h.get(family),
        "launchType": h.get("ECS_LAUNCH_TYPE"),
        "count": 1,
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": get_secret(h, "SSM_SUBNET_IDS_PUBLIC_PATH").split(","),
                "securityGroups": [get_secret(h, "SSM_SECURITY_GROUP_ID_APP_PATH")],
                "assignPublicIp": h.get("ECS_ASSIGN_PUBLIC_IP"),
            }
        },
        "overrides": {
            "containerOverrides": [
                {
                    "name": h.get("ECS_CONTAINER_NAME"),
                    "command": command,
                    "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
                }
            ]
        },
    }


K8S_JOB_LABEL = "fp.platform/job"  # on every one-shot job pod: its job (k8s_objects' job NetworkPolicies select it)
K8S_RUN_LABEL = "fp.platform/run"  # on every pod and Deployment of a run: P17 finds the run's workloads by it


def role_service_account_name(role_key: str) -> str:
    """ROLE_RTDL_CORE → `rtdl-core`: a pod's ServiceAccount is named after its IAM role's handle, so the
    manifests, the one-shot jobs' pods and Terraform's IRSA trust all name it the same."""
    return role_key.removeprefix("ROLE_").lower().replace("_", "-")


def _account_env() -> dict[str, str]:
    """The orchestrator's FP_AWS_ACCOUNT_ID, handed on so the job renders the same suffixed bucket names (D10)."""
    account = os.environ.get(AWS_ACCOUNT_ENV_VAR)
    return {AWS_ACCOUNT_ENV_VAR: account} if account else {}


def k8s_job_params(
    h: Handles,
    module: str,
    job: str,
    command: list[str],
    env: dict[str, str],
    image_ref: str,
    platform_run_id: str,
) -> dict[str, Any]:
    """`PipesK8sClient.run` arguments of a one-shot job on dev_full: the run's image pinned by digest, in its
    namespace under the ServiceAccount whose IRSA role is the job's writer boundary, with the hardened pod
    settings of the packs' Deployments (non-root, read-only root, emptyDir scratch), labelled with its job (its
    NetworkPolicies select that) and its run (P17 deletes what is left of the run by it)."""
    if "@sha256:" not in image_ref:
        raise ValueError(f"image {image_ref!r} is not pinned by digest (P(-1) records repo@sha256:… in run.json)")
    spec = one_shot_job(module, job)
    volumes, mounts, state_env = pod_hardening.writable_volumes()
    return {
        "image": image_ref,
        "command": command,
        "namespace": h.get(spec.namespace_key),
        "env": {**env, **_account_env(), **{e["name"]: e["value"] for e in state_env}},
        "base_pod_meta": {
            "labels": {
                K8S_JOB_LABEL: job,
                "fp.platform/module": module.rsplit(".", 2)[-2],
                K8S_RUN_LABEL: platform_run_id,
            }
        },
        "base_pod_spec": {
            "serviceAccountName": role_service_account_name(spec.role),
            "securityContext": pod_hardening.pod_security(),
            "containers": [{"securityContext": pod_hardening.container_security(), "volumeMounts": mounts}],
            "volumes": volumes,
        },
    }


def resources_for_profile(profile: str | None = None) -> dict[str, object]:
    """The platform resource and the profile's Pipes client (`pipes_client`)."""
    h = handles(profile or current_profile())
    return {"platform": PlatformResource(profile=h.profile), "pipes": pipes_client(h)}

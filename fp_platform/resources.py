"""Dagster resources and the run partitioning shared by every plane's assets.

Resources are chosen per profile (FP_PROFILE): the same classes configured with that profile's
handles registry, the way Dagster's reference projects pick resources per deployment.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import psycopg
from dagster import ConfigurableResource, DynamicPartitionsDefinition, PipesClient, PipesSubprocessClient, ResourceParam

from fp_platform.contracts.evidence import EvidenceWriter
from fp_platform.handles import Handles, current_profile, handles
from fp_platform.substrate import db
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


# (module, job) -> the ECS task definition family (handle) that runs it, with the role of its writer boundary
# (infra/terraform/tfvars.py JOBS); a module's entry without a job covers its other jobs.
ECS_TASK_FAMILY = {
    ("fp_platform.world.jobs", "engine"): "TD_WORLD_ENGINE",
    ("fp_platform.world.jobs", "seal"): "TD_ORACLE_SEED",
    ("fp_platform.world.jobs", "stream-sort"): "TD_ORACLE_STREAM_SORT",
    ("fp_platform.world.jobs", "check"): "TD_ORACLE_CHECKER",
    ("fp_platform.control.jobs", "sr"): "TD_SR",
    ("fp_platform.control.jobs", "wsp"): "TD_WSP",
    ("fp_platform.obs_gov.jobs", None): "TD_REPORTER",
    ("fp_platform.learning.jobs", None): "TD_LEARNING_JOB",
}


def ecs_task_params(h: Handles, module: str, job: str, command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """`ecs.run_task` parameters of a one-shot job: its task family, Fargate in the demo's public subnets with
    the app security group (no NAT: a public IP reaches ECR and the APIs), the command and env overridden."""
    family = ECS_TASK_FAMILY.get((module, job)) or ECS_TASK_FAMILY.get((module, None))
    if family is None:
        raise ValueError(f"no ECS task definition runs {module} {job}")
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


def resources_for_profile(profile: str | None = None) -> dict[str, object]:
    """The platform resource and the profile's Pipes client (`pipes_client`)."""
    h = handles(profile or current_profile())
    return {"platform": PlatformResource(profile=h.profile), "pipes": pipes_client(h)}

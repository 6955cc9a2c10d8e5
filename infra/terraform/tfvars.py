"""Render each dev_min and dev_full stack's `handles.auto.tfvars.json` from the handles registry (one source of truth).

dev_full (its five stacks, `render_dev_full`) reads `fp_platform/handles` (dev_full) and `infra/handles/dev_full.yaml`
the same way; the section below `FULL_PROFILE` is its part.

Names come from `fp_platform/handles` (what the runtime reads, `dev_min` overlaid on `base`) and from
`infra/handles/dev_min.yaml` (the spec pins only the cloud stacks read); the ECS services are the spine
packs' workers (`fp_platform.operate.packs`), so a worker added there gets its service here. Values only
the operator knows (account id, `expires_at`, budget e-mails, image digest, database password, run id)
are Terraform variables without a default and never rendered. It lives outside `fp_platform` because the
runtime must not read the cloud-only pins (fp_platform_tests/handles/test_registry.py).

    python infra/terraform/tfvars.py          # rewrite the committed files
    python infra/terraform/tfvars.py --check  # exit 1 if they differ from the rendering
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from fp_platform.handles import Handles, load
from fp_platform.operate import k8s_objects
from fp_platform.operate.packs import SPINE_PACKS
from fp_platform.resources import role_service_account_name

PROFILE = "dev_min"
TERRAFORM_DIR = Path(__file__).resolve().parent
INFRA_HANDLES = TERRAFORM_DIR.parent / "handles" / f"{PROFILE}.yaml"
TFVARS_NAME = "handles.auto.tfvars.json"
CONFLUENT_TFVARS_NAME = "confluent.auto.tfvars.json"  # read only by demo/confluent.tf (see D9 in docs/decisions.md)

# Data buckets by their short name in Terraform → runtime handle; lifecycle handles by the same short name.
BUCKETS = {
    "oracle": "S3_ORACLE_BUCKET",
    "archive": "S3_ARCHIVE_BUCKET",
    "quarantine": "S3_QUARANTINE_BUCKET",
    "evidence": "S3_EVIDENCE_BUCKET",
    "artifacts": "S3_ARTIFACTS_BUCKET",
}
EXPIRY = {
    "oracle": "RETENTION_ORACLE_SOURCE_DAYS",
    "archive": "RETENTION_ARCHIVE_DAYS",
    "quarantine": "RETENTION_QUARANTINE_DAYS",
    "evidence": "RETENTION_EVIDENCE_DAYS",
    "artifacts": "RETENTION_TRAINING_ARTIFACTS_DAYS",
}
TRANSITIONS = {  # (bucket, storage class) → handle; a null handle means no transition
    ("oracle", "STANDARD_IA"): "ORACLE_TRANSITION_TO_STANDARD_IA_DAYS",
    ("oracle", "GLACIER_IR"): "ORACLE_TRANSITION_TO_GLACIER_IR_DAYS",
    ("archive", "STANDARD_IA"): "ARCHIVE_TRANSITION_TO_STANDARD_IA_DAYS",
    ("archive", "GLACIER_IR"): "ARCHIVE_TRANSITION_TO_GLACIER_IR_DAYS",
    ("evidence", "STANDARD_IA"): "EVIDENCE_TRANSITION_TO_STANDARD_IA_DAYS",
    ("evidence", "GLACIER_IR"): "EVIDENCE_TRANSITION_TO_GLACIER_IR_DAYS",
}
# IAM roles (run-process App. C) by their short name in Terraform → handle.
ROLES = {
    "terraform_apply": "ROLE_TERRAFORM_APPLY",
    "ecs_task_execution": "ROLE_ECS_TASK_EXECUTION",
    "dagster_orchestrator": "ROLE_DAGSTER_ORCHESTRATOR",
    "oracle_job": "ROLE_ORACLE_JOB",
    "sr_task": "ROLE_SR_TASK",
    "wsp_task": "ROLE_WSP_TASK",
    "ig_service": "ROLE_IG_SERVICE",
    "rtdl_core": "ROLE_RTDL_CORE",
    "decision_lane": "ROLE_DECISION_LANE",
    "case_labels": "ROLE_CASE_LABELS",
    "reporter_single_writer": "ROLE_REPORTER_SINGLE_WRITER",
    "obs_gov_conformance": "ROLE_OBS_GOV_CONFORMANCE",
    "learning_job": "ROLE_LEARNING_JOB",
    "db_migrations": "ROLE_DB_MIGRATIONS",
    "ecr_push": "ROLE_ECR_PUSH",
}
PACK_ROLE = {  # a pack's workers run under its writer-boundary role (App. C.3)
    "PACK_ID_CONTROL_INGRESS": "ig_service",
    "PACK_ID_RTDL_CORE": "rtdl_core",
    "PACK_ID_RTDL_DECISION_LANE": "decision_lane",
    "PACK_ID_CASE_LABELS": "case_labels",
    "PACK_ID_OBS_GOV": "obs_gov_conformance",
}
# How a one-shot task starts. The image has no ENTRYPOINT, so a task's command is its whole command line: the jobs
# Dagster Pipes launches carry none (each launch's override, `python -m <module> <job> ...` from fp_platform/checks.py,
# is the command). The migrations task is started by the operator with no override: it carries the command that
# applies the schema everywhere (locally `stack up` calls the same db.bootstrap), as the RDS master.
PIPES_COMMAND = None
DB_MIGRATE_COMMAND = ["fp-platform", "db", "migrate"]
JOBS = {  # one-shot ECS task definitions → (role, command)
    "TD_ORACLE_SEED": ("oracle_job", PIPES_COMMAND),
    "TD_ORACLE_STREAM_SORT": ("oracle_job", PIPES_COMMAND),
    "TD_ORACLE_CHECKER": ("oracle_job", PIPES_COMMAND),
    "TD_WORLD_ENGINE": ("oracle_job", PIPES_COMMAND),
    "TD_SR": ("sr_task", PIPES_COMMAND),
    "TD_WSP": ("wsp_task", PIPES_COMMAND),
    "TD_REPORTER": ("reporter_single_writer", PIPES_COMMAND),
    "TD_DB_MIGRATIONS": ("db_migrations", DB_MIGRATE_COMMAND),
    "TD_LEARNING_JOB": ("learning_job", PIPES_COMMAND),
}
SSM_PATHS = {
    "confluent_bootstrap": "SSM_CONFLUENT_BOOTSTRAP_PATH",
    "confluent_api_key": "SSM_CONFLUENT_API_KEY_PATH",
    "confluent_api_secret": "SSM_CONFLUENT_API_SECRET_PATH",
    "db_user": "SSM_DB_USER_PATH",
    "db_password": "SSM_DB_PASSWORD_PATH",
    "db_endpoint": "SSM_DB_ENDPOINT_PATH",
    "db_app_user": "SSM_DB_APP_USER_PATH",
    "db_app_password": "SSM_DB_APP_PASSWORD_PATH",
    "ig_api_key": "SSM_IG_API_KEY_PATH",
    "vpc_id": "SSM_VPC_ID_PATH",
    "subnet_ids_public": "SSM_SUBNET_IDS_PUBLIC_PATH",
    "sg_app_id": "SSM_SECURITY_GROUP_ID_APP_PATH",
    "sg_db_id": "SSM_SECURITY_GROUP_ID_DB_PATH",
}


class Registry:
    """The runtime registry and the cloud-only pins as one read-only lookup (the two are disjoint)."""

    def __init__(self, h: Handles, pins: dict[str, Any]) -> None:
        self.h, self.pins = h, pins

    def get(self, key: str) -> Any:
        if key in self.pins:
            if self.pins[key] is None:
                raise KeyError(f"{key} has no value in {INFRA_HANDLES.name}")
            return self.pins[key]
        return self.h.get(key)

    def optional(self, key: str) -> Any:
        return self.pins[key] if key in self.pins else self.h.values[key]

    def tag(self, key: str) -> tuple[str, str]:
        name, _, value = str(self.get(key)).partition("=")
        return name, value


def registry() -> Registry:
    doc = yaml.safe_load(INFRA_HANDLES.read_text())
    return Registry(load(PROFILE, rendered=False), dict(doc["handles"]))  # bucket stems: Terraform suffixes them


def _common(r: Registry) -> dict[str, Any]:
    tags = dict(r.tag(k) for k in ("TAG_PROJECT", "TAG_ENV", "TAG_OWNER"))
    return {
        "project_slug": r.get("PROJECT_SLUG"),
        "env": r.h.profile,
        "aws_region": r.get("AWS_REGION"),
        "tags": tags,
        "expires_at_tag_key": r.tag("TAG_EXPIRES_AT")[0],
    }


def _lifecycle(r: Registry) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    for bucket, key in EXPIRY.items():
        transitions = {cls: r.optional(h) for (b, cls), h in TRANSITIONS.items() if b == bucket}
        rules[bucket] = {
            "expiry_days": r.optional(key),
            "transitions": {cls: days for cls, days in transitions.items() if days is not None},
        }
    return rules


def core(r: Registry) -> dict[str, Any]:
    prefix = r.get("CLOUDWATCH_LOG_GROUP_PREFIX")
    return _common(r) | {
        "tf_state_bucket_stem": r.get("TF_STATE_BUCKET"),
        "tf_lock_table": r.get("TF_LOCK_TABLE"),
        "tf_state_keys": [r.get("TF_STATE_KEY_CORE"), r.get("TF_STATE_KEY_DEMO")],
        "bucket_stems": {b: r.get(k) for b, k in BUCKETS.items()},
        "bucket_lifecycle": _lifecycle(r),
        "abort_incomplete_multipart_days": r.get("S3_ABORT_INCOMPLETE_MULTIPART_DAYS"),
        "ecr_repo_name": r.get("ECR_REPO_NAME"),
        "github_push_ref": r.get("GITHUB_OIDC_PUSH_REF"),
        "role_names": {short: r.get(k) for short, k in ROLES.items()},
        "ssm_prefix": r.get("SSM_PARAMETER_PREFIX"),
        "ssm_paths": {short: r.get(k) for short, k in SSM_PATHS.items()},
        "ecs_cluster_name": r.get("ECS_CLUSTER_NAME"),
        "log_groups": {g: f"{prefix}{g}" for g in r.get("CLOUDWATCH_LOG_GROUPS")},
        "log_retention_days": r.get("RETENTION_CLOUDWATCH_LOGS_DAYS"),
        "budget": {
            "name": r.get("AWS_BUDGET_NAME"),
            "limit_amount": r.get("AWS_BUDGET_LIMIT_AMOUNT"),
            "currency": r.get("AWS_BUDGET_CURRENCY"),
            "alert_thresholds": r.get("AWS_BUDGET_ALERT_THRESHOLDS"),
        },
    }


def _service_name(r: Registry, component: str) -> str:
    return r.h.pattern("ECS_SERVICE_NAME_PATTERN", component=component.replace("_", "-"))  # as the supervisor names it


def services(r: Registry) -> dict[str, Any]:
    """Every spine worker as one ECS service (one replica), plus the Dagster webserver and daemon."""
    h = r.h
    out: dict[str, Any] = {}
    for p in SPINE_PACKS:
        for w in p.workers:
            component = h.get(w.component_key)
            args = [a.format(component=component) for a in w.args]
            out[_service_name(r, component)] = {
                "role": PACK_ROLE[p.pack_key],
                "log_group": h.get(p.pack_key),
                "command": ["python", "-m", w.module, *args],
                "port": int(h.get("IG_PORT")) if w.ready_path_key else None,
                "discovery_name": "ingestion-gate" if w.ready_path_key else None,
                "health_path": h.get("IG_HEALTHCHECK_PATH") if w.ready_path_key else None,
            }
    workspace = "/app/workspace.yaml"
    port = int(h.get("DAGSTER_WEBSERVER_PORT"))
    out[r.get("SVC_DAGSTER_WEBSERVER")] = {
        "role": "dagster_orchestrator",
        "log_group": "dagster",
        "command": ["dagster-webserver", "-h", r.get("DAGSTER_WEBSERVER_HOST"), "-p", str(port), "-w", workspace],
        "port": port,
        "discovery_name": None,
        "health_path": "/server_info",  # the Dagster webserver's own liveness route
    }
    out[r.get("SVC_DAGSTER_DAEMON")] = {
        "role": "dagster_orchestrator",
        "log_group": "dagster",
        "command": ["dagster-daemon", "run", "-w", workspace],
        "port": None,
        "discovery_name": None,
        "health_path": None,
    }
    return out


def demo(r: Registry) -> dict[str, Any]:
    h = r.h
    return _common(r) | {
        "role_names": {short: r.get(k) for short, k in ROLES.items()},
        "ssm_paths": {short: r.get(k) for short, k in SSM_PATHS.items()},
        "log_group_prefix": r.get("CLOUDWATCH_LOG_GROUP_PREFIX"),
        "ecr_repo_name": r.get("ECR_REPO_NAME"),
        "ecs_cluster_name": r.get("ECS_CLUSTER_NAME"),
        "ecs_task_cpu": r.get("ECS_TASK_CPU"),
        "ecs_task_memory_mib": r.get("ECS_TASK_MEMORY_MIB"),
        "ecs_assign_public_ip": r.get("ECS_ASSIGN_PUBLIC_IP") == "ENABLED",
        "service_discovery_namespace": r.get("ECS_SERVICE_DISCOVERY_NAMESPACE"),
        "services": services(r),
        "jobs": {
            r.get(td): {"role": role, "log_group": "jobs", "command": command} for td, (role, command) in JOBS.items()
        },
        "container_env": {
            "FP_PROFILE": h.profile,
            "AWS_REGION": h.get("AWS_REGION"),
            "DAGSTER_HOME": h.get("DAGSTER_HOME_DIR"),
        },
        "run_id_env_key": h.get("REQUIRED_PLATFORM_RUN_ID_ENV_KEY"),
        "vpc_cidr_block": r.get("VPC_CIDR_BLOCK"),
        "public_subnet_cidr_blocks": r.get("SUBNET_CIDR_BLOCKS_PUBLIC"),
        "db": {
            "identifier": r.get("RDS_INSTANCE_ID"),
            "instance_class": r.get("RDS_INSTANCE_CLASS"),
            "engine_version": str(r.get("DB_ENGINE_VERSION")),
            "allocated_storage_gb": r.get("RDS_ALLOCATED_STORAGE_GB"),
            "name": h.get("DB_NAME"),
            "port": int(h.get("DB_PORT")),
            "username": r.get("RDS_MASTER_USERNAME"),
            "app_username": r.get("RDS_APP_USERNAME"),
        },
    }


def confluent(r: Registry) -> dict[str, Any]:
    """The Confluent module's inputs: the cluster pins and every topic of the registry."""
    topics = {
        t.name: {"partitions": t.partitions, "retention_ms": t.retention_ms} for t in sorted(r.h.topics(), key=str)
    }
    return {
        "confluent": {
            "environment_name": r.get("CONFLUENT_ENV_NAME"),
            "cluster_name": r.get("CONFLUENT_CLUSTER_NAME"),
            "cluster_type": r.get("CONFLUENT_CLUSTER_TYPE"),
            "cloud": r.get("CONFLUENT_CLUSTER_CLOUD"),
            "region": r.get("CONFLUENT_CLUSTER_REGION"),
            "service_account_name": r.get("CONFLUENT_SERVICE_ACCOUNT_NAME"),
            "cleanup_policy": r.get("KAFKA_TOPIC_CLEANUP_POLICY"),
            "consumer_group_prefix": f"fp.{r.h.profile}.",
            "topics": topics,
        }
    }


def render(r: Registry | None = None) -> dict[Path, str]:
    """Path (under infra/terraform) → file text, for every rendered tfvars file."""
    r = r or registry()
    docs = {
        Path(PROFILE) / "core" / TFVARS_NAME: core(r),
        Path(PROFILE) / "demo" / TFVARS_NAME: demo(r),
        Path(PROFILE) / "demo" / CONFLUENT_TFVARS_NAME: confluent(r),
    }
    return {path: json.dumps(doc, indent=2, sort_keys=True) + "\n" for path, doc in docs.items()}


# --- dev_full (spec DA-full §8.1): five stacks, each with its own rendered tfvars -------------------------------

FULL_PROFILE = "dev_full"
FULL_INFRA_HANDLES = TERRAFORM_DIR.parent / "handles" / f"{FULL_PROFILE}.yaml"
FULL_STACKS = ("core", "streaming", "runtime", "data_ml", "ops")
FULL_TRANSITIONS = TRANSITIONS | {  # dev_full pins no quarantine/artifacts transition (QUARANTINE_EXPIRY_ONLY)
    ("archive", "GLACIER_IR"): "ARCHIVE_TRANSITION_TO_GLACIER_IR_DAYS",
}
# Workload roles (IRSA) by short name → (role handle, namespace handle of the pods that assume it). The packs'
# roles and namespaces are the k8s manifests' (k8s_objects.PACK_ROLES); one-shot jobs launched by Dagster Pipes
# run in the Dagster namespace; each role is trusted by one ServiceAccount only, named as the manifests name it.
FULL_IRSA = {
    "dagster_orchestrator": ("ROLE_DAGSTER_ORCHESTRATOR", "EKS_NAMESPACE_DAGSTER"),
    "oracle_job": ("ROLE_ORACLE_JOB", "EKS_NAMESPACE_DAGSTER"),
    "sr_task": ("ROLE_SR_TASK", "EKS_NAMESPACE_DAGSTER"),
    "wsp_task": ("ROLE_WSP_TASK", "EKS_NAMESPACE_DAGSTER"),
    "reporter_single_writer": ("ROLE_REPORTER_SINGLE_WRITER", "EKS_NAMESPACE_DAGSTER"),
    "ig_service": ("ROLE_IG_SERVICE", "EKS_NAMESPACE_CONTROL_INGRESS"),
    "rtdl_core": ("ROLE_RTDL_CORE", "EKS_NAMESPACE_RTDL_CORE"),
    "decision_lane": ("ROLE_DECISION_LANE", "EKS_NAMESPACE_RTDL_DECISION_LANE"),
    "case_labels": ("ROLE_CASE_LABELS", "EKS_NAMESPACE_CASE_LABELS"),
    "obs_gov_conformance": ("ROLE_OBS_GOV_CONFORMANCE", "EKS_NAMESPACE_OBS_GOV"),  # the conformance worker
    "platform_base": ("ROLE_EKS_RUNTIME_PLATFORM_BASE", "EKS_NAMESPACE_OBS_GOV"),  # the OTel collector
    "learning_job": ("ROLE_LEARNING_JOB", "EKS_NAMESPACE_LEARNING"),
}
FULL_SSM_PATHS = {
    "msk_bootstrap_brokers": "SSM_MSK_BOOTSTRAP_BROKERS_PATH",
    "db_user": "SSM_DB_USER_PATH",
    "db_password": "SSM_DB_PASSWORD_PATH",
    "db_endpoint": "SSM_DB_ENDPOINT_PATH",
    "db_reader_endpoint": "SSM_DB_READER_ENDPOINT_PATH",
    "db_app_user": "SSM_DB_APP_USER_PATH",
    "db_app_password": "SSM_DB_APP_PASSWORD_PATH",
    "ig_api_key": "SSM_IG_API_KEY_PATH",
    "vpc_id": "SSM_VPC_ID_PATH",
    "subnet_ids_private": "SSM_SUBNET_IDS_PATH",
    "sg_app_id": "SSM_SECURITY_GROUP_ID_APP_PATH",
    "sg_db_id": "SSM_SECURITY_GROUP_ID_DB_PATH",
    "sagemaker_model_exec_role_arn": "SSM_SAGEMAKER_MODEL_EXEC_ROLE_ARN_PATH",
    "otel_collector_config": "OTEL_COLLECTOR_CONFIG_SSM_PATH",
}


def full_registry() -> Registry:
    doc = yaml.safe_load(FULL_INFRA_HANDLES.read_text())
    return Registry(load(FULL_PROFILE, rendered=False), dict(doc["handles"]))  # bucket stems: Terraform suffixes them


def _full_common(r: Registry) -> dict[str, Any]:
    """What every dev_full stack reads: names, tags, bucket stems (ARNs are derived, no remote-state read)."""
    return _common(r) | {
        "bucket_stems": {b: r.get(k) for b, k in BUCKETS.items()} | {"tfstate": r.get("TF_STATE_BUCKET")},
        "ssm_paths": {short: r.get(k) for short, k in FULL_SSM_PATHS.items()},
        "ecr_repo_name": r.get("ECR_REPO_NAME"),
        "eks_cluster_name": r.get("EKS_CLUSTER_NAME"),
        "msk_cluster_name": r.get("MSK_CLUSTER_NAME"),
    }


def _full_lifecycle(r: Registry) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    for bucket, key in EXPIRY.items():
        transitions = {cls: r.optional(h) for (b, cls), h in FULL_TRANSITIONS.items() if b == bucket}
        rules[bucket] = {
            "expiry_days": r.optional(key),
            "transitions": {cls: days for cls, days in transitions.items() if days is not None},
        }
    if r.get("QUARANTINE_EXPIRY_ONLY"):
        rules["quarantine"]["transitions"] = {}
    return rules


def full_core(r: Registry) -> dict[str, Any]:
    role_keys = ("ROLE_TERRAFORM_APPLY_DEV_FULL", "ROLE_TERRAFORM_APPLY")
    assert len({r.get(k) for k in role_keys}) == 1, "one operator role for dev_full"
    return _full_common(r) | {
        "tf_lock_table": r.get("TF_LOCK_TABLE"),
        "tf_state_keys": [r.get(f"TF_STATE_KEY_{s.upper()}") for s in FULL_STACKS],
        "bucket_lifecycle": _full_lifecycle(r),
        "abort_incomplete_multipart_days": r.get("S3_ABORT_INCOMPLETE_MULTIPART_DAYS"),
        "kms_key_alias": r.get("KMS_KEY_ALIAS"),
        "vpc_cidr_block": r.get("VPC_CIDR_BLOCK"),
        "private_subnet_cidr_blocks": r.get("SUBNET_CIDR_BLOCKS_PRIVATE"),
        "msk_iam_port": int(r.get("MSK_IAM_PORT")),
        "terraform_apply_role_name": r.get("ROLE_TERRAFORM_APPLY_DEV_FULL"),
        "ssm_prefix": r.get("SSM_PARAMETER_PREFIX"),
    }


def full_streaming(r: Registry) -> dict[str, Any]:
    return _full_common(r) | {
        "msk_auth_mode": r.get("MSK_AUTH_MODE"),
        "msk_cluster_mode": r.get("MSK_CLUSTER_MODE"),
        "msk_iam_port": int(r.get("MSK_IAM_PORT")),
    }


def full_runtime(r: Registry) -> dict[str, Any]:
    h = r.h
    for p in SPINE_PACKS:  # the manifests' ServiceAccounts are the ones the roles trust
        role = k8s_objects.PACK_ROLES[p.pack_key]
        (short,) = [s for s, (k, _) in FULL_IRSA.items() if k == role]
        assert FULL_IRSA[short][1] == "EKS_NAMESPACE_" + p.pack_key.removeprefix("PACK_ID_"), p.pack_key
    topics = sorted(t.name for t in h.topics())
    return _full_common(r) | {
        "kubernetes_version": str(r.get("EKS_KUBERNETES_VERSION")),
        "node_role_name": r.get("ROLE_EKS_NODEGROUP_DEV_FULL"),
        "node_instance_types": r.get("EKS_NODE_INSTANCE_TYPES"),
        "node_scaling": r.get("EKS_NODE_SCALING"),
        "node_disk_gb": r.get("EKS_NODE_DISK_GB"),
        "irsa": {
            short: {
                "role_name": r.get(role),
                "namespace": h.get(ns),
                "service_account": role_service_account_name(role),
            }
            for short, (role, ns) in FULL_IRSA.items()
        },
        "topics": topics,
        "consumer_group_prefix": f"fp.{h.profile}.",
        "sagemaker_endpoint_name": r.get("SAGEMAKER_ENDPOINT_NAME"),
        "sagemaker_execution_role_name": r.get("ROLE_SAGEMAKER_EXECUTION"),
        "iceberg_database": h.get("ICEBERG_NAMESPACE"),
        "log_group_prefix": r.get("CLOUDWATCH_LOG_GROUP_PREFIX"),
    }


def _artifacts_prefix(r: Registry, key: str) -> str:
    """The key prefix a bucket-backed URI handle names in the artifacts bucket (the handle says where, once)."""
    bucket = f"s3://{r.h.get('S3_ARTIFACTS_BUCKET')}/"
    uri = str(r.h.get(key))
    if not uri.startswith(bucket):
        raise ValueError(f"{key}={uri} is not in the artifacts bucket {bucket}")
    return uri.removeprefix(bucket)


def full_data_ml(r: Registry) -> dict[str, Any]:
    h = r.h
    low, _, high = str(r.get("AURORA_ACU_RANGE")).partition("-")
    return _full_common(r) | {
        "aurora": {
            "cluster_id": r.get("RDS_CLUSTER_ID"),
            "engine": h.get("DB_ENGINE"),
            "engine_major_version": str(r.get("DB_ENGINE_VERSION")),
            "min_acu": float(low),
            "max_acu": float(high),
            "instance_count": r.get("AURORA_INSTANCE_COUNT"),
            "database_name": h.get("DB_NAME"),
            "port": int(h.get("DB_PORT")),
            "master_username": r.get("AURORA_MASTER_USERNAME"),
            "backup_retention_days": r.get("AURORA_BACKUP_RETENTION_DAYS"),
        },
        "sagemaker_execution_role_name": r.get("ROLE_SAGEMAKER_EXECUTION"),
        "iceberg_database": h.get("ICEBERG_NAMESPACE"),
        "iceberg_warehouse_prefix": _artifacts_prefix(r, "ICEBERG_WAREHOUSE_URI"),
        "mlflow_artifact_prefix": _artifacts_prefix(r, "MLFLOW_ARTIFACT_ROOT"),
        "log_group_prefix": r.get("CLOUDWATCH_LOG_GROUP_PREFIX"),
    }


def full_ops(r: Registry) -> dict[str, Any]:
    prefix = r.get("CLOUDWATCH_LOG_GROUP_PREFIX")
    thresholds = [r.get(f"DEV_FULL_BUDGET_ALERT_{i}_USD") for i in (1, 2, 3)]
    assert thresholds == r.get("AWS_BUDGET_ALERT_THRESHOLDS"), "two spellings of the dev_full alerts disagree"
    assert r.get("AWS_BUDGET_LIMIT_AMOUNT") == r.get("DEV_FULL_MONTHLY_BUDGET_LIMIT_USD")
    return _full_common(r) | {
        "log_groups": {g: f"{prefix}{g}" for g in r.get("CLOUDWATCH_LOG_GROUPS")}
        | {"eks_control_plane": f"/aws/eks/{r.get('EKS_CLUSTER_NAME')}/cluster"},
        "log_retention_days": r.get("RETENTION_CLOUDWATCH_LOGS_DAYS"),
        "budget": {
            "name": r.get("AWS_BUDGET_NAME"),
            "limit_amount": r.get("AWS_BUDGET_LIMIT_AMOUNT"),
            "currency": r.get("AWS_BUDGET_CURRENCY"),
            "alert_thresholds": thresholds,
        },
        "otel": {
            "endpoint": r.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
            "log_group": f"{prefix}otel",
            "metrics_namespace": "FraudPlatform/dev_full",
        },
    }


def render_dev_full(r: Registry | None = None) -> dict[Path, str]:
    """Path (under infra/terraform) → file text for the five dev_full stacks."""
    r = r or full_registry()
    docs = {
        "core": full_core(r),
        "streaming": full_streaming(r),
        "runtime": full_runtime(r),
        "data_ml": full_data_ml(r),
        "ops": full_ops(r),
    }
    return {
        Path(FULL_PROFILE) / stack / TFVARS_NAME: json.dumps(doc, indent=2, sort_keys=True) + "\n"
        for stack, doc in docs.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a committed file differs from the rendering")
    args = parser.parse_args(argv)
    stale = []
    for rel, text in (render() | render_dev_full()).items():
        path = TERRAFORM_DIR / rel
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(rel))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if stale:
        print(f"stale tfvars (run python infra/terraform/tfvars.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

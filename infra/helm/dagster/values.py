"""Render `values-dev_full.yaml`, the values of the official Dagster Helm chart on dev_full, from the handles.

The release runs the webserver, the daemon and one user code deployment (`fp_platform.definitions:defs`), all
from the platform image pinned by digest (P(-1)'s), with the pod hardening of the packs' Deployments
(`substrate/pod_hardening.py`); runs launch as Kubernetes Jobs (K8sRunLauncher) in the Dagster namespace,
under the ServiceAccount Terraform's IRSA trust names for ROLE_DAGSTER_ORCHESTRATOR; Dagster's storage is
Aurora (`postgresql.enabled: false`, the writer endpoint, sslmode=require), never the chart's bundled
Postgres. The settings mirror the instance file `infra/dagster/dev_full.yaml` (what `fp-platform` copies into
DAGSTER_HOME off the cluster); a test keeps the two equal where they overlap.

Placeholders, substituted at deploy as in `infra/k8s` (`envsubst`): `${AWS_ACCOUNT_ID}`, `${IMAGE_DIGEST}`
(hex, without `sha256:`), `${AURORA_ENDPOINT}` (SSM_DB_ENDPOINT_PATH) and `${DB_APP_USER}`
(SSM_DB_APP_USER_PATH); the password goes into the Secret POSTGRES_SECRET (key `postgresql-password`) from
SSM_DB_APP_PASSWORD_PATH, never into values.

    python infra/helm/dagster/values.py          # rewrite the committed file
    python infra/helm/dagster/values.py --check  # exit 1 if it differs from the rendering
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from fp_platform.handles import PROFILE_ENV_VAR, Handles, handles
from fp_platform.operate import k8s_objects
from fp_platform.resources import role_service_account_name
from fp_platform.substrate import pod_hardening

PROFILE = "dev_full"
HERE = Path(__file__).resolve().parent
VALUES_FILE = HERE / f"values-{PROFILE}.yaml"
ORCHESTRATOR_ROLE = k8s_objects.SUPERVISOR_ROLE  # the Dagster pods' identity, which also supervises the packs
POSTGRES_SECRET = "dagster-postgresql-secret"
CODE_LOCATION = "fp-platform"
CODE_PORT = 3030
# the env every Dagster pod needs to load the Definitions of the profile and reach AWS (the instance file's
# K8sRunLauncher forwards the same names into each run's pod)
RUN_ENV_VARS = ("FP_PROFILE", "FP_AWS_ACCOUNT_ID", "AWS_REGION", "FP_DAGSTER_PG_URL")
RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
RUN_RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}


def _image(h: Handles) -> dict[str, str]:
    """The platform image by digest. The chart writes `<repository>:<tag>`, so the digest's algorithm goes into
    the repository and its hex into the tag: `<ECR_REPO_URI>@sha256:${IMAGE_DIGEST}`."""
    repo = str(h.get("ECR_REPO_URI")).format(aws_account_id="${AWS_ACCOUNT_ID}")
    return {"repository": f"{repo}@sha256", "tag": "${IMAGE_DIGEST}", "pullPolicy": "IfNotPresent"}


def _env(h: Handles) -> dict[str, str]:
    return {PROFILE_ENV_VAR: h.profile, "AWS_REGION": h.get("AWS_REGION"), "FP_AWS_ACCOUNT_ID": "${AWS_ACCOUNT_ID}"}


def _hardened() -> dict[str, Any]:
    """Pod and container securityContext of every platform pod, and the writable emptyDirs a read-only root
    needs (/tmp, FP_STATE_DIR)."""
    volumes, mounts, _ = pod_hardening.writable_volumes()
    return {
        "podSecurityContext": pod_hardening.pod_security(),
        "securityContext": pod_hardening.container_security(),
        "volumes": volumes,
        "volumeMounts": mounts,
    }


def _ingress_off() -> dict[str, Any]:
    """An ingress section the chart requires even when ingress is disabled."""
    tls = {"enabled": False, "secretName": ""}
    return {
        "host": "",
        "path": "/",
        "pathType": "ImplementationSpecific",
        "tls": tls,
        "precedingPaths": [],
        "succeedingPaths": [],
    }


def render(h: Handles) -> dict[str, Any]:
    """The chart's values: every key its schema requires, so the file validates on its own (Helm validates the
    chart's defaults merged with it)."""
    namespace, home = h.get("EKS_NAMESPACE_DAGSTER"), h.get("DAGSTER_HOME_DIR")
    account = role_service_account_name(ORCHESTRATOR_ROLE)
    role_arn = f"arn:aws:iam::${{AWS_ACCOUNT_ID}}:role/{h.get(ORCHESTRATOR_ROLE)}"
    volumes, mounts, state_env = pod_hardening.writable_volumes()
    env = _env(h) | {e["name"]: e["value"] for e in state_env}
    common = {"env": env, "envConfigMaps": [], "envSecrets": [], "nodeSelector": {}, "affinity": {}, "tolerations": []}
    return {
        "global": {
            "postgresqlSecretName": POSTGRES_SECRET,
            "dagsterHome": home,
            "serviceAccountName": account,
            "celeryConfigSecretName": "dagster-celery-config-secret",  # unused: no Celery
        },
        "serviceAccount": {"create": True, "name": account, "annotations": {"eks.amazonaws.com/role-arn": role_arn}},
        "imagePullSecrets": [],  # ECR through the node role
        "dagsterWebserver": {
            "replicaCount": 1,
            "image": _image(h),
            "nameOverride": "dagster-webserver",
            "service": {"type": "ClusterIP", "port": 80},  # operators reach it by port-forward: no load balancer
            "workspace": {"enabled": False, "servers": []},
            **common,
            "deploymentLabels": {},
            "labels": {},
            **_hardened(),
            "resources": RESOURCES,
            "readinessProbe": {
                "httpGet": {"path": "/server_info", "port": 80},
                "periodSeconds": 20,
                "timeoutSeconds": 10,
                "failureThreshold": 3,
            },
            "livenessProbe": {},
            "startupProbe": {"enabled": False},
            "annotations": {},
            "enableReadOnly": False,
        },
        "dagster-user-deployments": {
            "enabled": True,
            "enableSubchart": True,
            "imagePullSecrets": [],
            "deployments": [
                {
                    "name": CODE_LOCATION,
                    "image": _image(h),
                    "dagsterApiGrpcArgs": ["-m", "fp_platform.definitions", "-a", "defs"],
                    "port": CODE_PORT,
                    "includeConfigInLaunchedRuns": {"enabled": True},  # runs use this deployment's image
                    **common,
                    "annotations": {},
                    "labels": {},
                    **_hardened(),
                    "resources": RESOURCES,
                }
            ],
        },
        "postgresql": {
            "enabled": False,  # Aurora PostgreSQL Serverless v2, never the chart's bundled database
            "image": {"repository": "library/postgres", "tag": "16", "pullPolicy": "IfNotPresent"},  # unused
            "postgresqlHost": "${AURORA_ENDPOINT}",
            "postgresqlUsername": "${DB_APP_USER}",
            "postgresqlPassword": "",  # in the Secret POSTGRES_SECRET, from SSM
            "postgresqlDatabase": h.get("DB_DAGSTER_NAME"),
            "postgresqlParams": {"sslmode": h.get("DB_SSL_MODE")},
            "postgresqlScheme": "postgresql",
            "service": {"port": h.get("DB_PORT")},
        },
        "generatePostgresqlPasswordSecret": False,
        "generateCeleryConfigSecret": False,
        "rabbitmq": {
            "enabled": False,
            "image": {"repository": "bitnami/rabbitmq", "tag": "3.8.12", "pullPolicy": "IfNotPresent"},
            "rabbitmq": {"username": "", "password": ""},
            "service": {"port": 5672},
            "volumePermissions": {
                "image": {"repository": "bitnami/minideb", "tag": "stretch", "pullPolicy": "IfNotPresent"}
            },
        },
        "redis": {
            "enabled": False,
            "internal": False,
            "usePassword": False,
            "password": "",
            "host": "",
            "port": 6379,
            "brokerDbNumber": 0,
            "backendDbNumber": 0,
            "brokerUrl": "",
            "backendUrl": "",
        },
        "flower": {
            "enabled": False,
            "service": {"type": "ClusterIP", "port": 5555},
            "nodeSelector": {},
            "affinity": {},
            "tolerations": [],
            "podSecurityContext": {},
            "securityContext": {},
            "resources": {},
            "livenessProbe": {},
            "startupProbe": {"enabled": False},
        },
        "ingress": {
            "enabled": False,
            "labels": {},
            "annotations": {},
            "flower": _ingress_off(),
            "dagsterWebserver": _ingress_off(),
            "readOnlyDagsterWebserver": _ingress_off(),
        },
        "computeLogManager": {"type": "NoOpComputeLogManager", "config": {}},  # step logs: the pods' (CloudWatch)
        "scheduler": {"type": "DagsterDaemonScheduler", "config": {}},
        "runLauncher": {
            "type": "K8sRunLauncher",
            "config": {
                "k8sRunLauncher": {
                    "imagePullPolicy": "IfNotPresent",
                    "jobNamespace": namespace,
                    "loadInclusterConfig": True,
                    "envConfigMaps": [],
                    "envSecrets": [],
                    "envVars": list(RUN_ENV_VARS),
                    "volumeMounts": mounts,
                    "volumes": volumes,
                    "labels": dict(str(h.get(k)).split("=", 1) for k in ("TAG_PROJECT", "TAG_ENV")),
                    "runK8sConfig": {
                        "podSpecConfig": {"securityContext": pod_hardening.pod_security()},
                        "containerConfig": {
                            "securityContext": pod_hardening.container_security(),
                            "resources": RUN_RESOURCES,
                        },
                    },
                }
            },
        },
        "pythonLogs": {},
        "dagsterDaemon": {
            "enabled": True,
            "image": _image(h),
            "runCoordinator": {
                "enabled": True,
                "type": "QueuedRunCoordinator",
                "config": {"queuedRunCoordinator": {"maxConcurrentRuns": 1}},  # one platform run at a time (P2.2)
            },
            "heartbeatTolerance": 1800,
            **common,
            "deploymentLabels": {},
            "labels": {},
            **_hardened(),
            "resources": RESOURCES,
            "livenessProbe": {},
            "readinessProbe": {},
            "startupProbe": {"enabled": False},
            "annotations": {},
            "runMonitoring": {"enabled": True},
            "runRetries": {"enabled": False},  # a platform run is re-run by its operator, never retried blindly
            "sensors": {"useThreads": True, "numWorkers": 2},
            "schedules": {"useThreads": True, "numWorkers": 1},
        },
        "busybox": {"image": {"repository": "busybox", "tag": "1.28", "pullPolicy": "IfNotPresent"}},
        "migrate": {"enabled": False},  # `fp-platform db migrate` owns the schema
        "telemetry": {"enabled": False},
        "retention": {"enabled": False, "sensor": {"purgeAfterDays": -1}, "schedule": {"purgeAfterDays": -1}},
    }


class _Plain(yaml.SafeDumper):
    """Writes shared objects out in full (no YAML anchors): the file is for reading and for `envsubst`."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def rendered_text() -> str:
    header = "# Generated by infra/helm/dagster/values.py from the handles; do not edit (--check in the tests).\n"
    return header + yaml.dump(render(handles(PROFILE)), Dumper=_Plain, sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python infra/helm/dagster/values.py", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs")
    args = parser.parse_args(argv)
    text = rendered_text()
    if args.check:
        same = VALUES_FILE.exists() and VALUES_FILE.read_text() == text
        print(f"{VALUES_FILE.name}: {'up to date' if same else 'differs from the rendering'}")
        return 0 if same else 1
    VALUES_FILE.write_text(text)
    print(VALUES_FILE)
    return 0


if __name__ == "__main__":
    sys.exit(main())

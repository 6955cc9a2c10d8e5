"""The Dagster Helm values of dev_full (infra/helm/dagster) validate against the official chart's values schema
(the chart's own `values.schema.json`, named by DAGSTER_HELM_SCHEMA: a third-party file the repository does not
carry), with the chart's Kubernetes `$ref`s resolved offline to the pinned Kubernetes version's definitions;
the values keep Dagster on Aurora, launch runs with K8sRunLauncher, pin the platform image by digest and agree
with the instance file and Terraform's IRSA trust. No helm binary or cluster here: `helm template` never ran."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from fp_platform.handles import handles
from fp_platform.operate import k8s
from fp_platform.resources import role_service_account_name
from fp_platform_tests.infra.terraform import REPO

pytestmark = pytest.mark.infra

HELM = REPO / "infra" / "helm" / "dagster"
SCHEMA_PATH = os.environ.get("DAGSTER_HELM_SCHEMA")
needs_schema = pytest.mark.skipif(
    not SCHEMA_PATH,
    reason="the Dagster chart's values.schema.json is not in the repository: `helm pull dagster/dagster --version"
    " <pinned> --untar` and set DAGSTER_HELM_SCHEMA=dagster/values.schema.json (infra/helm/dagster/README.md)",
)
VALUES = yaml.safe_load((HELM / "values-dev_full.yaml").read_text())
K8S_DEFS = "https://kubernetesjsonschema.dev/v1.18.0/_definitions.json"
K8S_VERSION = yaml.safe_load((REPO / "infra" / "handles" / "dev_full.yaml").read_text())["handles"][
    "EKS_KUBERNETES_VERSION"
]


def _kubernetes_definitions(uri: str) -> Resource:
    """The chart's Kubernetes `$ref`s, answered from the definitions kubernetes-validate ships for the pinned
    version (non-strict, as the chart's are); they name `#/definitions/...`, the shipped file `#/$defs/...`."""
    assert uri == K8S_DEFS, f"the schema refers to {uri}, which is not resolved offline"
    shipped = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{K8S_VERSION}.0-local"
    defs = json.loads((shipped / "_definitions.json").read_text())["$defs"]
    return Resource.from_contents({"definitions": defs, "$defs": defs}, default_specification=DRAFT7)


def _errors(values: dict[str, Any]) -> list[str]:
    """Schema errors of `values`, as Helm's validator (draft-07) would find them."""
    schema = json.loads(Path(SCHEMA_PATH).read_text())  # type: ignore[arg-type]
    validator = jsonschema.Draft7Validator(schema, registry=Registry(retrieve=_kubernetes_definitions))
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values))


@needs_schema
def test_the_schema_is_the_charts_generated_file():
    schema = json.loads(Path(SCHEMA_PATH).read_text())  # type: ignore[arg-type]
    assert schema["title"] == "DagsterHelmValues" and schema["description"] == "@generated"
    jsonschema.Draft7Validator.check_schema(schema)


@needs_schema
def test_the_dev_full_values_validate_against_the_charts_schema():
    assert _errors(VALUES) == []


@pytest.mark.parametrize(
    "change,expected",
    [
        (lambda v: v["dagsterWebserver"].update(replicaCont=1), "Additional properties are not allowed"),
        (lambda v: v["runLauncher"]["config"].pop("k8sRunLauncher"), "'k8sRunLauncher' is a required property"),
        (lambda v: v["dagsterDaemon"]["securityContext"].update(runAsUser="root"), "'root' is not of type"),
        (lambda v: v["postgresql"].pop("postgresqlHost"), "'postgresqlHost' is a required property"),
    ],
    ids=["misspelt-key", "launcher-without-config", "bad-k8s-field", "no-database-host"],
)
@needs_schema
def test_the_schema_refuses_broken_values(change, expected):
    """Controls: the chart's own keys, its conditional launcher config and (through the resolved `$ref`s) the
    Kubernetes fields are all checked."""
    broken = copy.deepcopy(VALUES)
    change(broken)
    assert any(expected in e for e in _errors(broken)), _errors(broken)


def test_dagster_runs_on_aurora_and_launches_runs_as_k8s_jobs():
    h = handles("dev_full")
    pg = VALUES["postgresql"]
    assert pg["enabled"] is False and pg["postgresqlHost"] == "${AURORA_ENDPOINT}"
    assert pg["postgresqlDatabase"] == h.get("DB_DAGSTER_NAME") and pg["postgresqlParams"] == {"sslmode": "require"}
    assert pg["postgresqlPassword"] == "" and VALUES["generatePostgresqlPasswordSecret"] is False
    launcher = VALUES["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    assert launcher["config"]["k8sRunLauncher"]["jobNamespace"] == h.get("EKS_NAMESPACE_DAGSTER")
    assert not any(VALUES[k]["enabled"] for k in ("rabbitmq", "redis", "flower", "ingress"))
    assert VALUES["dagsterWebserver"]["service"]["type"] == "ClusterIP"  # no load balancer (DA §5)


def test_every_dagster_image_is_the_platform_image_by_digest():
    """The chart writes `<repository>:<tag>`: that is `<ECR_REPO_URI>@sha256:${IMAGE_DIGEST}`, the reference the
    packs' Deployments run (k8s.placeholders), and with a real digest a valid digest reference."""
    h = handles("dev_full")
    images = [
        VALUES["dagsterWebserver"]["image"],
        VALUES["dagsterDaemon"]["image"],
        *(d["image"] for d in VALUES["dagster-user-deployments"]["deployments"]),
    ]
    for image in images:
        ref = f"{image['repository']}:{image['tag']}"
        assert ref == k8s.placeholders(h).image
        assert k8s.DIGEST.search(ref.replace("${IMAGE_DIGEST}", "ab" * 32))
    (code,) = VALUES["dagster-user-deployments"]["deployments"]
    assert code["dagsterApiGrpcArgs"] == ["-m", "fp_platform.definitions", "-a", "defs"]


def test_the_values_agree_with_the_instance_file_and_the_irsa_trust():
    h = handles("dev_full")
    instance = yaml.safe_load((REPO / h.get("DAGSTER_INSTANCE_YAML")).read_text())
    launcher = instance["run_launcher"]["config"]
    chart = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    assert chart["jobNamespace"] == launcher["job_namespace"] and chart["envVars"] == launcher["env_vars"]
    assert VALUES["global"]["dagsterHome"] == launcher["dagster_home"] == h.get("DAGSTER_HOME_DIR")
    assert VALUES["global"]["serviceAccountName"] == launcher["service_account_name"]
    queued = VALUES["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued["maxConcurrentRuns"] == instance["run_coordinator"]["config"]["max_concurrent_runs"]
    assert VALUES["telemetry"]["enabled"] is instance["telemetry"]["enabled"] is False
    irsa = json.loads((REPO / "infra/terraform/dev_full/runtime/handles.auto.tfvars.json").read_text())["irsa"]
    trusted = irsa["dagster_orchestrator"]
    sa = VALUES["serviceAccount"]
    assert (trusted["namespace"], trusted["service_account"]) == (
        h.get("EKS_NAMESPACE_DAGSTER"),
        sa["name"],
    ) and sa["name"] == role_service_account_name("ROLE_DAGSTER_ORCHESTRATOR")
    assert sa["annotations"]["eks.amazonaws.com/role-arn"].endswith(f":role/{trusted['role_name']}")


def test_the_pods_carry_the_platform_pod_hardening():
    from fp_platform.substrate import pod_hardening

    for part in (
        VALUES["dagsterWebserver"],
        VALUES["dagsterDaemon"],
        *VALUES["dagster-user-deployments"]["deployments"],
    ):
        assert part["podSecurityContext"] == pod_hardening.pod_security()
        assert part["securityContext"] == pod_hardening.container_security()
        assert {m["mountPath"] for m in part["volumeMounts"]} == {"/tmp", pod_hardening.STATE_MOUNT}


def test_the_committed_values_equal_the_rendering():
    done = subprocess.run(
        [sys.executable, str(HELM / "values.py"), "--check"], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr

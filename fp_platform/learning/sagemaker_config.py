"""dev_full's SageMaker requests for MF: the P14 training job, the model and endpoint that serve the
candidate bundle, and the batch transform P15's shadow scoring runs. Built from the profile's handles and
checked offline against botocore's own SageMaker service model (the request shapes `boto3` sends), so a
missing field or a wrong type fails here, not in the account. Submitted only in dev_full, where the role
ARN and the VPC's subnets and security groups come from the Terraform outputs.

Training runs the platform image's own P14 entrypoint (`python -m fp_platform.learning.jobs train`), so
SageMaker trains exactly what the local Pipes subprocess trains; hosting runs the same image with the
argument `serve` (`fp-platform serve`: `/ping` and `/invocations` on 8080, `learning/model_server.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fp_platform.handles import Handles

SERVE_PORT = 8080  # SageMaker's hosting contract: the container answers /ping and /invocations here
JSON_LINES = "application/jsonlines"  # batch transform: one feature vector per line in, one score per line out


class SageMakerConfigError(ValueError):
    """The profile lacks what SageMaker needs, or a request does not fit SageMaker's API (the message says)."""


@dataclass(frozen=True)
class Network:
    """Where SageMaker's jobs and endpoint run, and as whom (Terraform outputs of dev_full)."""

    role_arn: str
    subnets: tuple[str, ...]
    security_group_ids: tuple[str, ...]


@dataclass(frozen=True)
class SageMakerRequests:
    """Each request exactly as `boto3.client("sagemaker").<operation>(**request)` takes it."""

    training_job: dict[str, Any]  # CreateTrainingJob
    model: dict[str, Any]  # CreateModel
    endpoint_config: dict[str, Any]  # CreateEndpointConfig
    endpoint: dict[str, Any]  # CreateEndpoint
    transform_job: dict[str, Any]  # CreateTransformJob

    def by_operation(self) -> dict[str, dict[str, Any]]:
        return {
            "CreateTrainingJob": self.training_job,
            "CreateModel": self.model,
            "CreateEndpointConfig": self.endpoint_config,
            "CreateEndpoint": self.endpoint,
            "CreateTransformJob": self.transform_job,
        }


def _need(h: Handles, key: str) -> str:
    value = h.values.get(key)
    if not value:
        raise SageMakerConfigError(f"{key} is not set in the {h.profile} profile: SageMaker runs in dev_full")
    return str(value)


def _name(*parts: str) -> str:
    """A SageMaker resource name: letters, digits and hyphens, at most 63 characters."""
    return re.sub(r"[^a-zA-Z0-9-]+", "-", "-".join(parts)).strip("-")[:63]


def build(
    h: Handles,
    image: str,
    platform_run_id: str,
    bundle: tuple[str, str],
    bundle_model_ref: str,
    network: Network,
    shadow_input_uri: str,
    max_runtime_s: int = 3600,
) -> SageMakerRequests:
    """The requests for one run's candidate `bundle` (id, version): train it, host its model document, and
    score the shadow set (`shadow_input_uri`, JSON lines of feature vectors) in a batch transform."""
    training_type = _need(h, "SAGEMAKER_TRAINING_INSTANCE_TYPE")
    endpoint_type = _need(h, "SAGEMAKER_ENDPOINT_INSTANCE_TYPE")
    for key, value in (
        ("SAGEMAKER_TRAINING_INSTANCE_TYPE", training_type),
        ("SAGEMAKER_ENDPOINT_INSTANCE_TYPE", endpoint_type),
    ):
        if not value.startswith("ml."):
            raise SageMakerConfigError(f"{key} {value!r} is not a SageMaker instance type (ml.*)")
    if "@sha256:" not in image and ":" not in image.rsplit("/", 1)[-1]:
        raise SageMakerConfigError(f"image {image!r} is not pinned to a tag or digest")
    artifacts = _need(h, "MLFLOW_ARTIFACT_ROOT") + "sagemaker/"
    env = {"FP_PROFILE": h.profile, _need(h, "REQUIRED_PLATFORM_RUN_ID_ENV_KEY"): platform_run_id}
    vpc = {"SecurityGroupIds": list(network.security_group_ids), "Subnets": list(network.subnets)}
    tags = [{"Key": "project", "Value": "fraud-platform"}, {"Key": "platform_run_id", "Value": platform_run_id}]
    model_name = _name(*bundle)
    requests = SageMakerRequests(
        training_job={
            "TrainingJobName": _name("mf", platform_run_id),
            "AlgorithmSpecification": {
                "TrainingImage": image,
                "TrainingInputMode": "File",
                "ContainerEntrypoint": ["python", "-m", "fp_platform.learning.jobs"],
                "ContainerArguments": ["train", "--run-id", platform_run_id],
            },
            "RoleArn": network.role_arn,
            "OutputDataConfig": {"S3OutputPath": artifacts + "training/"},
            "ResourceConfig": {"InstanceType": training_type, "InstanceCount": 1, "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_s},
            "VpcConfig": vpc,
            "Environment": env,
            "Tags": tags,
        },
        model={
            "ModelName": model_name,
            "PrimaryContainer": {
                "Image": image,
                "Environment": {**env, "FP_BUNDLE_MODEL_REF": bundle_model_ref, "FP_SERVE_HOST": "0.0.0.0"},
            },
            "ExecutionRoleArn": network.role_arn,
            "VpcConfig": vpc,
            "Tags": tags,
        },
        endpoint_config={
            "EndpointConfigName": model_name,
            "ProductionVariants": [
                {
                    "VariantName": "candidate",
                    "ModelName": model_name,
                    "InitialInstanceCount": 1,
                    "InstanceType": endpoint_type,
                }
            ],
            "Tags": tags,
        },
        endpoint={"EndpointName": model_name, "EndpointConfigName": model_name, "Tags": tags},
        transform_job={
            "TransformJobName": _name("shadow", platform_run_id),
            "ModelName": model_name,
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": shadow_input_uri}},
                "ContentType": JSON_LINES,
                "SplitType": "Line",
            },
            "TransformOutput": {"S3OutputPath": artifacts + "shadow/", "Accept": JSON_LINES, "AssembleWith": "Line"},
            "TransformResources": {"InstanceType": endpoint_type, "InstanceCount": 1},
            "Tags": tags,
        },
    )
    validate(requests)
    return requests


def validate(requests: SageMakerRequests) -> None:
    """Check every request against botocore's SageMaker model: member names, types, required members and
    minimum lengths and values (what botocore checks before it sends; patterns and enums stay the API's)."""
    import botocore.session  # here, not at import: `fp-platform --help` reads SERVE_PORT from this module
    from botocore.validate import ParamValidator

    service = botocore.session.get_session().get_service_model("sagemaker")
    problems = []
    for operation, params in requests.by_operation().items():
        report = ParamValidator().validate(params, service.operation_model(operation).input_shape)
        if report.has_errors():
            problems.append(f"{operation}: {report.generate_report()}")
    if problems:
        raise SageMakerConfigError("; ".join(problems))

"""dev_full's SageMaker configuration for MF: the training job and the serving endpoint, as SageMaker SDK
request shapes (`sagemaker.core.shapes`, validated on construction). Built and checked here, executed
only in dev_full (the role and account come from SSM/Terraform there).

Training runs the platform image's own P14 entrypoint (`python -m fp_platform.learning.jobs train`), so
SageMaker trains exactly what the local Pipes subprocess trains; serving hosts the candidate bundle's
model document beside the same image.
"""

from __future__ import annotations

from dataclasses import dataclass

from sagemaker.core import shapes

from fp_platform.handles import Handles


class SageMakerConfigError(ValueError):
    """The profile lacks what SageMaker needs (the message names the handle)."""


@dataclass(frozen=True)
class SageMakerConfig:
    algorithm: shapes.AlgorithmSpecification
    resources: shapes.ResourceConfig
    stopping: shapes.StoppingCondition
    output: shapes.OutputDataConfig
    model_container: shapes.ContainerDefinition
    endpoint_variant: shapes.ProductionVariant


def _need(h: Handles, key: str) -> str:
    value = h.values.get(key)
    if not value:
        raise SageMakerConfigError(f"{key} is not set in the {h.profile} profile: SageMaker runs in dev_full")
    return str(value)


def build(
    h: Handles,
    image: str,
    platform_run_id: str,
    bundle: tuple[str, str],
    bundle_model_ref: str,
    max_runtime_s: int = 3600,
) -> SageMakerConfig:
    """The training and serving configuration for one run's candidate `bundle` (id, version), from the
    profile's handles; the endpoint variant serves the SageMaker Model named after the bundle."""
    training_type, endpoint_type = (
        _need(h, "SAGEMAKER_TRAINING_INSTANCE_TYPE"),
        _need(h, "SAGEMAKER_ENDPOINT_INSTANCE_TYPE"),
    )
    for key, value in (
        ("SAGEMAKER_TRAINING_INSTANCE_TYPE", training_type),
        ("SAGEMAKER_ENDPOINT_INSTANCE_TYPE", endpoint_type),
    ):
        if not value.startswith("ml."):
            raise SageMakerConfigError(f"{key} {value!r} is not a SageMaker instance type (ml.*)")
    if ":" not in image.rsplit("/", 1)[-1]:
        raise SageMakerConfigError(f"image {image!r} is not pinned to a tag or digest")
    env = {"FP_PROFILE": h.profile, _need(h, "REQUIRED_PLATFORM_RUN_ID_ENV_KEY"): platform_run_id}
    return SageMakerConfig(
        algorithm=shapes.AlgorithmSpecification(
            training_input_mode="File",
            training_image=image,
            container_entrypoint=["python", "-m", "fp_platform.learning.jobs"],
            container_arguments=["train", "--run-id", platform_run_id],
        ),
        resources=shapes.ResourceConfig(instance_type=training_type, instance_count=1, volume_size_in_gb=30),
        stopping=shapes.StoppingCondition(max_runtime_in_seconds=max_runtime_s),
        output=shapes.OutputDataConfig(s3_output_path=_need(h, "MLFLOW_ARTIFACT_ROOT") + "sagemaker/"),
        model_container=shapes.ContainerDefinition(
            image=image, environment={**env, "FP_BUNDLE_MODEL_REF": bundle_model_ref}
        ),
        endpoint_variant=shapes.ProductionVariant(
            variant_name="candidate",
            model_name=f"{bundle[0]}-{bundle[1]}"[:63],
            initial_instance_count=1,
            instance_type=endpoint_type,
        ),
    )

"""dev_full's SageMaker training/serving configuration is built from the profile's handles and validated
by the SDK's own request shapes; a profile without SageMaker, or a bad value, is refused by name."""

import pydantic
import pytest

from fp_platform.handles import handles
from fp_platform.learning import sagemaker_config

IMAGE = "123456789012.dkr.ecr.eu-west-2.amazonaws.com/fraud-platform-dev-full-platform:git-0123456789ab"


def test_dev_full_builds_the_training_job_and_endpoint_of_the_p14_entrypoint():
    h = handles("dev_full")
    c = sagemaker_config.build(
        h, IMAGE, "platform_20261122T000000Z", ("fp-fraud-scorer", "abc-123"), "s3://b/bundles/x/1/model.json"
    )
    assert c.algorithm.container_entrypoint == ["python", "-m", "fp_platform.learning.jobs"]
    assert c.algorithm.container_arguments == ["train", "--run-id", "platform_20261122T000000Z"]
    assert c.resources.instance_type == h.get("SAGEMAKER_TRAINING_INSTANCE_TYPE")
    assert c.endpoint_variant.instance_type == h.get("SAGEMAKER_ENDPOINT_INSTANCE_TYPE")
    assert c.endpoint_variant.model_name == "fp-fraud-scorer-abc-123"
    assert c.output.s3_output_path.startswith(h.get("MLFLOW_ARTIFACT_ROOT"))


def test_a_profile_without_sagemaker_or_an_unpinned_image_is_refused():
    with pytest.raises(sagemaker_config.SageMakerConfigError, match="SAGEMAKER_TRAINING_INSTANCE_TYPE"):
        sagemaker_config.build(handles("local"), IMAGE, "platform_20261122T000000Z", ("b", "1"), "s3://b/k")
    with pytest.raises(sagemaker_config.SageMakerConfigError, match="not pinned"):
        sagemaker_config.build(handles("dev_full"), "repo/image", "platform_20261122T000000Z", ("b", "1"), "s3://b/k")
    with pytest.raises(pydantic.ValidationError):
        sagemaker_config.build(
            handles("dev_full"), IMAGE, "platform_20261122T000000Z", ("b", "1"), "s3://b/k", max_runtime_s="x"
        )

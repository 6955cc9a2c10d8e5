"""dev_full's SageMaker requests are built from the profile's handles and checked against botocore's own
SageMaker service model; a profile without SageMaker, an unpinned image or a malformed request is refused."""

import dataclasses

import pytest

from fp_platform.handles import handles
from fp_platform.learning import sagemaker_config

IMAGE = "123456789012.dkr.ecr.eu-west-2.amazonaws.com/fraud-platform-dev-full-platform@sha256:" + "a" * 64
RUN = "platform_20261122T000000Z"
NETWORK = sagemaker_config.Network(
    "arn:aws:iam::123456789012:role/fraud-platform-dev-full-sagemaker-execution", ("subnet-1", "subnet-2"), ("sg-1",)
)
SHADOW = "s3://fraud-platform-dev-full-artifacts/shadow/in/"


def _build(h, image=IMAGE, **kw):
    return sagemaker_config.build(h, image, RUN, ("fp-fraud-scorer", "abc-123"), "s3://b/m.json", NETWORK, SHADOW, **kw)


def test_dev_full_builds_valid_requests_for_training_hosting_and_shadow_scoring():
    h = handles("dev_full")
    r = _build(h)
    job = r.training_job
    assert job["AlgorithmSpecification"]["ContainerEntrypoint"] == ["python", "-m", "fp_platform.learning.jobs"]
    assert job["AlgorithmSpecification"]["ContainerArguments"] == ["train", "--run-id", RUN]
    assert job["RoleArn"] == r.model["ExecutionRoleArn"] == NETWORK.role_arn
    assert (
        job["VpcConfig"] == r.model["VpcConfig"] == {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1", "subnet-2"]}
    )
    assert job["ResourceConfig"]["InstanceType"] == h.get("SAGEMAKER_TRAINING_INSTANCE_TYPE")
    assert r.endpoint_config["ProductionVariants"][0]["InstanceType"] == h.get("SAGEMAKER_ENDPOINT_INSTANCE_TYPE")
    assert r.model["PrimaryContainer"]["Environment"]["FP_BUNDLE_MODEL_REF"] == "s3://b/m.json"
    assert r.transform_job["ModelName"] == r.model["ModelName"] == "fp-fraud-scorer-abc-123"
    assert r.transform_job["TransformInput"]["SplitType"] == "Line"
    assert job["OutputDataConfig"]["S3OutputPath"].startswith(h.get("MLFLOW_ARTIFACT_ROOT"))


def test_a_profile_without_sagemaker_or_an_unpinned_image_is_refused():
    with pytest.raises(sagemaker_config.SageMakerConfigError, match="SAGEMAKER_TRAINING_INSTANCE_TYPE"):
        _build(handles("local"))
    with pytest.raises(sagemaker_config.SageMakerConfigError, match="not pinned"):
        _build(handles("dev_full"), image="repo/image")


def test_a_request_botocore_would_refuse_is_refused_here():
    with pytest.raises(sagemaker_config.SageMakerConfigError, match="CreateTrainingJob.*MaxRuntimeInSeconds"):
        _build(handles("dev_full"), max_runtime_s="an hour")
    good = _build(handles("dev_full"))
    no_role = dataclasses.replace(good, training_job={k: v for k, v in good.training_job.items() if k != "RoleArn"})
    with pytest.raises(sagemaker_config.SageMakerConfigError, match="CreateTrainingJob.*RoleArn"):
        sagemaker_config.validate(no_role)

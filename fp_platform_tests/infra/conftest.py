"""Fixtures of the infra tests: the terraform binary and provider mirror (skip with the reason when either
is absent), each dev_min stack initialised once per session, and their offline plans."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fp_platform_tests.infra import terraform as tf


@pytest.fixture(scope="session")
def terraform() -> Path:
    """The plugin mirror root; asking for this fixture puts a test in the `infra` tier (root conftest)."""
    if tf.terraform_binary() is None:
        pytest.skip("terraform is not on PATH (install Terraform >= 1.11 to run the infra tests)")
    mirror = tf.plugin_mirror()
    if mirror is None:
        pytest.skip(
            "no hashicorp/aws provider mirror: `find / -maxdepth 8 -name 'terraform-provider-aws_*'` finds none "
            "(set FP_TF_PLUGIN_DIR to the folder above registry.terraform.io)"
        )
    return mirror


@pytest.fixture(scope="session")
def tf_base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("terraform")


@pytest.fixture(scope="session")
def core_dir(terraform, tf_base) -> tf.Workdir:
    return tf.prepare("core", tf_base, terraform)


@pytest.fixture(scope="session")
def demo_dir(terraform, tf_base) -> tf.Workdir:
    return tf.prepare("demo", tf_base, terraform)


@pytest.fixture(scope="session")
def core_plan(core_dir) -> dict[str, Any]:
    return core_dir.plan_json("-var", "aws_offline=true")


@pytest.fixture(scope="session")
def demo_plan(demo_dir) -> dict[str, Any]:
    return demo_dir.plan_json("-var", "aws_offline=true")

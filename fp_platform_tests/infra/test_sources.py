"""The Terraform sources, read without Terraform: IAM grants name their actions, secret outputs are
sensitive, providers are pinned, and the Confluent provider is confined to the files the offline checks
leave out (so leaving them out does not hide anything else)."""

from __future__ import annotations

import re

import pytest

from fp_platform_tests.infra import sources
from fp_platform_tests.infra.terraform import CONFLUENT_ONLY, STACKS, TERRAFORM_DIR

pytestmark = pytest.mark.infra

SECRET_REF = re.compile(r"\.secret\b|api_key|password|bootstrap", re.IGNORECASE)
CONFLUENT_USE = re.compile(r'(resource|data)\s+"confluent_|module\.confluent|provider\s+"confluent"|confluentinc/')


def test_no_iam_grant_uses_a_wildcard_action():
    actions = [a for path in sources.tf_files() for a in sources.allowed_actions(sources.parse(path))]
    assert len(actions) > 100, f"only {len(actions)} actions found: the walk no longer sees the policies"
    wild = sorted({a for a in actions if "*" in a})
    assert not wild, f"wildcard IAM actions in an Allow: {wild}"


def test_the_wildcard_check_sees_an_allow_and_spares_a_deny():
    doc = {
        "data": [
            {
                "aws_iam_policy_document": {
                    "x": {
                        "statement": [
                            {"actions": [["s3:Get*"]], "resources": [["*"]]},
                            {"effect": ["Deny"], "actions": [["s3:*"]]},
                        ]
                    }
                }
            }
        ]
    }
    assert list(sources.allowed_actions(doc)) == ["s3:Get*"]


def test_outputs_that_carry_secrets_are_sensitive():
    secret_outputs = []
    for path in sources.tf_files():
        for name, body in sources.outputs(sources.parse(path)).items():
            value = " ".join(sources.strings(body.get("value")))
            if SECRET_REF.search(name) or SECRET_REF.search(value):
                secret_outputs.append(f"{path.relative_to(TERRAFORM_DIR)}:{name}")
                assert sources.unwrap(body.get("sensitive")) is True, f"output {name} in {path} must be sensitive"
    assert len(secret_outputs) >= 4, secret_outputs  # the Confluent key, secret and bootstraps


def test_providers_are_pinned_in_every_stack_and_module():
    for versions in TERRAFORM_DIR.rglob("versions.tf"):
        (block,) = sources.parse(versions)["terraform"]
        assert sources.unwrap(block["required_version"]) == ">= 1.11, < 2.0", versions
        providers = {k: sources.unwrap(v) for p in block["required_providers"] for k, v in p.items()}
        assert providers["aws"] == {"source": "hashicorp/aws", "version": "= 5.100.0"}, versions


def test_only_the_confluent_files_need_the_confluent_provider():
    """The offline checks drop demo/confluent.tf: nothing else in the stacks may mention Confluent."""
    users = {
        path.relative_to(TERRAFORM_DIR).as_posix()
        for stack_dir in STACKS.values()
        for path in stack_dir.glob("*.tf")
        if CONFLUENT_USE.search(path.read_text())
    }
    assert users == {f"dev_min/demo/{name}" for name in CONFLUENT_ONLY if name.endswith(".tf")}


def test_secrets_are_write_only_variables():
    """The database password and IG key never reach state: ephemeral inputs into *_wo arguments."""
    doc = sources.parse(STACKS["demo"] / "variables.tf")
    variables = {name: body for block in doc["variable"] for name, body in block.items()}
    for name in ("db_password", "db_app_password", "ig_api_key"):
        assert sources.unwrap(variables[name].get("ephemeral")) is True, name
        assert sources.unwrap(variables[name].get("sensitive")) is True, name

"""The `dev_min` and `dev_full` fixtures: the profile's handles with moto (in process) behind every boto3 client."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from fp_platform.handles import AWS_ACCOUNT_ENV_VAR, Handles, load
from fp_platform_tests.operate.cloud import ACCOUNT


@cache
def _botocore_loader(data_path: str | None) -> Any:
    """One botocore data loader for all the tests' sessions: moto starts every test on a fresh boto3 session, whose
    own loader would read endpoints.json and each service's model again (files that never change)."""
    from botocore.loaders import create_loader

    return create_loader(data_path)


def _with_moto(monkeypatch, profile: str) -> Iterator[Handles]:
    """The profile's handles with moto behind every boto3 client (a 1 s probe timeout keeps the unreachable
    broker's wait short). The timeout is set in the registry `load` caches for this test, so code that reads the
    profile itself (`fp-platform run` through Dagster) waits no longer than code given these handles."""
    import botocore.session
    from moto import mock_aws

    from fp_platform.substrate import residuals

    monkeypatch.setattr(botocore.session, "create_loader", _botocore_loader)
    # each test's moto account starts empty and numbers task definition revisions from 1 again: an ARN is
    # immutable within one AWS account, not across tests, so the per-process cache starts empty per test
    monkeypatch.setattr(residuals, "_TASK_DEFINITIONS", {})
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-2",
        # moto's EC2 otherwise loads its catalogue of public AMIs (tens of thousands of random ids) in every
        # region a test touches; the platform lists NAT gateways, subnets and security groups, never images
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
        AWS_ACCOUNT_ENV_VAR: ACCOUNT,
    }.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "FP_PG_DSN"):
        monkeypatch.delenv(k, raising=False)
    load.cache_clear()
    try:
        h = load(profile)
        monkeypatch.setitem(h.values, "SUBSTRATE_PROBE_TIMEOUT_SECONDS", 1)
        with mock_aws():
            yield h
    finally:
        load.cache_clear()


@pytest.fixture
def dev_min(monkeypatch) -> Iterator[Handles]:
    yield from _with_moto(monkeypatch, "dev_min")


@pytest.fixture
def dev_full(monkeypatch) -> Iterator[Handles]:
    yield from _with_moto(monkeypatch, "dev_full")

"""The `dev_min` and `dev_full` fixtures: the profile's handles with moto (in process) behind every boto3 client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from fp_platform.handles import AWS_ACCOUNT_ENV_VAR, Handles, load
from fp_platform_tests.operate.cloud import ACCOUNT


def _with_moto(monkeypatch, profile: str) -> Iterator[Handles]:
    """The profile's handles with moto behind every boto3 client (a 1 s probe timeout keeps the unreachable
    broker's wait short)."""
    from moto import mock_aws

    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-2",
        AWS_ACCOUNT_ENV_VAR: ACCOUNT,
    }.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "FP_PG_DSN"):
        monkeypatch.delenv(k, raising=False)
    load.cache_clear()
    try:
        h = load(profile)
        h = replace(h, values={**h.values, "SUBSTRATE_PROBE_TIMEOUT_SECONDS": 1})
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

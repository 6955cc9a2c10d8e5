"""Tests run against the real local stack: one session fixture starts it (and stops it after the
session if it was not already running).

Tiers (markers, pyproject.toml): a test that needs the stack — it asks for the `stack` fixture, directly or
through another fixture — is marked `stack`; one that runs an infra tool (the `terraform` or `checkov` fixture
of fp_platform_tests/infra) is marked `infra`; every other test `unit` (marked here, from the fixtures it asks
for, so a tier cannot be mislabelled by hand). `e2e` (whole platform runs), `ui` (a browser), `infra`
(manifests, Terraform) and `slow` (scale) are also marked by their modules. `make test-fast` runs the unit
tier, `make test-infra` the infra one."""

from __future__ import annotations

import pytest

from fp_platform.handles import Handles, handles
from fp_platform.substrate import local_stack

INFRA_TOOL_FIXTURES = {"terraform", "checkov"}  # each runs for tens of seconds: not the unit tier


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "stack" in fixtures:
            item.add_marker(pytest.mark.stack)
        elif fixtures & INFRA_TOOL_FIXTURES:
            item.add_marker(pytest.mark.infra)
        else:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def h() -> Handles:
    return handles("local")


@pytest.fixture(scope="session")
def stack(h: Handles):
    was_running = all(s.healthy for s in local_stack.status(h))
    statuses = local_stack.up(h)
    assert all(s.healthy for s in statuses), statuses
    yield statuses
    if not was_running:
        from fp_platform.operate import daemons

        daemons.stop_all()
        local_stack.down(h)


@pytest.fixture(scope="session")
def dagster_env(h: Handles, stack) -> dict[str, str]:
    from fp_platform.operate import dagster_home

    return dagster_home.prepare(h)

"""An IG process of its own per test module: real HTTP, real Postgres, real Kafka, real S3."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fp_platform.handles import Handles
from fp_platform_tests.support import IgProcess, start_ig, unique_run_id


@pytest.fixture(scope="module")
def ig(h: Handles, stack) -> Iterator[IgProcess]:
    proc = start_ig(h, unique_run_id(), "--max-request-bytes", "20000")
    yield proc
    proc.proc.terminate()
    proc.proc.wait(20)

"""RTDL tests put a world's admitted records straight onto the real topics (as IG would, with its
headers; `benches/rtdl.py` does the same) and run the real workers against them (helpers: `support.py`)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from fp_platform_tests.support import smoke_world


@pytest.fixture(scope="session")
def world() -> dict[str, pa.Table]:
    return smoke_world()

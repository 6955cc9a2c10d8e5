"""An IG process of its own per test module: real HTTP, real Postgres, real Kafka, real S3."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from fp_platform.contracts.ids import new_platform_run_id
from fp_platform.handles import Handles
from fp_platform.substrate.secrets import get_secret


@dataclass
class IgProcess:
    url: str
    run_id: str
    key: str
    proc: subprocess.Popen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ig(h: Handles, run_id: str, *extra: str) -> IgProcess:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fp_platform.control.ig", "--run-id", run_id, "--port", str(port),
                             *extra])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "IG exited during start-up"
        try:
            if httpx.get(url + h.get("IG_READY_PATH"), timeout=1).status_code == 200:
                return IgProcess(url, run_id, get_secret(h, "SSM_IG_API_KEY_PATH"), proc)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("IG not ready within 60 s")


def unique_run_id() -> str:
    time.sleep(1.01)  # run ids have second resolution
    return new_platform_run_id()


@pytest.fixture(scope="module")
def ig(h: Handles, stack) -> Iterator[IgProcess]:
    proc = start_ig(h, unique_run_id(), "--max-request-bytes", "20000")
    yield proc
    proc.proc.terminate()
    proc.proc.wait(20)

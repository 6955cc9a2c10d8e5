"""`fp-platform ui` stopped with SIGTERM (as a service manager or `kill` stops it) leaves no process behind:
its dagster-webserver and dagster-daemon, and everything in their process groups (their code servers), stop
with it, as on Ctrl-C. The spine's workers that the pack_supervisor sensor starts are supervised daemons in
sessions of their own: they outlive the UI by design (`fp-platform operate down` stops them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from fp_platform_tests.support import free_port


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, process group) of a process; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1]), int(fields[2])


def _descendants(root: int) -> set[int]:
    procs = {int(p): _stat(int(p)) for p in os.listdir("/proc") if p.isdigit()}
    out, frontier = set(), {root}
    while frontier:
        frontier = {p for p, st in procs.items() if st and st[1] in frontier} - out
        out |= frontier
    return out


def _alive(pids: set[int]) -> set[int]:
    return {p for p in pids if (st := _stat(p)) is not None and st[0] != "Z"}


def test_sigterm_stops_the_webserver_and_the_daemon(dagster_env):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fp_platform.cli", "ui", "--port", str(port)],
        env={**os.environ, **dagster_env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "fp-platform ui exited during start-up"
            assert time.monotonic() < deadline, "the Dagster UI did not come up in 180 s"
            time.sleep(1)
        tree = _descendants(proc.pid)
        groups = {p for p in tree if (st := _stat(p)) and st[1] == proc.pid}  # the webserver's and the daemon's
        children = {p for p in tree if (st := _stat(p)) and st[2] in groups}
        assert len(groups) >= 2, "expected the webserver and the daemon under fp-platform ui"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        deadline = time.monotonic() + 30
        while _alive(children) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _alive(children), f"processes outlived fp-platform ui: {sorted(_alive(children))}"
    finally:
        if proc.poll() is None:
            proc.kill()

"""Local daemons of the spine packs: start, find, stop — the one code path the supervisor uses.

A daemon is a detached process (own session, log under PACK_LOG_DIR_PATTERN) scoped to one run by
REQUIRED_PLATFORM_RUN_ID. Its record (pid, run, command) lives under `.fp/operate/daemons/`; a
daemon running for another run is replaced, one running for this run is reused (one replica).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from fp_platform.contracts.evidence import utc_now_iso
from fp_platform.handles import Handles
from fp_platform.substrate.paths import state_dir

LOCAL_PROCESS = "local_process"  # DAEMON_SUPERVISOR of the local profile


class DaemonError(RuntimeError):
    """A daemon would not start or become ready; the message says why and where its log is."""


class LocalProcessRefused(DaemonError):
    """A cloud profile asked for a local process: its daemons run in ECS (dev_min) or EKS (dev_full)."""


@dataclass(frozen=True)
class DaemonSpec:
    component: str
    pack_id: str
    module: str  # `python -m <module> [args]` entrypoint
    ready_url: str | None = None
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class DaemonRecord:
    component: str
    pack_id: str
    platform_run_id: str
    pid: int
    argv: list[str]
    log: str
    started_at_utc: str


def _records_dir() -> Path:
    return state_dir() / "operate" / "daemons"


def _record_path(component: str) -> Path:
    return _records_dir() / f"{component}.json"


@contextmanager
def _locked(component: str) -> Iterator[None]:
    """An exclusive lock on the component's record across processes (the check, the spawn, the record)."""
    _records_dir().mkdir(parents=True, exist_ok=True)
    with open(_records_dir() / f"{component}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def running(component: str) -> DaemonRecord | None:
    path = _record_path(component)
    if not path.exists():
        return None
    rec = DaemonRecord(**json.loads(path.read_text()))
    return rec if _alive(rec.pid) else None


def ensure(
    h: Handles,
    spec: DaemonSpec,
    platform_run_id: str,
    timeout_s: float = 60.0,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[DaemonRecord, bool]:
    """The daemon of `spec` running for `platform_run_id` and ready; (record, started_now)."""
    current = running(spec.component)
    if current and current.platform_run_id == platform_run_id and ready(spec):
        return current, False
    if current:
        log(f"{spec.component}: replacing pid {current.pid} (run {current.platform_run_id})")
        stop(spec.component)
    return start(h, spec, platform_run_id, timeout_s), True


def start(h: Handles, spec: DaemonSpec, platform_run_id: str, timeout_s: float = 60.0) -> DaemonRecord:
    """Start the daemon of `spec` for the run. Refused while its recorded process lives: writing a new record
    over it would orphan that process, a second consumer nothing supervises (stop or `ensure` first)."""
    if h.get("DAEMON_SUPERVISOR") != LOCAL_PROCESS:  # the backstop: cloud compute never runs on this machine
        raise LocalProcessRefused(
            f"{spec.component}: profile {h.profile} runs daemons as {h.get('DAEMON_SUPERVISOR')}, never as local"
            " processes (spec RPF §1.3)"
        )
    log_dir = state_dir() / h.pattern("PACK_LOG_DIR_PATTERN", platform_run_id=platform_run_id, pack_id=spec.pack_id)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{spec.component}.log"
    argv = [sys.executable, "-m", spec.module, *spec.args]
    env = {**os.environ, h.get("REQUIRED_PLATFORM_RUN_ID_ENV_KEY"): platform_run_id}
    with _locked(spec.component):  # the sensor's tick and P2 may start the same worker at the same moment
        if (current := running(spec.component)) is not None:
            raise DaemonError(
                f"{spec.component} already runs as pid {current.pid} for {current.platform_run_id}; stop it first"
            )
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=os.getcwd()
            )
        rec = DaemonRecord(spec.component, spec.pack_id, platform_run_id, proc.pid, argv, str(log_path), utc_now_iso())
        _record_path(spec.component).write_text(json.dumps(asdict(rec)))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DaemonError(f"{spec.component} exited with {proc.returncode}; see {log_path}")
        if ready(spec):
            return rec
        time.sleep(0.25)
    stop(spec.component)
    raise DaemonError(f"{spec.component} not ready within {timeout_s:.0f}s; see {log_path}")


def ready(spec: DaemonSpec) -> bool:
    """True when the daemon answers its readiness URL (always, for one without)."""
    if spec.ready_url is None:
        return True
    try:
        return httpx.get(spec.ready_url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stop(component: str, timeout_s: float = 15.0) -> bool:
    """SIGTERM (then SIGKILL) the daemon's process group; True if one was running."""
    rec = running(component)
    _record_path(component).unlink(missing_ok=True)
    if rec is None:
        return False
    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(rec.pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _alive(rec.pid):
            time.sleep(0.1)
        if not _alive(rec.pid):
            return True
    return True


def stop_all() -> list[str]:
    stopped = []
    if _records_dir().exists():
        for path in sorted(_records_dir().glob("*.json")):
            if stop(path.stem):
                stopped.append(path.stem)
    return stopped


def runs_worker(argv: list[str], spec: DaemonSpec) -> bool:
    """True when a command line runs the worker (`... -m <module> <args>`), whatever launched it: a local process's
    argv, or an ECS task's entry point and command."""
    wanted = ["-m", spec.module, *spec.args]
    return any(argv[i : i + len(wanted)] == wanted for i in range(len(argv)))


def processes_running(spec: DaemonSpec) -> list[int]:
    """Pids of every live process on this machine running `python -m <module> <args>` — supervised or
    started by hand — so a duplicate consumer cannot hide from P2."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if runs_worker(argv, spec) and _alive(int(proc.name)):
            pids.append(int(proc.name))
    return sorted(pids)

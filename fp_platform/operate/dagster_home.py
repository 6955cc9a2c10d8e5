"""The platform's Dagster instance: DAGSTER_HOME under `.fp/`, storage on the stack's Postgres."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from fp_platform.handles import Handles
from fp_platform.substrate import db
from fp_platform.substrate.paths import project_root, state_dir


def prepare(h: Handles) -> dict[str, str]:
    """Create DAGSTER_HOME with the profile's instance file (DAGSTER_INSTANCE_YAML: the repository's
    dagster.yaml locally, EcsRunLauncher on dev_min) and export the instance env vars."""
    home = state_dir() / str(h.get("DAGSTER_HOME_DIR"))
    home.mkdir(parents=True, exist_ok=True)
    source = project_root() / str(h.get("DAGSTER_INSTANCE_YAML"))
    target = home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)
    env = {
        "DAGSTER_HOME": str(home),
        "FP_DAGSTER_PG_URL": db.url(h, h.get("DB_DAGSTER_NAME"), driver="psycopg2", role=db.OWNER),
        "FP_PROFILE": h.profile,
    }
    os.environ.update(env)
    return env


def serve_ui(h: Handles, host: str, port: int, console: Console) -> int:
    """Run dagster-webserver and dagster-daemon on the platform instance until Ctrl-C or SIGTERM; both stop
    their children before it returns."""
    from fp_platform.substrate import local_stack

    if h.profile == "local":
        local_stack.up(h, progress=lambda m: console.print(f"… {m}"))
    env = {**os.environ, **prepare(h)}
    workspace = str(project_root() / "workspace.yaml")
    bin_dir = Path(sys.executable).parent
    # Each child leads its own process group, so what it spawns (code servers) is stopped with it.
    procs = [
        subprocess.Popen([str(bin_dir / "dagster-daemon"), "run", "-w", workspace], env=env, start_new_session=True),
        subprocess.Popen(
            [str(bin_dir / "dagster-webserver"), "-h", host, "-p", str(port), "-w", workspace],
            env=env,
            start_new_session=True,
        ),
    ]
    console.print(f"Dagster UI on http://{host}:{port} (instance {env['DAGSTER_HOME']}); Ctrl-C stops it")

    def _terminate(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (a service manager, `kill`) stops the children as Ctrl-C does

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        for p in procs:  # whatever a child left behind in its group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGTERM)
    failed = [p.returncode for p in procs if p.returncode not in (0, None, -signal.SIGINT)]
    return failed[0] if failed else 0

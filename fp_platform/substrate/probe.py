"""The worker base's probe surface: a local heartbeat file that Kubernetes can check without the database.

A worker's heartbeat is a Postgres row and evidence files (`heartbeat.py`); a kubelet probe cannot read
either without credentials, and a probe that opens a database connection every few seconds per pod would
load Aurora for nothing. So each heartbeat also rewrites `<state dir>/probe/<component>.json` (one small
local file, atomically replaced), and `python -m fp_platform.substrate.probe <component>` is the exec probe
the Deployments run: it exits 0 only when that file is fresh (liveness: the consume loop still turns) and,
with `--run-id`, when the worker confirmed that run's scope and is GREEN or AMBER (readiness). It imports
nothing but the standard library and `paths`, so a probe costs an interpreter start, not a platform import.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from fp_platform.substrate.paths import state_dir

PROBE_DIR = "probe"
SERVING_STATES = ("GREEN", "AMBER")  # RED and STOPPED are on their way out: not ready


def probe_path(component: str, root: Path | None = None) -> Path:
    """Where `component`'s probe file lives (under FP_STATE_DIR, a writable emptyDir in a pod)."""
    return (root or state_dir()) / PROBE_DIR / f"{component}.json"


def write_probe(component: str, platform_run_id: str, state: str, root: Path | None = None) -> Path:
    """Replace the probe file atomically (write + rename), so a probe never reads half a file."""
    path = probe_path(component, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"component": component, "platform_run_id": platform_run_id, "state": state}))
    os.replace(tmp, path)
    return path


def check(
    component: str, max_age_s: float, run_id: str | None = None, root: Path | None = None, now: float | None = None
) -> str | None:
    """None when the probe passes, else why not: missing, stale, unreadable, another run, not serving."""
    path = probe_path(component, root)
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return f"no heartbeat yet ({path})"
    except (OSError, ValueError) as exc:
        return f"unreadable heartbeat {path}: {exc}"
    if age > max_age_s:
        return f"heartbeat {age:.0f}s old (> {max_age_s:g}s): the worker loop is stuck"
    if run_id is not None:
        if doc.get("platform_run_id") != run_id:
            return f"serving run {doc.get('platform_run_id')!r}, not {run_id!r}"
        if doc.get("state") not in SERVING_STATES:
            return f"health {doc.get('state')!r} is not serving"
    return None


def main(argv: list[str] | None = None) -> int:
    """`python -m fp_platform.substrate.probe COMPONENT --max-age-s S [--run-id R]`: 0 pass, 1 fail (why on stderr)."""
    parser = argparse.ArgumentParser(prog="python -m fp_platform.substrate.probe", description=main.__doc__)
    parser.add_argument("component")
    parser.add_argument("--max-age-s", type=float, required=True, help="older heartbeats fail (liveness)")
    parser.add_argument("--run-id", help="also require this run's scope and a serving health state (readiness)")
    args = parser.parse_args(argv)
    problem = check(args.component, args.max_age_s, args.run_id)
    if problem:
        print(f"{args.component}: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

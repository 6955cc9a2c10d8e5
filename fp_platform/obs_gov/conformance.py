"""Environment conformance: does the running environment meet its profile's expectations?

Checked live, not read from configuration alone: the handles registry is complete and in step with the
other profiles; on the local profile every server the platform started listens on loopback only;
auth is on (S3 and IG refuse an anonymous request, Postgres a wrong password); every table a migration
makes append-only carries its trigger; local secrets are private files. The reporter writes the result
to `obs/environment_conformance.json`; the `environment_conformance` daemon re-checks it between runs.
"""

from __future__ import annotations

import os
import socket
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from fp_platform.handles import PROFILES, Handles, load
from fp_platform.substrate import db, local_stack
from fp_platform.substrate.paths import state_dir
from fp_platform.substrate.secrets import get_secret

LOOPBACK = {"127.0.0.1", "::1"}
LOCAL_PORT_KEYS = (
    "DB_PORT",
    "LOCAL_S3_PORT",
    "LOCAL_S3_ICEBERG_PORT",
    "LOCAL_S3_MASTER_PORT",
    "LOCAL_S3_VOLUME_PORT",
    "LOCAL_S3_FILER_PORT",
    "LOCAL_KAFKA_PORT",
    "IG_PORT",
    "DAGSTER_WEBSERVER_PORT",
)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def _listeners() -> list[tuple[str, int, str]]:
    """(address, port, socket inode) of every listening TCP socket on this host."""
    out = []
    for path, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        if not Path(path).exists():
            continue
        for line in Path(path).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            hex_addr, hex_port = fields[1].split(":")
            raw = bytes.fromhex(hex_addr)
            if family == socket.AF_INET:
                addr = socket.inet_ntop(family, raw[::-1])
            else:
                addr = socket.inet_ntop(family, b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
            out.append((addr, int(hex_port, 16), fields[9]))
    return out


def _socket_inodes(pids: set[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    return inodes


def loopback_only(h: Handles, pids: set[int]) -> Check:
    """Every socket listening on a platform port, or owned by a process the platform started, is loopback."""
    ports = {int(h.get(k)) for k in LOCAL_PORT_KEYS}
    ours = _socket_inodes(pids)
    exposed, seen = [], 0
    for addr, port, inode in _listeners():
        if port in ports or inode in ours:
            seen += 1
            if addr not in LOOPBACK:
                exposed.append(f"{addr}:{port}")
    return Check(
        "loopback_only",
        not exposed and seen > 0,
        f"listening beyond loopback: {', '.join(sorted(exposed))}"
        if exposed
        else f"{seen} platform sockets listen on loopback only"
        if seen
        else "no platform socket found",
    )


def handles_complete(h: Handles) -> Check:
    keys = {p: set(load(p).values) for p in PROFILES}
    drift = {p: sorted(keys[h.profile] ^ k)[:5] for p, k in keys.items() if k != keys[h.profile]}
    endpoints = [k for k in ("S3_ENDPOINT_URL", "IG_BASE_URL") if h.profile == "local" and not h.values.get(k)]
    return Check(
        "handles_complete",
        not drift and not endpoints,
        f"registries differ from {h.profile}: {drift}; missing {endpoints}"
        if drift or endpoints
        else f"{len(keys[h.profile])} handles, the same keys in {', '.join(PROFILES)}",
    )


def auth_enforced(h: Handles) -> list[Check]:
    checks = []
    if h.values.get("S3_ENDPOINT_URL"):
        url = f"{h.get('S3_ENDPOINT_URL')}/{h.get('S3_EVIDENCE_BUCKET')}?list-type=2"
        try:
            code = httpx.get(url, timeout=10).status_code
            checks.append(Check("s3_refuses_anonymous", code in (401, 403), f"anonymous list → HTTP {code}"))
        except httpx.HTTPError as exc:
            checks.append(Check("s3_refuses_anonymous", False, f"S3 unreachable: {exc}"))
    try:
        code = httpx.get(h.get("IG_BASE_URL") + h.get("IG_HEALTHCHECK_PATH"), timeout=10).status_code
        checks.append(Check("ig_refuses_unauthenticated", code == 401, f"health without a key → HTTP {code}"))
    except httpx.HTTPError as exc:
        checks.append(Check("ig_refuses_unauthenticated", False, f"IG unreachable: {exc}"))
    if h.profile == "local":
        info = db.conninfo(h)
        try:
            psycopg.connect(**{**info, "password": "not-the-password"}, connect_timeout=5).close()
            checks.append(Check("postgres_requires_password", False, "a wrong password was accepted"))
        except psycopg.OperationalError as exc:
            refused = "password authentication failed" in str(exc)
            checks.append(
                Check(
                    "postgres_requires_password",
                    refused,
                    "a wrong password is refused" if refused else f"unexpected error: {exc}",
                )
            )
    return checks


def secrets_private(h: Handles) -> Check:
    if h.get("SECRETS_BACKEND") != "local_files":
        return Check("secrets_private", True, f"secrets in {h.get('SECRETS_BACKEND')}")
    root = state_dir() / str(h.get("LOCAL_SECRETS_DIR"))
    files = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    loose = [str(p.relative_to(root)) for p in files if stat.S_IMODE(p.stat().st_mode) & 0o077]
    get_secret(h, "SSM_IG_API_KEY_PATH")  # a missing secret raises with how to fix it
    return Check(
        "secrets_private",
        bool(files) and not loose,
        f"readable by others: {loose}" if loose else f"{len(files)} secret files, mode 0600",
    )


def append_only_enforced(conn: psycopg.Connection) -> Check:
    """Each declared table's triggers exist, fire, and call the shipped guard function (a disabled
    trigger or a replaced function fails here, not only a missing name)."""
    declared = db.declared_append_only()
    problems = db.append_only_problems(conn, declared)
    return Check(
        "append_only_triggers",
        not problems,
        "; ".join(f"{t}: {why}" for t, why in sorted(problems.items())[:10])
        if problems
        else f"{len(declared)} truth tables refuse UPDATE/DELETE/TRUNCATE",
    )


def app_role_least_privilege(h: Handles, conn: psycopg.Connection) -> Check:
    """The platform connects as the application role, and that role cannot rewrite truth: no superuser,
    owns nothing, no UPDATE/DELETE/TRUNCATE/TRIGGER on an append-only table, no CREATE, cannot SET
    session_replication_role."""
    problems = db.app_role_problems(h, conn)
    user = conn.execute("SELECT current_user").fetchone()[0]
    expected = db.conninfo(h)["user"]
    if user != expected:
        problems.insert(0, f"the platform connects as {user!r}, not the application role {expected!r}")
    return Check(
        "db_app_role_least_privilege",
        not problems,
        "; ".join(problems) if problems else f"{expected}: SELECT/INSERT only on truth tables, owns nothing",
    )


def platform_pids(h: Handles, conn: psycopg.Connection) -> set[int]:
    """The local stack's processes and every worker that has a heartbeat on this host."""
    pids = {s.pid for s in local_stack.status(h) if s.pid}
    return pids | {
        pid for (pid,) in conn.execute("SELECT pid FROM worker_heartbeats WHERE host = %s", (socket.gethostname(),))
    }


def check(h: Handles, conn: psycopg.Connection) -> dict[str, Any]:
    """The conformance document: every check, and status PASS only when all hold."""
    checks = [
        handles_complete(h),
        *auth_enforced(h),
        append_only_enforced(conn),
        app_role_least_privilege(h, conn),
        secrets_private(h),
    ]
    if h.profile == "local":
        checks.insert(1, loopback_only(h, platform_pids(h, conn)))
    return {
        "profile": h.profile,
        "status": "PASS" if all(c.passed for c in checks) else "FAIL",
        "checks": [asdict(c) for c in checks],
        "failed": [c.name for c in checks if not c.passed],
    }

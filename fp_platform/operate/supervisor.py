"""The local supervisor: keeps each worker of the spine packs running for the active run.

`reconcile` compares desired (every built worker of the packs, scoped to the run) with running
(daemon records + live pids + heartbeat rows in Postgres), starts what is missing, replaces what
serves another run and restarts what died, with exponential backoff between restarts of a worker
that keeps dying. The Dagster sensor, P2, P8 and `fp-platform operate` all call it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from fp_platform.handles import Handles
from fp_platform.operate import daemons, ecs_services
from fp_platform.operate.packs import SPINE_PACKS, Hosted, Pack, daemon_spec, daemon_specs, pack, spec_for
from fp_platform.operate.settings import SupervisorSettings
from fp_platform.substrate import residuals
from fp_platform.substrate.settings import WorkerSettings

RUNNING, STARTED, RESTARTED = "RUNNING", "STARTED", "RESTARTED"
BACKOFF, STOPPED, FAILED = "BACKOFF", "STOPPED", "FAILED"


@dataclass
class WorkerStatus:
    pack_id: str
    component: str
    state: str
    platform_run_id: str | None = None
    pid: int | None = None
    restarts: int = 0
    health_state: str | None = None
    heartbeat_age_s: float | None = None
    heartbeat_run_id: str | None = None
    log: str | None = None
    detail: str = ""

    @property
    def up(self) -> bool:
        return self.state in (RUNNING, STARTED, RESTARTED)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def backoff_s(h: Handles, restarts: int) -> float:
    base = SupervisorSettings.load(h).restart_backoff_base_seconds
    return min(SupervisorSettings.load(h).restart_backoff_max_seconds, base * 2 ** max(0, restarts - 1))


def _state_row(conn: psycopg.Connection, component: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT platform_run_id, pid, restarts, next_start_after FROM supervision_state WHERE component = %s",
        (component,),
    ).fetchone()
    return (
        None if row is None else dict(zip(("platform_run_id", "pid", "restarts", "next_start_after"), row, strict=True))
    )


def _save(
    conn: psycopg.Connection,
    component: str,
    pack_id: str,
    run_id: str,
    pid: int | None,
    restarts: int,
    last_exit: str | None,
    next_start_after: datetime | None,
) -> None:
    conn.execute(
        "INSERT INTO supervision_state (component, pack_id, platform_run_id, pid, restarts, last_start_at, last_exit,"
        " next_start_after) VALUES (%s, %s, %s, %s, %s, now(), %s, %s) ON CONFLICT (component) DO UPDATE SET"
        " pack_id = EXCLUDED.pack_id, platform_run_id = EXCLUDED.platform_run_id, pid = EXCLUDED.pid,"
        " restarts = EXCLUDED.restarts, last_start_at = now(), last_exit = EXCLUDED.last_exit,"
        " next_start_after = EXCLUDED.next_start_after",
        (component, pack_id, run_id, pid, restarts, last_exit, next_start_after),
    )


def heartbeats(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        "SELECT component, platform_run_id, pid, health_state, consumer_group, counters,"
        " extract(epoch FROM now() - beat_at) FROM worker_heartbeats"
    ).fetchall()
    return {
        r[0]: {
            "platform_run_id": r[1],
            "pid": r[2],
            "health_state": r[3],
            "consumer_group": r[4],
            "counters": r[5],
            "age_s": float(r[6]),
        }
        for r in rows
    }


def _with_heartbeat(st: WorkerStatus, beat: dict[str, Any] | None) -> WorkerStatus:
    if beat and st.pid is not None and beat["pid"] == st.pid:  # a beat from this process, not a predecessor
        st.health_state, st.heartbeat_age_s, st.heartbeat_run_id = (
            beat["health_state"],
            round(beat["age_s"], 1),
            beat["platform_run_id"],
        )
    return st


ECS_SERVICE = "ecs_service"  # DAEMON_SUPERVISOR of dev_min
K8S_DEPLOYMENT = residuals.K8S_DEPLOYMENT  # DAEMON_SUPERVISOR of dev_full: operate/k8s_supervisor.py


class SupervisorError(RuntimeError):
    """The profile's daemons run somewhere this supervisor cannot act on."""


def _backend(h: Handles) -> str:
    """`local_process`, `ecs_service` or `k8s_deployment`; anything else fails."""
    backend = h.get("DAEMON_SUPERVISOR")
    if backend not in (daemons.LOCAL_PROCESS, ECS_SERVICE, K8S_DEPLOYMENT):
        raise SupervisorError(f"profile {h.profile}: DAEMON_SUPERVISOR={backend} is not supervised from here")
    return backend


def _k8s():  # imported on use: operate/k8s_supervisor.py builds on this module's WorkerStatus
    from fp_platform.operate import k8s_supervisor

    return k8s_supervisor


def _ecs_statuses(
    h: Handles, conn: psycopg.Connection | None, packs: tuple[Pack, ...], run_id: str | None = None
) -> list[WorkerStatus]:
    """Each worker's ECS service as a status; its heartbeat (from the database, when given) when it beats for
    the run."""
    services = ecs_services.describe(h, packs)
    beats = heartbeats(conn) if conn is not None else {}
    out = []
    for spec in daemon_specs(h, packs):
        s = services.get(spec.component)
        # RUNNING once a task runs and no rollout is under way (during one, runningCount counts old tasks too)
        state = STOPPED if not s or not s["desired"] else (RUNNING if s["running"] and not s["rolling"] else STARTED)
        detail = f"ecs {s}" if s else "no ECS service"
        if s and run_id is not None and s["platform_run_id"] != run_id:
            state = FAILED  # a worker of another run (or of none) would consume for the wrong run
            serves = f"run {s['platform_run_id']}" if s["platform_run_id"] else "no run (no run-id variable)"
            detail = (
                f"ecs service {s['service']} serves {serves} (task definition {s['task_definition']}), not"
                f" {run_id}: apply the demo stack for this run"
            )
        st = WorkerStatus(spec.pack_id, spec.component, state, s["platform_run_id"] if s else run_id, detail=detail)
        beat = beats.get(spec.component)
        if beat and (run_id is None or beat["platform_run_id"] == run_id):
            st.health_state, st.heartbeat_age_s, st.heartbeat_run_id = (
                beat["health_state"],
                round(beat["age_s"], 1),
                beat["platform_run_id"],
            )
        out.append(st)
    return out


def reconcile(
    h: Handles,
    conn: psycopg.Connection | None,
    platform_run_id: str,
    packs: tuple[Pack, ...] = SPINE_PACKS,
    log: Callable[[str], None] = lambda _: None,
) -> list[WorkerStatus]:
    """Make every worker of `packs` run for `platform_run_id`; return what each is doing now. On dev_min the
    workers are ECS services (scaled to one task, scoped to the run by their task definition)."""
    if _backend(h) == K8S_DEPLOYMENT:  # dev_full: EKS Deployments through the Kubernetes API
        return _k8s().reconcile(h, conn, platform_run_id, packs, log=log)
    if _backend(h) == ECS_SERVICE:
        started = ecs_services.scale(h, 1, packs, only_run=platform_run_id)
        if started:
            log(f"ECS services scaled to 1: {', '.join(started)}")
        return _ecs_statuses(h, conn, packs, platform_run_id)
    assert conn is not None, "local supervision state lives in the database"
    out = []
    beats = heartbeats(conn)
    hosts: dict[str, WorkerStatus] = {}
    for p in packs:
        for w in p.workers:
            spec = daemon_spec(h, p, w)
            hosts[spec.component] = _reconcile_one(h, conn, spec, platform_run_id, log)
            out.append(_with_heartbeat(hosts[spec.component], beats.get(spec.component)))
    for p in packs:
        for x in p.hosted:
            spec = spec_for(h, x.host_key)
            if spec.component not in hosts:  # its host is in a pack not reconciled here: keep it running too
                hosts[spec.component] = _reconcile_one(h, conn, spec, platform_run_id, log)
            out.append(_with_heartbeat(_hosted(h, p, x, hosts[spec.component]), beats.get(h.get(x.component_key))))
    return out


def _hosted(h: Handles, p: Pack, x: Hosted, host: WorkerStatus) -> WorkerStatus:
    """A hosted component's status: its host's process, its own heartbeat (matched on the host's pid)."""
    return WorkerStatus(
        h.get(p.pack_key),
        h.get(x.component_key),
        host.state,
        host.platform_run_id,
        host.pid,
        host.restarts,
        log=host.log,
        detail=f"hosted by {host.component} {host.detail}".strip(),
    )


def _reconcile_one(
    h: Handles, conn: psycopg.Connection, spec: daemons.DaemonSpec, run_id: str, log: Callable[[str], None]
) -> WorkerStatus:
    rec = daemons.running(spec.component)
    row = _state_row(conn, spec.component)
    same_run = row is not None and row["platform_run_id"] == run_id
    restarts = row["restarts"] if same_run else 0
    if rec and rec.platform_run_id == run_id:
        return WorkerStatus(spec.pack_id, spec.component, RUNNING, run_id, rec.pid, restarts, log=rec.log)
    if rec:
        log(f"{spec.component}: serves {rec.platform_run_id}; replacing it for {run_id}")
        daemons.stop(spec.component)
    died = same_run and row["pid"] is not None
    now = datetime.now(UTC)
    if died and row["next_start_after"] is not None and now < row["next_start_after"]:
        wait = (row["next_start_after"] - now).total_seconds()
        return WorkerStatus(
            spec.pack_id, spec.component, BACKOFF, run_id, None, restarts, detail=f"died; restart in {wait:.1f}s"
        )
    if died:
        restarts += 1
        log(f"{spec.component}: pid {row['pid']} is gone; restart #{restarts}")
    try:
        new = daemons.start(h, spec, run_id)
    except daemons.DaemonError as exc:
        _save(
            conn,
            spec.component,
            spec.pack_id,
            run_id,
            None,
            restarts + 1,
            str(exc),
            now + timedelta(seconds=backoff_s(h, restarts + 1)),
        )
        return WorkerStatus(spec.pack_id, spec.component, FAILED, run_id, None, restarts + 1, detail=str(exc))
    _save(
        conn,
        spec.component,
        spec.pack_id,
        run_id,
        new.pid,
        restarts,
        f"pid {row['pid']} exited" if died else None,
        now + timedelta(seconds=backoff_s(h, restarts + 1)),
    )
    return WorkerStatus(
        spec.pack_id, spec.component, RESTARTED if died else STARTED, run_id, new.pid, restarts, log=new.log
    )


def status(h: Handles, conn: psycopg.Connection, packs: tuple[Pack, ...] = SPINE_PACKS) -> list[WorkerStatus]:
    """What runs now, without starting anything."""
    if _backend(h) == K8S_DEPLOYMENT:
        return _k8s().status(h, conn, packs)
    if _backend(h) == ECS_SERVICE:
        return _ecs_statuses(h, conn, packs)
    beats = heartbeats(conn)
    out = []
    hosts: dict[str, WorkerStatus] = {}
    for p in packs:
        for w in p.workers:
            spec = daemon_spec(h, p, w)
            rec = daemons.running(spec.component)
            row = _state_row(conn, spec.component)
            st = WorkerStatus(
                spec.pack_id,
                spec.component,
                RUNNING if rec else STOPPED,
                rec.platform_run_id if rec else None,
                rec.pid if rec else None,
                row["restarts"] if row else 0,
                log=rec.log if rec else None,
            )
            out.append(_with_heartbeat(st, beats.get(spec.component)))
            hosts[spec.component] = st
    for p in packs:
        for x in p.hosted:
            spec = spec_for(h, x.host_key)
            if spec.component not in hosts:
                rec = daemons.running(spec.component)
                hosts[spec.component] = WorkerStatus(
                    spec.pack_id,
                    spec.component,
                    RUNNING if rec else STOPPED,
                    rec.platform_run_id if rec else None,
                    rec.pid if rec else None,
                    log=rec.log if rec else None,
                )
            out.append(_with_heartbeat(_hosted(h, p, x, hosts[spec.component]), beats.get(h.get(x.component_key))))
    return out


def down(
    h: Handles, conn: psycopg.Connection | None, packs: tuple[Pack, ...] = SPINE_PACKS, only_run: str | None = None
) -> list[str]:
    """Stop every worker of `packs` (SIGTERM, then SIGKILL; on dev_min its ECS service to zero tasks, on dev_full
    its Deployment to zero replicas) and forget their supervision state. With `only_run`, a worker serving
    another run is left alone, whatever the profile (a closed run's teardown must not stop the next run's)."""
    if _backend(h) == K8S_DEPLOYMENT:
        return _k8s().down(h, packs, only_run=only_run)
    if _backend(h) == ECS_SERVICE:
        return ecs_services.scale(h, 0, packs, only_run=only_run)
    stopped = []
    for p in packs:
        for w in p.workers:
            component = h.get(w.component_key)
            rec = daemons.running(component)
            if only_run is not None and rec is not None and rec.platform_run_id != only_run:
                continue
            if daemons.stop(component):
                stopped.append(component)
            assert conn is not None, "local supervision state lives in the database"
            conn.execute(
                "DELETE FROM supervision_state WHERE component = %s AND (%s::text IS NULL OR platform_run_id = %s)",
                (component, only_run, only_run),
            )
    return stopped


def wait_until(
    done: Callable[[], tuple[bool, str]], timeout_s: float, tick: Callable[[], None], log: Callable[[str], None]
) -> tuple[bool, float]:
    """Call `tick` (supervision) and poll `done` until it holds or the timeout; (held, seconds waited)."""
    started = time.monotonic()
    last_log = 0.0
    while True:
        tick()
        ok, progress = done()
        if ok or time.monotonic() - started > timeout_s:
            return ok, round(time.monotonic() - started, 1)
        if time.monotonic() - last_log > 10:
            last_log = time.monotonic()
            log(f"waiting: {progress}")
        time.sleep(1.0)


def supervise_until(
    h: Handles,
    conn: psycopg.Connection,
    run_id: str,
    packs: tuple[Pack, ...],
    done: Callable[[], tuple[bool, str]],
    timeout_s: float,
    log: Callable[[str], None],
) -> tuple[bool, float]:
    """Keep `packs` supervised for the run until `done` holds or the timeout, then wait out one heartbeat so
    the workers' health reflects their last batch; (held, seconds waited)."""
    held = wait_until(done, timeout_s, lambda: reconcile(h, conn, run_id, packs, log=log), log)
    time.sleep(WorkerSettings.load(h).heartbeat_interval_seconds + 0.5)
    return held


def unhealthy(h: Handles, conn: psycopg.Connection, pack_key: str, *component_keys: str) -> list[str]:
    """Problems of the named workers (handle keys) of a pack: not running, not GREEN, or a stale heartbeat."""
    stale = WorkerSettings.load(h).heartbeat_stale_seconds
    components = {h.get(k) for k in component_keys}
    return [
        f"{s.component}: {s.state} {s.health_state} beat {s.heartbeat_age_s}s"
        for s in status(h, conn, (pack(h, h.get(pack_key)),))
        if s.component in components
        and not (s.up and s.health_state == "GREEN" and s.heartbeat_age_s is not None and s.heartbeat_age_s <= stale)
    ]

"""dev_min's daemons: one ECS service per spine worker (Terraform demo creates them at desiredCount 1 for
the run it was applied with). The supervisor acts on them through the ECS API only — start is
`desiredCount = 1`, stop is `desiredCount = 0`, status is `describe_services` — so no worker ever runs on
the operator's machine (spec RPF §1.3: no laptop compute).
"""

from __future__ import annotations

from typing import Any

from fp_platform.handles import Handles
from fp_platform.operate.daemons import runs_worker
from fp_platform.operate.packs import SPINE_PACKS, Pack, daemon_specs
from fp_platform.substrate import residuals


def components(h: Handles, packs: tuple[Pack, ...] = SPINE_PACKS) -> list[str]:
    return [s.component for s in daemon_specs(h, packs)]


def describe(h: Handles, packs: tuple[Pack, ...] = SPINE_PACKS) -> dict[str, dict[str, Any]]:
    """component -> the ECS service's status, desired and running counts, and the run its task definition
    serves (absent: not in the answer)."""
    ecs = residuals.aws_client(h, "ecs")
    by_name = {residuals.ecs_service_name(h, c): c for c in components(h, packs)}
    names = list(by_name)
    out = {}
    for i in range(0, len(names), 10):  # describe_services takes at most 10
        resp = ecs.describe_services(cluster=h.get("ECS_CLUSTER_NAME"), services=names[i : i + 10])
        for s in resp.get("services", []):
            arn = s.get("taskDefinition")
            out[by_name[s["serviceName"]]] = {
                "service": s["serviceName"],
                "status": s.get("status"),
                "desired": s.get("desiredCount", 0),
                "running": s.get("runningCount", 0),
                "task_definition": arn,
                "platform_run_id": residuals.served_run(h, residuals.task_definition(ecs, arn)) if arn else None,
                # a rollout in progress: runningCount may still count the previous task definition's tasks
                "rolling": len(s.get("deployments", [])) > 1,
            }
    return out


def scale(h: Handles, desired: int, packs: tuple[Pack, ...] = SPINE_PACKS, only_run: str | None = None) -> list[str]:
    """Set every worker's service to `desired` tasks; returns the services changed (those already there and
    those absent are left alone). With `only_run`, only the services whose task definition serves that run: a
    service scoped to another run is never started for this one, nor stopped by this one's teardown."""
    ecs = residuals.aws_client(h, "ecs")
    changed = []
    for component, s in describe(h, packs).items():
        if only_run is not None and s["platform_run_id"] != only_run:
            continue
        if s["status"] == "ACTIVE" and s["desired"] != desired:
            ecs.update_service(cluster=h.get("ECS_CLUSTER_NAME"), service=s["service"], desiredCount=desired)
            changed.append(component)
    return changed


def _command_lines(ecs: Any, task: dict[str, Any]) -> list[list[str]]:
    """Each container's command line in a task: its definition's entry point and command, the command replaced
    by the task's override where `run_task` gave one (ECS appends the command to the entry point)."""
    overrides = {o["name"]: o for o in task.get("overrides", {}).get("containerOverrides", [])}
    lines = []
    for c in residuals.task_definition(ecs, task["taskDefinitionArn"])["containerDefinitions"]:
        command = overrides.get(c["name"], {}).get("command") or c.get("command") or []
        lines.append([*c.get("entryPoint", []), *command])
    return lines


def worker_tasks(h: Handles, packs: tuple[Pack, ...] = SPINE_PACKS) -> dict[str, list[str]]:
    """component -> the ids of every task of the cluster that runs (or is starting to run) the worker's command,
    whichever service, task definition or hand-made `run-task` started it: on ECS there is no process list, and
    a second consumer of the worker's group is a second task (spec P2.2, one replica per worker)."""
    ecs = residuals.aws_client(h, "ecs")
    cluster = h.get("ECS_CLUSTER_NAME")
    arns = [
        arn
        for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, desiredStatus="RUNNING")
        for arn in page["taskArns"]
    ]
    tasks = [
        t
        for i in range(0, len(arns), 100)
        for t in ecs.describe_tasks(cluster=cluster, tasks=arns[i : i + 100])["tasks"]
    ]
    specs = daemon_specs(h, packs)
    out: dict[str, list[str]] = {s.component: [] for s in specs}
    for task in tasks:
        lines = _command_lines(ecs, task)
        for spec in specs:
            if any(runs_worker(line, spec) for line in lines):
                out[spec.component].append(task["taskArn"].rsplit("/", 1)[-1])
    return {c: sorted(ids) for c, ids in out.items()}

"""dev_min's daemons: one ECS service per spine worker (Terraform demo creates them at desiredCount 1 for
the run it was applied with). The supervisor acts on them through the ECS API only — start is
`desiredCount = 1`, stop is `desiredCount = 0`, status is `describe_services` — so no worker ever runs on
the operator's machine (spec RPF §1.3: no laptop compute).
"""

from __future__ import annotations

from typing import Any

from fp_platform.handles import Handles
from fp_platform.operate.packs import SPINE_PACKS, Pack, daemon_specs
from fp_platform.substrate import residuals


def components(h: Handles, packs: tuple[Pack, ...] = SPINE_PACKS) -> list[str]:
    return [s.component for s in daemon_specs(h, packs)]


def describe(h: Handles, packs: tuple[Pack, ...] = SPINE_PACKS) -> dict[str, dict[str, Any]]:
    """component -> the ECS service's status, desired and running counts (absent: not in the answer)."""
    ecs = residuals.aws_client(h, "ecs")
    by_name = {residuals.ecs_service_name(h, c): c for c in components(h, packs)}
    names = list(by_name)
    out = {}
    for i in range(0, len(names), 10):  # describe_services takes at most 10
        resp = ecs.describe_services(cluster=h.get("ECS_CLUSTER_NAME"), services=names[i : i + 10])
        for s in resp.get("services", []):
            out[by_name[s["serviceName"]]] = {
                "service": s["serviceName"],
                "status": s.get("status"),
                "desired": s.get("desiredCount", 0),
                "running": s.get("runningCount", 0),
                "task_definition": s.get("taskDefinition"),
            }
    return out


def scale(h: Handles, desired: int, packs: tuple[Pack, ...] = SPINE_PACKS) -> list[str]:
    """Set every worker's service to `desired` tasks; returns the services changed (those already there and
    those absent are left alone)."""
    ecs = residuals.aws_client(h, "ecs")
    changed = []
    for component, s in describe(h, packs).items():
        if s["status"] == "ACTIVE" and s["desired"] != desired:
            ecs.update_service(cluster=h.get("ECS_CLUSTER_NAME"), service=s["service"], desiredCount=desired)
            changed.append(component)
    return changed

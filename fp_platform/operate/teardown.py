"""P17 TEARDOWN_IDLE_SAFE (dev_min's P12): leave nothing running or billing for a closed run, keep its evidence.

In order: stop the run's daemons (local processes, dev_min's ECS services to zero tasks, dev_full's EKS
Deployments to zero replicas and the run's leftover job pods deleted), destroy the per-run stack where the
profile has one (dev_min's demo: `terraform destroy` of TF_STACK_DEMO_DIR, through `terraform_destroy`, which
the tests point at moto), then prove it from the outside: the run's daemons are gone, a tag-based residual
scan (tagging API + the profile's describes: ECS/RDS on dev_min; Aurora, MSK, EKS node groups, SageMaker
endpoints on dev_full; NAT/LB everywhere) finds nothing cost-bearing outside the profile's pinned always-on
set (TEARDOWN_ALWAYS_ON: dev_full's EKS, MSK and Aurora host the orchestrator itself), the demo's SSM
credentials are gone (dev_min), and every JSON evidence file of the run still reads back. The gates
(`operate.gates.TEARDOWN`) judge the document; `teardown_proof.json`, `residual_scan.json` and
`cost_guardrail_snapshot.json` record it.

Locally the stack (SeaweedFS, Tansu, Postgres) is shared by every run and outlives them: teardown stops the
run's workers, which otherwise keep polling after the run closed.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from fp_platform.contracts.evidence import EvidenceError, EvidenceWriter, utc_now_iso
from fp_platform.contracts.phases import P17
from fp_platform.handles import Handles
from fp_platform.operate import daemons, ecs_services, k8s, k8s_supervisor, supervisor
from fp_platform.operate.packs import SPINE_PACKS, daemon_specs
from fp_platform.operate.substrate_ready import secret_path_keys
from fp_platform.substrate import residuals
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.paths import project_root

Doc = dict[str, Any]
Destroy = Callable[[Handles], Doc]


def terraform_destroy(h: Handles, *extra_args: str, env: dict[str, str] | None = None, timeout_s: float = 1800) -> Doc:
    """`terraform destroy` of the demo stack (TF_STACK_DEMO_DIR, initialised with its backend). The operator's
    variables come from the environment (TF_VAR_*), as for apply; `extra_args`/`env` let the tests aim it
    at moto. Returns the outcome; never raises for a failed destroy (the gate judges it)."""
    stack = project_root() / str(h.get("TF_STACK_DEMO_DIR"))
    return run_terraform_destroy(stack, *extra_args, env=env, timeout_s=timeout_s)


def run_terraform_destroy(stack: Path, *extra_args: str, env: dict[str, str] | None = None, timeout_s: float) -> Doc:
    argv = ["terraform", f"-chdir={stack}", "destroy", "-auto-approve", "-input=false", "-no-color", *extra_args]
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s, env={**os.environ, **(env or {})}
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"stack": str(stack), "succeeded": False, "returncode": None, "tail": f"{type(exc).__name__}: {exc}"}
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
    return {"stack": str(stack), "succeeded": proc.returncode == 0, "returncode": proc.returncode, "tail": tail}


def _p2_pids(h: Handles, writer: EvidenceWriter) -> list[int]:
    """Every worker process P2 recorded for the run (none when P2 never ran)."""
    try:
        ready = writer.read(h.get("DAEMONS_READY_PATH_PATTERN"))
    except EvidenceError:
        return []
    return [pid for p in ready["packs"] for w in p["workers"] for pid in w["processes"]]


def stop_daemons(h: Handles, platform_run_id: str, connect: Callable[[], psycopg.Connection]) -> Doc:
    """Stop the run's daemons: on dev_min their ECS services go to zero tasks, on dev_full their Deployments to
    zero replicas and the run's leftover job pods are deleted (no database needed); locally the workers serving
    this run are stopped and their supervision rows dropped."""
    deleted: list[str] = []
    try:
        if h.get("DAEMON_SUPERVISOR") == daemons.LOCAL_PROCESS:
            with connect() as conn:
                conn.autocommit = True
                stopped = supervisor.down(h, conn, only_run=platform_run_id)
        else:
            stopped = supervisor.down(h, None, only_run=platform_run_id)
        if h.get("DAEMON_SUPERVISOR") == supervisor.K8S_DEPLOYMENT:
            deleted = k8s_supervisor.delete_run_pods(h, platform_run_id)
    except Exception as exc:  # recorded; the daemons gate then looks for survivors itself
        return {"stopped": [], "deleted_pods": deleted, "error": residuals.scan_error(exc)}
    return {"stopped": stopped, "deleted_pods": deleted, "error": None}


def _alive(
    h: Handles, platform_run_id: str, components: list[str], pids: list[int], settle: bool = True
) -> list[residuals.Residual]:
    """The run's daemons still alive: its Deployments and job pods on EKS (dev_full; with `settle`, once the
    pods that were just told to go had their grace period), else processes or ECS services
    (`residuals.run_daemons_alive`)."""
    if h.get("DAEMON_SUPERVISOR") == supervisor.K8S_DEPLOYMENT:
        scan = partial(k8s_supervisor.run_workloads, h, platform_run_id, SPINE_PACKS)
        return _settled(scan) if settle else scan()
    return residuals.run_daemons_alive(h, platform_run_id, components, pids)


def workloads_at_verdict(h: Handles, writer: EvidenceWriter) -> Doc:
    """P16's teardown-lane monitor (`verdict/workloads_at_verdict.json`): what still serves the run when its
    verdict is judged, by the scan P17 uses (locally P2's and every live worker process, ECS services on
    dev_min, Deployments and job pods on dev_full), taken by P16's asset because only operate can render the
    packs. Under `run --full` the verification run has taken the workers over by then; P17 itself comes after
    the verdict (spec P17 entry gate)."""
    components = [s.component for s in daemon_specs(h, SPINE_PACKS)]
    run_id = writer.platform_run_id
    pids = _run_pids(h, writer)
    scan = _scan(lambda: _alive(h, run_id, components, pids, settle=False))
    return {"env": h.profile, "scanned_at_utc": utc_now_iso(), "components": components, "recorded_pids": pids, **scan}


SETTLE_S = k8s.GRACE_S + 30  # a pod's termination grace period, and the controller's reaction time
SETTLE_POLL_S = 5.0


def _settled(scan: Callable[[], list[residuals.Residual]]) -> list[residuals.Residual]:
    """What `scan` still finds once the cluster has acted: a scale to zero and a pod delete return at once, and
    the pods then terminate within their grace period; the last scan after SETTLE_S is the verdict."""
    deadline = time.monotonic() + SETTLE_S
    while (found := scan()) and time.monotonic() < deadline:
        time.sleep(SETTLE_POLL_S)
    return found


def cloud_scan(h: Handles, components: list[str]) -> Doc:
    """The residual scan of a cloud profile: what is cost-bearing and tagged, apart from the profile's pinned
    always-on set (listed too, so the proof shows what keeps billing by design)."""
    try:
        found = residuals.cloud_residuals(h, components)
    except Exception as exc:  # a scan that cannot see fails its gate closed
        return {"error": residuals.scan_error(exc), "found": [], "always_on": []}
    return {
        "error": None,
        "found": [r.to_dict() for r in found if not residuals.always_on(h, r)],
        "always_on": [r.to_dict() for r in found if residuals.always_on(h, r)],
    }


def _live_pids(h: Handles) -> list[int]:
    """Every process on this machine running a spine worker's entrypoint, supervised or started by hand."""
    return [pid for spec in daemon_specs(h) for pid in daemons.processes_running(spec)]


def _run_pids(h: Handles, writer: EvidenceWriter) -> list[int]:
    """The processes to look at for the run: those P2 recorded and, locally, every live worker process (one the
    supervisor restarted after P2 has a new pid); which of them serve the run is their environment's call."""
    return sorted(set(_p2_pids(h, writer) + ([] if h.profile != "local" else _live_pids(h))))


def _scan(probe: Callable[[], list[residuals.Residual]]) -> Doc:
    try:
        return {"error": None, "found": [r.to_dict() for r in probe()]}
    except Exception as exc:  # a scan that cannot see fails its gate closed
        return {"error": residuals.scan_error(exc), "found": []}


def evidence_readback(writer: EvidenceWriter, own: tuple[str, ...] = ()) -> Doc:
    """Every JSON evidence file of the run read back through the evidence reader (required fields, run id); the
    count leaves out the teardown's `own` files (a run with no evidence of its own has proven nothing)."""
    try:
        names, unreadable = writer.read_back()
    except Exception as exc:
        return {"files": 0, "unreadable": [residuals.scan_error(exc)]}
    return {"files": len([n for n in names if n not in own]), "unreadable": unreadable}


def cost_snapshot(h: Handles) -> Doc:
    """The budget's actual and forecast spend (cloud), or the local statement that nothing here bills."""
    if h.profile == "local":
        return {"scope": "local", "billing": "none: local processes and files only"}
    try:
        account = residuals.aws_client(h, "sts").get_caller_identity()["Account"]
        budget = residuals.aws_client(h, "budgets").describe_budget(
            AccountId=account, BudgetName=h.get("AWS_BUDGET_NAME")
        )
        b = budget["Budget"]
        return {
            "scope": f"aws {account}",
            "budget": b["BudgetName"],
            "limit": b.get("BudgetLimit"),
            "actual_spend": (b.get("CalculatedSpend") or {}).get("ActualSpend"),
            "forecast_spend": (b.get("CalculatedSpend") or {}).get("ForecastedSpend"),
            "error": None,
        }
    except Exception as exc:
        return {"scope": "aws", "budget": h.values.get("AWS_BUDGET_NAME"), "error": residuals.scan_error(exc)}


def demo_credentials(h: Handles) -> Doc:
    """Which of the per-run stack's SSM credentials are still there (destroy removes them)."""
    keys = secret_path_keys(h)
    try:
        return {"checked": [h.get(k) for k in keys], "present": residuals.ssm_present(h, keys), "error": None}
    except Exception as exc:
        return {"checked": [h.get(k) for k in keys], "present": [], "error": residuals.scan_error(exc)}


def teardown_facts(
    h: Handles,
    writer: EvidenceWriter,
    connect: Callable[[], psycopg.Connection],
    destroy: Destroy | None = terraform_destroy,
) -> Doc:
    """Tear the run down and gather what P17's gates judge. `destroy` runs where the profile has a per-run stack
    (None: the demo stack is left to the operator, and its gate fails)."""
    run_id = writer.platform_run_id
    components = [s.component for s in daemon_specs(h, SPINE_PACKS)]
    # first: the pack supervisor brings nothing back for the run from here on (it would undo the scale-down)
    writer.write_summary(h.get("TEARDOWN_STARTED_PATH_PATTERN"), {"started_at_utc": utc_now_iso()}, phase_id=P17)
    stopped = stop_daemons(h, run_id, connect)
    cloud = h.profile != "local"
    per_run_stack = cloud and bool(h.values.get("TF_STACK_DEMO_DIR"))  # null: the profile has none
    if per_run_stack:
        others = _stack_serves_another_run(h, run_id)
        if others:
            serves = ", ".join(others)
            demo = {"succeeded": False, "tail": [f"not destroyed: the demo stack serves {serves}, not {run_id}"]}
        else:
            demo = destroy(h) if destroy else {"succeeded": False, "tail": ["no destroy function given"]}
    elif cloud:
        demo = {
            "applicable": False,
            "succeeded": True,
            "detail": f"{h.profile}: no per-run stack; the packs are scaled to zero and the runtime that hosts the"
            " orchestrator stays (TEARDOWN_ALWAYS_ON)",
        }
    else:
        demo = {"applicable": False, "succeeded": True, "detail": "local: the stack is shared and outlives runs"}
    pids = _run_pids(h, writer)
    alive = _scan(lambda: _alive(h, run_id, components, pids))
    residual = cloud_scan(h, components) if cloud else {**alive, "scope": "local processes"}
    credentials = demo_credentials(h) if per_run_stack else {"detail": f"{h.profile}: no per-run credentials"}
    return {
        "env": h.profile,
        "torn_down_at_utc": utc_now_iso(),
        "daemons": {**stopped, "recorded_pids": pids, "alive": alive},
        "demo_stack": {"applicable": per_run_stack, **demo},
        "residuals": residual,
        "credentials": {"applicable": per_run_stack, **credentials},
        "evidence": evidence_readback(writer, own=(h.get("TEARDOWN_STARTED_PATH_PATTERN"),)),
        "cost": cost_snapshot(h),
    }


def torn_down(h: Handles, platform_run_id: str) -> bool:
    """P17 began (its first act is the started marker) or ended for the run: nothing may bring it back."""
    writer = run_evidence(h, platform_run_id)
    return writer.exists(h.get("TEARDOWN_STARTED_PATH_PATTERN")) or writer.exists(h.get("TEARDOWN_PROOF_PATH_PATTERN"))


def _stack_serves_another_run(h: Handles, run_id: str) -> list[str]:
    """The other runs (or an unreadable state) dev_min's demo stack serves: its services' task definitions name
    the run it was applied for, and only that run's teardown destroys it (a late or failed run's teardown would
    otherwise take the next run's cluster, database and orchestrator down). No cluster: nothing to protect."""
    try:
        services = ecs_services.describe(h)
    except Exception as exc:
        if "ClusterNotFoundException" in type(exc).__name__:
            return []
        return [f"an unreadable ECS state ({residuals.scan_error(exc)})"]
    return sorted(
        {
            f"run {s['platform_run_id']}" if s["platform_run_id"] else "no run (no run-id variable)"
            for s in services.values()
            if s["platform_run_id"] != run_id
        }
    )


def proof_doc(facts: Doc, passed: dict[str, bool]) -> Doc:
    """`teardown_proof.json` (spec RPF P12.6): the destroy status and the confirmed-absent categories."""
    kinds = {r["kind"] for r in facts["residuals"]["found"]}
    return {
        "env": facts["env"],
        "torn_down_at_utc": facts["torn_down_at_utc"],
        "terraform_destroy": facts["demo_stack"],
        "present": {
            "ecs_services": bool(facts["daemons"]["alive"]["found"]) or "ecs_service" in kinds,
            "db": bool(kinds & {"rds_instance", "rds:db", "rds:cluster"}),  # found ones, not the always-on set
            "nat_gateway": bool(kinds & {"nat_gateway", "ec2:natgateway"}),
            "load_balancer": bool(kinds & {"load_balancer", "elasticloadbalancing:loadbalancer"}),
            "demo_credentials": bool(facts["credentials"].get("present")),
            "k8s_workloads": any(r["kind"].startswith("k8s_") for r in facts["daemons"]["alive"]["found"]),
            "eks_nodegroup": "eks:nodegroup" in kinds,
            "msk_cluster": "kafka:cluster" in kinds,
            "sagemaker_endpoint": "sagemaker:endpoint" in kinds,
        },
        "gates": passed,
    }

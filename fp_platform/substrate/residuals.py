"""What is left running or billing: the one scan P0 (forbidden infrastructure), P16 (the teardown lane's
residual proof) and P17 (teardown) share, so a resource is judged the same way wherever it is looked for.

Locally the runtime is processes on this machine: a process that carries the run's
`REQUIRED_PLATFORM_RUN_ID` still serves it. On a cloud profile it is AWS resources: the tagging API finds
everything tagged with the environment's `TAG_PROJECT`/`TAG_ENV` (every Terraform resource carries them),
and direct describes catch what the tagging API misses or what was created outside Terraform (a NAT
gateway, a load balancer, a provisioned MSK cluster, an RDS instance, an ECS service still running tasks).
Nothing here decides PASS/FAIL: the gates do, over the lists returned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import boto3
import botocore.exceptions

from fp_platform.handles import Handles

# Resource types that bill while they exist (ARN service:type prefixes of the tagging API). Buckets, log
# groups, the lock table, ECR and IAM are core's (persistent, near-free) and are not residuals of a demo.
COST_BEARING_ARN_KINDS = (
    "ec2:natgateway",
    "ec2:instance",
    "ec2:elastic-ip",
    "elasticloadbalancing:loadbalancer",
    "rds:db",
    "rds:cluster",
    "ecs:service",
    "ecs:task",
    "kafka:cluster",
    "eks:cluster",
    "eks:nodegroup",
    "sagemaker:endpoint",
)
_LIVE_NAT_STATES = ("pending", "available", "deleting")


@dataclass(frozen=True)
class Residual:
    """One resource found: its kind, its identifier (ARN or name) and why it counts."""

    kind: str
    ident: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.kind} {self.ident}" + (f" ({self.detail})" if self.detail else "")


def aws_client(h: Handles, service: str) -> Any:
    """A boto3 client in the profile's region; credentials and endpoint from the environment (IAM role in
    ECS; `AWS_ENDPOINT_URL` points every client at moto in the tests)."""
    return boto3.client(service, region_name=h.get("AWS_REGION"))


def _tag(h: Handles, key: str) -> tuple[str, str]:
    name, _, value = str(h.get(key)).partition("=")
    return name, value


# --- forbidden infrastructure (P0 and P17): spec RPF P0.2.3, P12.2.3; DA §5 -------------------------------
def nat_gateways(h: Handles) -> list[Residual]:
    ec2 = aws_client(h, "ec2")
    found = []
    for page in ec2.get_paginator("describe_nat_gateways").paginate():
        for nat in page.get("NatGateways", []):
            if nat.get("State") in _LIVE_NAT_STATES:
                found.append(Residual("nat_gateway", nat["NatGatewayId"], nat.get("State", "")))
    return found


def load_balancers(h: Handles) -> list[Residual]:
    found = []
    elbv2 = aws_client(h, "elbv2")
    for page in elbv2.get_paginator("describe_load_balancers").paginate():
        for lb in page.get("LoadBalancers", []):
            found.append(Residual("load_balancer", lb["LoadBalancerArn"], lb.get("Type", "")))
    elb = aws_client(h, "elb")
    for lb in elb.describe_load_balancers().get("LoadBalancerDescriptions", []):
        found.append(Residual("load_balancer", lb["LoadBalancerName"], "classic"))
    return found


def provisioned_msk(h: Handles) -> list[Residual]:
    """dev_min's bus is Confluent Cloud: any provisioned MSK cluster is a cost footgun (dev_full uses MSK
    Serverless, which this does not list)."""
    kafka = aws_client(h, "kafka")
    clusters = kafka.list_clusters_v2(ClusterTypeFilter="PROVISIONED").get("ClusterInfoList", [])
    return [Residual("msk_provisioned", c["ClusterArn"], c.get("State", "")) for c in clusters]


def forbidden_infrastructure(h: Handles) -> list[Residual]:
    """NAT gateways, load balancers and (dev_min) provisioned MSK clusters in the account and region."""
    found = nat_gateways(h) + load_balancers(h)
    if h.profile == "dev_min":
        found += provisioned_msk(h)
    return found


# --- the run's daemons (P16's teardown lane, P17) --------------------------------------------------------
def ecs_service_name(h: Handles, component: str) -> str:
    return h.pattern("ECS_SERVICE_NAME_PATTERN", component=component.replace("_", "-"))


_TASK_DEFINITIONS: dict[str, dict[str, Any]] = {}  # ARN -> definition: a revisioned ARN never changes


def task_definition(ecs: Any, arn: str) -> dict[str, Any]:
    """A task definition by its revisioned ARN, described once per process (the supervisor polls every
    service's status while P2 waits: one DescribeTaskDefinition per service and poll would invite throttling)."""
    if arn not in _TASK_DEFINITIONS:
        _TASK_DEFINITIONS[arn] = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    return _TASK_DEFINITIONS[arn]


def served_run(h: Handles, definition: dict[str, Any]) -> str | None:
    """The run a task definition scopes its containers to (the run-id variable Terraform demo sets from its
    `platform_run_id`); None when no container carries it."""
    key = h.get("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")
    for c in definition.get("containerDefinitions", []):
        for env in c.get("environment", []):
            if env.get("name") == key:
                return env.get("value")
    return None


def ecs_services_running(h: Handles, components: list[str], run_id: str | None = None) -> list[Residual]:
    """The components' ECS services that still want or run a task (an absent cluster runs nothing); with
    `run_id`, only those serving that run or no run we can name (a service of another run is not this run's
    residue)."""
    ecs = aws_client(h, "ecs")
    names = [ecs_service_name(h, c) for c in components]
    found = []
    for i in range(0, len(names), 10):  # describe_services takes at most 10
        try:
            resp = ecs.describe_services(cluster=h.get("ECS_CLUSTER_NAME"), services=names[i : i + 10])
        except ecs.exceptions.ClusterNotFoundException:
            return []
        for s in resp.get("services", []):
            if run_id is not None and s.get("taskDefinition"):
                serves = served_run(h, task_definition(ecs, s["taskDefinition"]))
                if serves is not None and serves != run_id:
                    continue
            if s.get("status") != "INACTIVE" and (s.get("desiredCount", 0) or s.get("runningCount", 0)):
                found.append(
                    Residual(
                        "ecs_service",
                        s["serviceName"],
                        f"desired {s.get('desiredCount', 0)}, running {s.get('runningCount', 0)}",
                    )
                )
    return found


def local_run_processes(h: Handles, pids: list[int], platform_run_id: str) -> list[Residual]:
    """Which of `pids` still serve the run: their environment carries REQUIRED_PLATFORM_RUN_ID=<run> (a
    reused pid serves no run of ours)."""
    scope = f"{h.get('REQUIRED_PLATFORM_RUN_ID_ENV_KEY')}={platform_run_id}".encode()
    return [Residual("process", str(p), "serves the run") for p in pids if scope in _environ(p)]


def _environ(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:  # gone, or not ours
        return []


K8S_DEPLOYMENT = "k8s_deployment"  # DAEMON_SUPERVISOR of dev_full: the packs are EKS Deployments


class ScanElsewhere(RuntimeError):
    """The run's daemons are EKS Deployments: only operate's scan (k8s_supervisor.run_workloads, which renders
    the packs; P17 and P16's asset call it through operate/teardown.py) can see them."""


def run_daemons_alive(h: Handles, platform_run_id: str, components: list[str], pids: list[int]) -> list[Residual]:
    """The run's daemons still alive: local processes (from the pids P2 recorded), or on dev_min the
    components' ECS services that still want or run a task. ScanElsewhere on dev_full (operate scans the
    Deployments)."""
    if h.get("DAEMON_SUPERVISOR") == K8S_DEPLOYMENT:
        raise ScanElsewhere(f"{h.profile}: the run's Deployments and job pods are scanned by operate")
    if h.profile == "local":
        return local_run_processes(h, pids, platform_run_id)
    return ecs_services_running(h, components, platform_run_id)


# --- cost-bearing residuals by tag (P17) -----------------------------------------------------------------
def _tagged(h: Handles, tags: dict[str, str]) -> bool:
    """True when `tags` carry the environment's project and env tags."""
    return all(tags.get(k) == v for k, v in (_tag(h, "TAG_PROJECT"), _tag(h, "TAG_ENV")))


def tagged_cost_bearing(h: Handles, confirmed_elsewhere: frozenset[str] = frozenset()) -> list[Residual]:
    """Every cost-bearing resource the tagging API finds with the environment's project and env tags, except the
    kinds a describe of their own service confirms (`confirmed_elsewhere`: the tagging API keeps listing a
    deleted resource for a while); an ECS service counts while it is not INACTIVE (a deleted one stays listed)."""
    tagging = aws_client(h, "resourcegroupstaggingapi")
    filters = [{"Key": k, "Values": [v]} for k, v in (_tag(h, "TAG_PROJECT"), _tag(h, "TAG_ENV"))]
    found, services = [], []
    for page in tagging.get_paginator("get_resources").paginate(TagFilters=filters):
        for r in page.get("ResourceTagMappingList", []):
            arn = r["ResourceARN"]
            kind = f"{arn.split(':')[2]}:{arn.split(':')[5].split('/')[0]}"
            if kind == "ecs:service":
                services.append(arn)
            elif kind in COST_BEARING_ARN_KINDS and kind not in confirmed_elsewhere:
                found.append(Residual(kind, arn, f"tagged {h.get('TAG_ENV')}"))
    return found + _live_services(h, services)


def _live_services(h: Handles, arns: list[str]) -> list[Residual]:
    """The services of `arns` (arn:aws:ecs:<region>:<account>:service/<cluster>/<name>) that are not INACTIVE."""
    ecs = aws_client(h, "ecs")
    by_cluster: dict[str, list[str]] = {}
    for arn in arns:
        by_cluster.setdefault(arn.split(":")[5].split("/")[1], []).append(arn)
    found = []
    for cluster, names in by_cluster.items():
        for i in range(0, len(names), 10):
            try:
                described = ecs.describe_services(cluster=cluster, services=names[i : i + 10]).get("services", [])
            except ecs.exceptions.ClusterNotFoundException:
                continue
            found += [
                Residual("ecs:service", s["serviceArn"], f"{s.get('status')}, desired {s.get('desiredCount', 0)}")
                for s in described
                if s.get("status") != "INACTIVE"
            ]
    return found


def _tag_map(tags: list[dict[str, str]] | None) -> dict[str, str]:
    """AWS's `[{Key, Value}]` tag lists as a mapping."""
    return {t["Key"]: t["Value"] for t in tags or []}


def _tagged_live(h: Handles, kind: str, gone: str, described: Iterable[tuple[str, dict, str, str]]) -> list[Residual]:
    """Of `described` (identifier, tags, status, detail), what carries the environment's tags and is not in the
    service's `gone` status (being deleted, or deleted and still listed)."""
    return [
        Residual(kind, ident, detail)
        for ident, tags, status, detail in described
        if _tagged(h, tags) and status != gone
    ]


def tagged_rds(h: Handles) -> list[Residual]:
    """RDS instances carrying the environment's tags, by describe (the tagging API lags a deletion and
    misses what it was never told of). A cluster's instance (Aurora) is named `<cluster>/<instance>`: it bills
    as part of its cluster, and is always-on exactly when its cluster is."""
    pages = aws_client(h, "rds").get_paginator("describe_db_instances").paginate()
    described = (
        (
            "/".join(filter(None, (db.get("DBClusterIdentifier"), db["DBInstanceIdentifier"]))),
            _tag_map(db.get("TagList")),
            db.get("DBInstanceStatus"),
            db.get("DBInstanceStatus", ""),
        )
        for page in pages
        for db in page.get("DBInstances", [])
    )
    return _tagged_live(h, "rds_instance", "deleted", described)


def aurora_clusters(h: Handles) -> list[Residual]:
    """Aurora (RDS) clusters carrying the environment's tags: Serverless v2 bills its minimum capacity while it
    exists."""
    pages = aws_client(h, "rds").get_paginator("describe_db_clusters").paginate()
    described = (
        (c["DBClusterIdentifier"], _tag_map(c.get("TagList")), c.get("Status"), f"{c.get('Engine')} {c.get('Status')}")
        for page in pages
        for c in page.get("DBClusters", [])
    )
    return _tagged_live(h, "rds:cluster", "deleting", described)


def _eks_clusters(eks: Any) -> list[str]:
    return [name for page in eks.get_paginator("list_clusters").paginate() for name in page.get("clusters", [])]


def eks_clusters(h: Handles) -> list[Residual]:
    """EKS clusters carrying the environment's tags (a control plane bills by the hour)."""
    eks = aws_client(h, "eks")
    clusters = (eks.describe_cluster(name=name)["cluster"] for name in _eks_clusters(eks))
    described = ((c["name"], c.get("tags") or {}, c.get("status"), c.get("status", "")) for c in clusters)
    return _tagged_live(h, "eks:cluster", "DELETING", described)


def eks_nodegroups(h: Handles) -> list[Residual]:
    """EKS node groups carrying the environment's tags, in every cluster of the region, with their desired size
    (the tagging API does not list node groups everywhere)."""
    eks = aws_client(h, "eks")
    groups = (
        eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"]
        for cluster in _eks_clusters(eks)
        for page in eks.get_paginator("list_nodegroups").paginate(clusterName=cluster)
        for name in page.get("nodegroups", [])
    )
    described = (
        (
            f"{ng['clusterName']}/{ng['nodegroupName']}",
            ng.get("tags") or {},
            ng.get("status"),
            f"desired {(ng.get('scalingConfig') or {}).get('desiredSize')}",
        )
        for ng in groups
    )
    return _tagged_live(h, "eks:nodegroup", "DELETING", described)


def msk_clusters(h: Handles) -> list[Residual]:
    """MSK clusters, serverless or provisioned, carrying the environment's tags."""
    pages = aws_client(h, "kafka").get_paginator("list_clusters_v2").paginate()
    described = (
        (c["ClusterName"], c.get("Tags") or {}, c.get("State"), f"{c.get('ClusterType')} {c.get('State')}")
        for page in pages
        for c in page.get("ClusterInfoList", [])
    )
    return _tagged_live(h, "kafka:cluster", "DELETING", described)


def sagemaker_endpoints(h: Handles) -> list[Residual]:
    """SageMaker endpoints carrying the environment's tags: an endpoint bills its instances every hour it exists."""
    sm = aws_client(h, "sagemaker")
    endpoints = (e for page in sm.get_paginator("list_endpoints").paginate() for e in page.get("Endpoints", []))
    described = (
        (
            e["EndpointName"],
            _tag_map(sm.list_tags(ResourceArn=e["EndpointArn"]).get("Tags")),
            e.get("EndpointStatus"),
            e.get("EndpointStatus", ""),
        )
        for e in endpoints
    )
    return _tagged_live(h, "sagemaker:endpoint", "Deleting", described)


# Per profile, the describes that confirm what the tagging API lists (or catch what it misses), each with the
# ARN kinds it covers: dev_min's demo holds RDS instances (and ECS services, below); dev_full's runtime holds
# Aurora, MSK, EKS clusters and node groups, and SageMaker endpoints.
DESCRIBES = {
    "dev_min": ((tagged_rds, frozenset({"rds:db"})),),
    "dev_full": (
        (tagged_rds, frozenset({"rds:db"})),
        (aurora_clusters, frozenset({"rds:cluster"})),
        (msk_clusters, frozenset({"kafka:cluster"})),
        (eks_clusters, frozenset({"eks:cluster"})),
        (eks_nodegroups, frozenset({"eks:nodegroup"})),
        (sagemaker_endpoints, frozenset({"sagemaker:endpoint"})),
    ),
}


def cloud_residuals(h: Handles, components: list[str]) -> list[Residual]:
    """Everything cost-bearing the environment holds: tagged resources, the profile's describes, the run's ECS
    services (dev_min) and forbidden infrastructure wherever it came from (deduplicated by identifier). The
    profile's always-on set is among them: `always_on` tells them apart."""
    describes = DESCRIBES[h.profile]
    covered = frozenset().union(*(kinds for _, kinds in describes))
    found: dict[str, Residual] = {}
    scans = [tagged_cost_bearing(h, covered), *(describe(h) for describe, _ in describes)]
    if h.values.get("ECS_CLUSTER_NAME"):  # null: the profile runs no ECS
        scans.append(ecs_services_running(h, components))
    for r in [r for scan in scans for r in scan] + forbidden_infrastructure(h):
        found.setdefault(r.ident, r)
    return list(found.values())


def always_on(h: Handles, r: Residual) -> bool:
    """True when `r` is in the profile's pinned always-on set (TEARDOWN_ALWAYS_ON: DA dev_full §15.1.2, what
    persists between runs), matched by kind and by name within its identifier (a name or an ARN)."""
    parts = set(re.split(r"[:/]", r.ident))
    kinds = {r.kind, *(["rds:cluster"] if r.kind == "rds_instance" else [])}  # an instance of an always-on cluster
    return any(e["kind"] in kinds and e["name"] in parts for e in h.get("TEARDOWN_ALWAYS_ON") or [])


def ssm_present(h: Handles, path_keys: list[str]) -> list[str]:
    """Which of the handles' SSM parameter paths still exist (names only; values are never read)."""
    ssm = aws_client(h, "ssm")
    names = [h.get(k) for k in path_keys]
    present = []
    for i in range(0, len(names), 10):  # get_parameters takes at most 10
        present += [p["Name"] for p in ssm.get_parameters(Names=names[i : i + 10]).get("Parameters", [])]
    return sorted(present)


def scan_error(exc: Exception) -> str:
    """A scan that could not see is reported with its reason; the gate over it then fails closed."""
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code')}: {err.get('Message')}"
    return f"{type(exc).__name__}: {exc}"

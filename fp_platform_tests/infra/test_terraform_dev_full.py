"""The five dev_full stacks (spec DA-full §8.1) through Terraform itself, offline, on the dev_min harness: validate
and one plan per stack (session fixtures), the plans' JSON checked against the spec's pins (budget and alerts,
S3 lifecycle transitions, private encrypted buckets, the four tags, no NAT gateway, roles from the handles, no
wildcard action), plus the sources (python-hcl2) and the rendered tfvars. `terraform fmt -check -recursive` and
checkov cover dev_full through test_terraform.py and test_checkov.py, which scan all of infra/terraform."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from fp_platform.handles import handles
from fp_platform_tests.infra import sources
from fp_platform_tests.infra import terraform as tf

pytestmark = pytest.mark.infra

FULL_DIR = tf.TERRAFORM_DIR / "dev_full"
STACKS = ("core", "streaming", "runtime", "data_ml", "ops")
DOWNSTREAM = STACKS[1:]
KMS_ARN = f"arn:aws:kms:eu-west-2:{tf.FAKE_ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
FAKE_CORE = {  # core's `core` output, shaped like a real one (what the operator copies to core.auto.tfvars.json)
    "vpc_id": "vpc-0123456789abcdef0",
    "vpc_cidr_block": "10.52.0.0/16",
    "private_subnet_ids": ["subnet-0a0a0a0a0a0a0a0a0", "subnet-0b0b0b0b0b0b0b0b0"],
    "route_table_id": "rtb-0123456789abcdef0",
    "sg_app_id": "sg-0aaaaaaaaaaaaaaa0",
    "sg_db_id": "sg-0bbbbbbbbbbbbbbb0",
    "kms_key_arn": KMS_ARN,
    "ecr_repository_url": f"{tf.FAKE_ACCOUNT}.dkr.ecr.eu-west-2.amazonaws.com/fraud-platform-dev-full-platform",
    "tf_state_bucket": f"fraud-platform-dev-full-tfstate-{tf.FAKE_ACCOUNT}-eu-west-2",
    "tf_lock_table": "fraud-platform-dev-full-tf-locks",
}
COMMON = {"aws_account_id": tf.FAKE_ACCOUNT, "expires_at": "2026-12-31", "aws_offline": "true"}
OPERATOR_VARS = {
    "core": COMMON,
    "streaming": COMMON,
    "runtime": COMMON | {"operator_cidrs": '["203.0.113.0/24"]'},
    "data_ml": COMMON | {"db_password": "not-a-real-password", "db_app_password": "not-a-real-app-password"},
    "ops": COMMON | {"budget_alert_emails": '["ops@example.com"]'},
}
FORBIDDEN_TYPES = {  # DA-full pins no NAT gateway and no provisioned MSK; §9.1 private by default
    "aws_nat_gateway": "NAT gateway",
    "aws_internet_gateway": "internet gateway",
    "aws_egress_only_internet_gateway": "egress-only internet gateway",
    "aws_eip": "elastic IP",
    "aws_msk_cluster": "provisioned MSK cluster",
    "aws_lb": "load balancer",
    "aws_alb": "load balancer",
    "aws_elb": "classic load balancer",
}


# --- the harness for dev_full: one scratch copy, init and plan per stack and session


class FullWorkdir(tf.Workdir):
    def var_args(self, extra: dict[str, str] | None = None) -> list[str]:
        values = OPERATOR_VARS[self.stack] | (extra or {})
        return [a for k, v in values.items() for a in ("-var", f"{k}={v}")]


def _prepare(stack: str, base: Path, mirror: Path) -> FullWorkdir:
    dest = base / "dev_full" / stack
    shutil.copytree(FULL_DIR / stack, dest, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    (dest / "backend_override.tf").write_text(tf.BACKEND_OVERRIDE)
    if stack != "core":
        (dest / "core.auto.tfvars.json").write_text(json.dumps({"core": FAKE_CORE}))
    wd = FullWorkdir(stack, dest, tf.offline_env(base), mirror)
    wd.init()
    return wd


@pytest.fixture(scope="session")
def full_dirs(terraform, tf_base) -> dict[str, FullWorkdir]:
    return {s: _prepare(s, tf_base, terraform) for s in STACKS}


@pytest.fixture(scope="session")
def full_plans(full_dirs) -> dict[str, dict[str, Any]]:
    """Each stack planned once (offline, fake credentials) and shown as JSON."""
    return {s: wd.plan_json() for s, wd in full_dirs.items()}


# --- reading plans and handles


def _pins() -> dict[str, Any]:
    """The dev_full registry as the stacks see it: the runtime handles with the cloud-only pins over them."""
    pins = yaml.safe_load((tf.REPO / "infra/handles/dev_full.yaml").read_text())["handles"]
    return dict(handles("dev_full").values) | pins


def _after(r: dict) -> dict:
    return r["change"]["after"] or {}


def _by_type(plan: dict, rtype: str) -> list[dict]:
    return [r for r in tf.resources(plan) if r["type"] == rtype]


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _tag_pairs() -> dict[str, str]:
    pins = _pins()
    pairs = dict(pins[k].split("=", 1) for k in ("TAG_PROJECT", "TAG_ENV", "TAG_OWNER"))
    return pairs | {"expires_at": COMMON["expires_at"]}


def untagged(resources: list[dict], want: dict[str, str]) -> list[str]:
    """Taggable resources (those with tags_all) missing one of `want`, or whose tags are unknown at plan."""
    out = []
    for r in resources:
        after, unknown = r["change"]["after"] or {}, r["change"].get("after_unknown") or {}
        if "tags_all" not in after and "tags_all" not in unknown:
            continue
        tags = after.get("tags_all")
        if tags is None or any(tags.get(k) != v for k, v in want.items()):
            out.append(r["address"])
    return out


def wildcard_grants(policy: dict) -> list[str]:
    """Allow statements' actions containing `*` in an IAM policy (JSON as AWS receives it)."""
    out = []
    for st in policy.get("Statement", []):
        actions = st.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if st.get("Effect", "Allow") == "Allow":
            out += [a for a in actions if "*" in a]
    return out


def public_buckets(plan: dict) -> list[str]:
    """Buckets without a public access block that sets all four flags."""
    blocked = {
        r["index"]
        for r in _by_type(plan, "aws_s3_bucket_public_access_block")
        if all(
            _after(r).get(k) is True
            for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
        )
    }
    return [r["address"] for r in _by_type(plan, "aws_s3_bucket") if r["index"] not in blocked]


def _resource(rtype: str, address: str, after: dict, unknown: dict | None = None) -> dict:
    return {
        "address": address,
        "type": rtype,
        "index": address,
        "mode": "managed",
        "change": {"actions": ["create"], "after": after, "after_unknown": unknown or {}},
    }


# --- negative controls: each plan helper fed a bad resource finds it


def test_the_plan_helpers_find_a_bad_resource():
    want = _tag_pairs()
    good = _resource("aws_vpc", "aws_vpc.good", {"tags_all": dict(want)})
    no_owner = _resource("aws_vpc", "aws_vpc.bad", {"tags_all": {k: v for k, v in want.items() if k != "owner"}})
    unknown = _resource("aws_subnet", "aws_subnet.unknown", {}, {"tags_all": True})
    untaggable = _resource("aws_route_table_association", "aws_route_table_association.x", {})
    assert untagged([good, no_owner, unknown, untaggable], want) == ["aws_vpc.bad", "aws_subnet.unknown"]

    policy = {
        "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:Put*"]}, {"Effect": "Deny", "Action": "s3:*"}]
    }
    assert wildcard_grants(policy) == ["s3:Put*"]

    bucket = _resource("aws_s3_bucket", "b", {"bucket": "x"})
    half_block = _resource("aws_s3_bucket_public_access_block", "b", {"block_public_acls": True})
    assert public_buckets({"resource_changes": [bucket, half_block]}) == ["b"]


# --- Terraform: validate and plan


@pytest.mark.parametrize("stack", STACKS)
def test_validate(stack, full_dirs):
    out = json.loads(full_dirs[stack].run("validate", "-json", "-no-color").stdout)
    assert out["valid"] is True and out["error_count"] == 0, out


@pytest.mark.parametrize("stack", STACKS)
def test_plan_has_no_nat_gateway_or_other_forbidden_infrastructure(stack, full_plans):
    types = {r["type"] for r in tf.resources(full_plans[stack])}
    assert len(types) >= 3, types  # the plan has the stack in it
    found = {FORBIDDEN_TYPES[t] for t in types & set(FORBIDDEN_TYPES)}
    assert not found, f"{stack} plans {found} (DA-full §9.1; no NAT pinned)"


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_resource_carries_the_four_tags(stack, full_plans):
    resources = tf.resources(full_plans[stack])
    taggable = [r for r in resources if "tags_all" in _after(r) or "tags_all" in r["change"]["after_unknown"]]
    assert len(taggable) >= {"core": 25, "streaming": 3, "runtime": 25, "data_ml": 10, "ops": 10}[stack], len(taggable)
    assert not untagged(resources, _tag_pairs())


def test_lifecycle_transitions_and_expiry_equal_the_handles(full_plans):
    pins, h = _pins(), handles("dev_full")
    want = {  # stem → (expiry days, {storage class: days}); DA-full §5.1.1 item 14, §14.3
        h.get("S3_EVIDENCE_BUCKET"): (
            pins["RETENTION_EVIDENCE_DAYS"],
            {
                "STANDARD_IA": pins["EVIDENCE_TRANSITION_TO_STANDARD_IA_DAYS"],
                "GLACIER_IR": pins["EVIDENCE_TRANSITION_TO_GLACIER_IR_DAYS"],
            },
        ),
        h.get("S3_ARCHIVE_BUCKET"): (
            pins["RETENTION_ARCHIVE_DAYS"],
            {
                "STANDARD_IA": pins["ARCHIVE_TRANSITION_TO_STANDARD_IA_DAYS"],
                "GLACIER_IR": pins["ARCHIVE_TRANSITION_TO_GLACIER_IR_DAYS"],
            },
        ),
        h.get("S3_ORACLE_BUCKET"): (
            pins["RETENTION_ORACLE_SOURCE_DAYS"],
            {
                "STANDARD_IA": pins["ORACLE_TRANSITION_TO_STANDARD_IA_DAYS"],
                "GLACIER_IR": pins["ORACLE_TRANSITION_TO_GLACIER_IR_DAYS"],
            },
        ),
        h.get("S3_QUARANTINE_BUCKET"): (pins["RETENTION_QUARANTINE_DAYS"], {}),  # QUARANTINE_EXPIRY_ONLY
        h.get("S3_ARTIFACTS_BUCKET"): (pins["RETENTION_TRAINING_ARTIFACTS_DAYS"], {}),
        pins["TF_STATE_BUCKET"]: (None, {}),  # state history is kept
    }
    # the spec's words, not only the handles (issue 24: evidence IA 30, Glacier IR 180, expire 365)
    assert want[h.get("S3_EVIDENCE_BUCKET")] == (365, {"STANDARD_IA": 30, "GLACIER_IR": 180})
    assert want[h.get("S3_ARCHIVE_BUCKET")] == (90, {"STANDARD_IA": 30, "GLACIER_IR": 60})
    assert want[h.get("S3_QUARANTINE_BUCKET")] == (45, {})

    plan = full_plans["core"]
    suffix = f"-{tf.FAKE_ACCOUNT}-{h.get('AWS_REGION')}"
    buckets = {_after(r)["bucket"]: r["index"] for r in _by_type(plan, "aws_s3_bucket")}
    assert set(buckets) == {stem + suffix for stem in want}, buckets
    lifecycles = {r["index"]: _after(r)["rule"] for r in _by_type(plan, "aws_s3_bucket_lifecycle_configuration")}
    for stem, (expiry, transitions) in want.items():
        rules = {rule["id"]: rule for rule in lifecycles[buckets[stem + suffix]]}
        abort = rules["abort-incomplete-multipart"]["abort_incomplete_multipart_upload"][0]
        assert abort["days_after_initiation"] == pins["S3_ABORT_INCOMPLETE_MULTIPART_DAYS"]
        if expiry is None:
            assert "retention-expiry" not in rules, stem
        else:
            rule = rules["retention-expiry"]
            assert rule["status"] == "Enabled" and rule["expiration"][0]["days"] == expiry, (stem, rule)
            assert rule["noncurrent_version_expiration"][0]["noncurrent_days"] == expiry, stem
        got = {t["storage_class"]: t["days"] for t in rules.get("retention-transitions", {}).get("transition", [])}
        assert got == transitions, (stem, got)
        if transitions:
            assert rules["retention-transitions"]["status"] == "Enabled"
            assert max(transitions.values()) < expiry, stem  # objects transition before they expire


def test_buckets_are_private_encrypted_with_the_platform_key_versioned_and_tls_only(full_plans):
    plan = full_plans["core"]
    n = len(_by_type(plan, "aws_s3_bucket"))
    assert n == 6
    assert not public_buckets(plan)
    sse = _by_type(plan, "aws_s3_bucket_server_side_encryption_configuration")
    assert len(sse) == n
    for r in sse:
        (rule,) = _after(r)["rule"]
        (default,) = rule["apply_server_side_encryption_by_default"]
        assert default["sse_algorithm"] == "aws:kms" and rule["bucket_key_enabled"] is True
        # the customer-managed key (known only after apply: its ARN is unknown at plan, not absent)
        unknown = r["change"]["after_unknown"]["rule"][0]["apply_server_side_encryption_by_default"][0]
        assert unknown.get("kms_master_key_id") is True, r["address"]
    versioning = _by_type(plan, "aws_s3_bucket_versioning")
    assert [_after(v)["versioning_configuration"][0]["status"] for v in versioning] == ["Enabled"] * n
    assert len(_by_type(plan, "aws_s3_bucket_policy")) == n
    (key,) = _by_type(plan, "aws_kms_key")
    assert _after(key)["enable_key_rotation"] is True
    (alias,) = _by_type(plan, "aws_kms_alias")
    assert _after(alias)["name"] == _pins()["KMS_KEY_ALIAS"]
    (lock,) = _by_type(plan, "aws_dynamodb_table")
    assert _after(lock)["name"] == _pins()["TF_LOCK_TABLE"]
    assert _after(lock)["server_side_encryption"][0]["enabled"] is True
    (repo,) = _by_type(plan, "aws_ecr_repository")
    assert _after(repo)["image_tag_mutability"] == "IMMUTABLE"
    assert _after(repo)["encryption_configuration"][0]["encryption_type"] == "KMS"
    for p in _by_type(plan, "aws_ssm_parameter"):
        assert _after(p)["type"] == "SecureString", p["address"]


def test_core_network_is_private_with_the_pinned_subnets(full_plans):
    plan, pins = full_plans["core"], _pins()
    (vpc,) = _by_type(plan, "aws_vpc")
    assert _after(vpc)["cidr_block"] == pins["VPC_CIDR_BLOCK"]
    subnets = _by_type(plan, "aws_subnet")
    assert sorted(_after(s)["cidr_block"] for s in subnets) == sorted(pins["SUBNET_CIDR_BLOCKS_PRIVATE"])
    assert len({_after(s)["availability_zone"] for s in subnets}) == len(subnets) >= 2
    assert not any(_after(s).get("map_public_ip_on_launch") for s in subnets)
    assert not [r for r in _by_type(plan, "aws_route") if _after(r).get("destination_cidr_block") == "0.0.0.0/0"]
    (s3,) = _by_type(plan, "aws_vpc_endpoint")
    assert _after(s3)["vpc_endpoint_type"] == "Gateway"
    ingress = _by_type(plan, "aws_vpc_security_group_ingress_rule")
    assert ingress and not [r for r in ingress if _after(r).get("cidr_ipv4") == "0.0.0.0/0"]
    (role,) = _by_type(plan, "aws_iam_role")
    assert _after(role)["name"] == pins["ROLE_TERRAFORM_APPLY_DEV_FULL"]


def test_budget_is_300_usd_with_the_three_alerts(full_plans):
    pins = _pins()
    (budget,) = _by_type(full_plans["ops"], "aws_budgets_budget")
    b = _after(budget)
    assert b["name"] == pins["AWS_BUDGET_NAME"] and b["budget_type"] == "COST" and b["time_unit"] == "MONTHLY"
    assert float(b["limit_amount"]) == pins["DEV_FULL_MONTHLY_BUDGET_LIMIT_USD"] == 300
    assert b["limit_unit"] == "USD"
    assert not b.get("cost_filter"), "the budget covers the whole AWS bill (DA-full §5.2.3)"
    alerts = sorted(b["notification"], key=lambda n: n["threshold"])
    assert [n["threshold"] for n in alerts] == [pins[f"DEV_FULL_BUDGET_ALERT_{i}_USD"] for i in (1, 2, 3)]
    assert [n["threshold"] for n in alerts] == [120, 210, 270]
    for n in alerts:
        assert (n["comparison_operator"], n["threshold_type"], n["notification_type"]) == (
            "GREATER_THAN",
            "ABSOLUTE_VALUE",
            "ACTUAL",
        )
        assert n["subscriber_email_addresses"] == ["ops@example.com"]


def test_log_groups_keep_the_pinned_retention_under_the_platform_key(full_plans):
    pins = _pins()
    groups = {_after(g)["name"]: _after(g) for g in _by_type(full_plans["ops"], "aws_cloudwatch_log_group")}
    prefix = pins["CLOUDWATCH_LOG_GROUP_PREFIX"]
    want = {f"{prefix}{g}" for g in pins["CLOUDWATCH_LOG_GROUPS"]} | {f"/aws/eks/{pins['EKS_CLUSTER_NAME']}/cluster"}
    assert set(groups) == want
    assert {g["retention_in_days"] for g in groups.values()} == {pins["RETENTION_CLOUDWATCH_LOGS_DAYS"]} == {14}
    assert {g["kms_key_id"] for g in groups.values()} == {KMS_ARN}


def test_otel_collector_config_is_an_ssm_parameter_matching_the_endpoint(full_plans):
    pins = _pins()
    (param,) = _by_type(full_plans["ops"], "aws_ssm_parameter")
    assert _after(param)["name"] == pins["OTEL_COLLECTOR_CONFIG_SSM_PATH"] and _after(param)["type"] == "SecureString"
    config = yaml.safe_load(_after(param)["value"])
    port = pins["OTEL_EXPORTER_OTLP_ENDPOINT"].rsplit(":", 1)[1]
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == f"0.0.0.0:{port}"
    assert config["exporters"]["awsemf"]["log_group_name"] == f"{pins['CLOUDWATCH_LOG_GROUP_PREFIX']}otel"
    pipelines = config["service"]["pipelines"]
    assert pipelines["metrics"]["exporters"] == ["awsemf"] and pipelines["logs"]["receivers"] == ["otlp"]
    for pipeline in pipelines.values():  # every named component is defined
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipeline.get(kind, [])) <= set(config[kind]), (kind, pipeline)


def test_msk_is_serverless_with_iam_auth_in_the_private_subnets(full_plans):
    plan, pins = full_plans["streaming"], _pins()
    (msk,) = _by_type(plan, "aws_msk_serverless_cluster")
    m = _after(msk)
    assert m["cluster_name"] == pins["MSK_CLUSTER_NAME"]
    assert m["client_authentication"][0]["sasl"][0]["iam"][0]["enabled"] is True
    assert m["vpc_config"][0]["subnet_ids"] == FAKE_CORE["private_subnet_ids"]
    (rule,) = _by_type(plan, "aws_vpc_security_group_ingress_rule")
    r = _after(rule)
    port = pins["MSK_IAM_PORT"]
    assert (r["from_port"], r["to_port"], r["referenced_security_group_id"]) == (port, port, FAKE_CORE["sg_app_id"])
    (brokers,) = _by_type(plan, "aws_ssm_parameter")
    assert _after(brokers)["name"] == handles("dev_full").get("SSM_MSK_BOOTSTRAP_BROKERS_PATH")
    assert _after(brokers)["type"] == "SecureString"


def test_eks_cluster_node_group_and_oidc_provider(full_plans):
    plan, pins = full_plans["runtime"], _pins()
    (cluster,) = _by_type(plan, "aws_eks_cluster")
    c = _after(cluster)
    assert c["name"] == pins["EKS_CLUSTER_NAME"] and c["version"] == pins["EKS_KUBERNETES_VERSION"]
    vpc = c["vpc_config"][0]
    assert vpc["endpoint_private_access"] is True and vpc["public_access_cidrs"] == ["203.0.113.0/24"]
    assert vpc["subnet_ids"] == FAKE_CORE["private_subnet_ids"]
    assert c["encryption_config"][0]["resources"] == ["secrets"]
    assert c["encryption_config"][0]["provider"][0]["key_arn"] == KMS_ARN
    assert set(c["enabled_cluster_log_types"]) == {"api", "audit", "authenticator", "controllerManager", "scheduler"}
    (ng,) = _by_type(plan, "aws_eks_node_group")
    scaling = _after(ng)["scaling_config"][0]
    want = pins["EKS_NODE_SCALING"]
    assert (scaling["min_size"], scaling["desired_size"], scaling["max_size"]) == (
        want["min"],
        want["desired"],
        want["max"],
    )
    assert _after(ng)["instance_types"] == pins["EKS_NODE_INSTANCE_TYPES"]
    (lt,) = _by_type(plan, "aws_launch_template")
    meta = _after(lt)["metadata_options"][0]
    assert (
        meta["http_tokens"] == "required" and meta["http_put_response_hop_limit"] == 1
    )  # pods cannot use the node role
    assert _after(lt)["block_device_mappings"][0]["ebs"][0]["encrypted"] == "true"
    (oidc,) = _by_type(plan, "aws_iam_openid_connect_provider")
    assert _after(oidc)["client_id_list"] == ["sts.amazonaws.com"]
    endpoints = _by_type(plan, "aws_vpc_endpoint")
    services = {_after(e)["service_name"].rsplit(".", 1)[-1] for e in endpoints}
    assert {"dkr", "api", "sts", "logs", "ssm"} <= services  # image pulls and IRSA work without a NAT gateway
    assert {_after(e)["vpc_endpoint_type"] for e in endpoints} == {"Interface"}


def test_irsa_roles_are_the_handles_roles(full_plans):
    pins = _pins()
    roles = {_after(r)["name"] for r in _by_type(full_plans["runtime"], "aws_iam_role")}
    workload = {
        pins[k]
        for k in (
            "ROLE_DAGSTER_ORCHESTRATOR",
            "ROLE_ORACLE_JOB",
            "ROLE_SR_TASK",
            "ROLE_WSP_TASK",
            "ROLE_IG_SERVICE",
            "ROLE_RTDL_CORE",
            "ROLE_DECISION_LANE",
            "ROLE_CASE_LABELS",
            "ROLE_REPORTER_SINGLE_WRITER",
            "ROLE_LEARNING_JOB",
            "ROLE_EKS_RUNTIME_PLATFORM_BASE",
            "ROLE_OBS_GOV_CONFORMANCE",
        )
    }
    assert workload | {pins["ROLE_EKS_NODEGROUP_DEV_FULL"]} <= roles
    assert roles - workload - {pins["ROLE_EKS_NODEGROUP_DEV_FULL"]} == {"fraud-platform-dev-full-eks-cluster"}
    policies = {
        _after(p)["name"]: json.loads(_after(p)["policy"])
        for p in _by_type(full_plans["runtime"], "aws_iam_role_policy")
    }
    assert len(policies) == len(workload) + 1
    # writer boundaries: only IG writes the traffic topics, only the orchestrator creates topics
    writers = {
        name
        for name, policy in policies.items()
        for st in policy["Statement"]
        if "kafka-cluster:WriteData" in _as_list(st["Action"])
        and any(r.endswith("/fp.bus.traffic.fraud.v1") for r in _as_list(st["Resource"]))
    }
    assert writers == {f"{pins['ROLE_IG_SERVICE']}-access"}, writers
    creators = {
        n for n, p in policies.items() for st in p["Statement"] if "kafka-cluster:CreateTopic" in _as_list(st["Action"])
    }
    assert creators == {f"{pins['ROLE_DAGSTER_ORCHESTRATOR']}-access"}


def test_irsa_trusts_exactly_the_service_accounts_of_the_committed_manifests():
    """Each pack's ServiceAccount in infra/k8s (name, namespace, role annotation) is one the runtime stack's
    roles trust, and every trusted ServiceAccount has a role of its own."""
    irsa = json.loads((FULL_DIR / "runtime" / "handles.auto.tfvars.json").read_text())["irsa"]
    trusted = {(v["namespace"], v["service_account"]): v["role_name"] for v in irsa.values()}
    assert len(trusted) == len(irsa) == len({v["role_name"] for v in irsa.values()})
    manifests = [
        doc
        for path in sorted((tf.REPO / "infra" / "k8s").glob("*/_pack.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == "ServiceAccount"
    ]
    assert len(manifests) == 5, len(manifests)  # one per spine pack
    for sa in manifests:
        meta = sa["metadata"]
        role = meta["annotations"]["eks.amazonaws.com/role-arn"].rsplit("/", 1)[1]
        assert trusted.get((meta["namespace"], meta["name"])) == role, (meta, trusted)


def test_aurora_serverless_v2_requires_tls_and_keeps_secrets_out_of_the_plan(full_plans):
    plan, pins, h = full_plans["data_ml"], _pins(), handles("dev_full")
    (cluster,) = _by_type(plan, "aws_rds_cluster")
    c = _after(cluster)
    assert c["cluster_identifier"] == pins["RDS_CLUSTER_ID"] and c["engine"] == "aurora-postgresql"
    assert c["engine_mode"] == "provisioned" and c["storage_encrypted"] is True and c["kms_key_id"] == KMS_ARN
    low, high = (float(x) for x in pins["AURORA_ACU_RANGE"].split("-"))
    scaling = c["serverlessv2_scaling_configuration"][0]
    assert (scaling["min_capacity"], scaling["max_capacity"]) == (low, high) == (0.5, 8.0)
    assert c["iam_database_authentication_enabled"] is True and c["vpc_security_group_ids"] == [FAKE_CORE["sg_db_id"]]
    instances = _by_type(plan, "aws_rds_cluster_instance")
    assert len(instances) == pins["AURORA_INSTANCE_COUNT"] >= 2  # one writer + >= 1 reader
    assert {_after(i)["instance_class"] for i in instances} == {"db.serverless"}
    assert {_after(i)["publicly_accessible"] for i in instances} == {False}
    (pg,) = _by_type(plan, "aws_rds_cluster_parameter_group")
    assert {p["name"]: p["value"] for p in _after(pg)["parameter"]}["rds.force_ssl"] == "1"
    params = {_after(p)["name"]: _after(p) for p in _by_type(plan, "aws_ssm_parameter")}
    assert {p["type"] for p in params.values()} == {"SecureString"}
    for key in ("SSM_DB_PASSWORD_PATH", "SSM_DB_USER_PATH", "SSM_DB_ENDPOINT_PATH", "SSM_DB_APP_PASSWORD_PATH"):
        assert h.get(key) in params, key
    assert pins["SSM_DB_READER_ENDPOINT_PATH"] in params
    assert pins["SSM_SAGEMAKER_MODEL_EXEC_ROLE_ARN_PATH"] in params
    text = json.dumps(plan)
    for secret in ("db_password", "db_app_password"):
        assert OPERATOR_VARS["data_ml"][secret] not in text, f"{secret} reached the plan"


def test_sagemaker_role_and_glue_catalog(full_plans):
    plan, pins, h = full_plans["data_ml"], _pins(), handles("dev_full")
    (role,) = _by_type(plan, "aws_iam_role")
    assert _after(role)["name"] == pins["ROLE_SAGEMAKER_EXECUTION"]
    trust = json.loads(_after(role)["assume_role_policy"])
    assert [st["Principal"]["Service"] for st in trust["Statement"]] == ["sagemaker.amazonaws.com"]
    (db,) = _by_type(plan, "aws_glue_catalog_database")
    assert _after(db)["name"] == h.get("ICEBERG_NAMESPACE")
    artifacts = f"{h.get('S3_ARTIFACTS_BUCKET')}-{tf.FAKE_ACCOUNT}-{h.get('AWS_REGION')}"
    assert _after(db)["location_uri"] == f"s3://{artifacts}/iceberg/"


@pytest.mark.parametrize("stack", ["core", "runtime", "data_ml"])
def test_rendered_iam_policies_grant_no_wildcard_action(stack, full_plans):
    policies = [_after(p).get("policy") for p in _by_type(full_plans[stack], "aws_iam_role_policy")]
    known = [json.loads(p) for p in policies if p]
    assert known and len(known) == len(policies), f"{len(policies) - len(known)} policies unknown at plan"
    for policy in known:
        assert not wildcard_grants(policy), policy


# --- sources (python-hcl2) and rendered tfvars: no terraform needed


def test_no_iam_grant_in_dev_full_uses_a_wildcard_action():
    files = sorted(FULL_DIR.rglob("*.tf"))
    actions = [a for path in files for a in sources.allowed_actions(sources.parse(path))]
    assert len(actions) > 150, f"only {len(actions)} actions found: the walk no longer sees the policies"
    assert not sorted({a for a in actions if "*" in a})


def test_stacks_share_one_common_file_and_core_feeds_what_they_declare():
    shared = FULL_DIR / "shared"
    for stack in STACKS:
        for name in ("common.tf", "providers.tf", *(("core_inputs.tf",) if stack in DOWNSTREAM else ())):
            assert (FULL_DIR / stack / name).resolve() == (shared / name).resolve(), (
                f"{stack}/{name}: not the shared file"
            )
    (variable,) = sources.parse(FULL_DIR / "streaming" / "core_inputs.tf")["variable"]
    declared = sources.unwrap(variable["core"]["type"])
    output = sources.outputs(sources.parse(FULL_DIR / "core" / "outputs.tf"))["core"]
    assert set(sources.unwrap(output["value"])) == set(FAKE_CORE) and str(sorted(FAKE_CORE)) != "[]"
    for key in FAKE_CORE:
        assert key in declared, key
    for stack in STACKS:  # each state key is the spec's (DA-full §8.2)
        assert f"dev_full/{stack}/terraform.tfstate" in (FULL_DIR / stack / "versions.tf").read_text()


def test_secrets_are_ephemeral_write_only_inputs():
    doc = sources.parse(FULL_DIR / "data_ml" / "variables.tf")
    variables = {name: body for block in doc["variable"] for name, body in block.items()}
    for name in ("db_password", "db_app_password"):
        assert sources.unwrap(variables[name].get("ephemeral")) is True, name
        assert sources.unwrap(variables[name].get("sensitive")) is True, name


def _generator():
    spec = importlib.util.spec_from_file_location("fp_tfvars_full", tf.TERRAFORM_DIR / "tfvars.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_dev_full_tfvars_equal_the_rendering():
    gen = _generator()
    rendered = gen.render_dev_full()
    assert {p.parts[1] for p in rendered} == set(STACKS)
    for rel, text in rendered.items():
        assert (tf.TERRAFORM_DIR / rel).read_text() == text, (
            f"{rel} is stale: run .venv/bin/python infra/terraform/tfvars.py"
        )
    assert gen.main(["--check"]) == 0


def test_a_changed_dev_full_handle_changes_the_rendering():
    gen = _generator()
    r = gen.full_registry()
    pins = dict(r.pins) | {"EVIDENCE_TRANSITION_TO_GLACIER_IR_DAYS": 200, "DEV_FULL_BUDGET_ALERT_2_USD": 200}
    changed = gen.Registry(r.h, pins)
    assert gen.full_core(changed)["bucket_lifecycle"]["evidence"]["transitions"]["GLACIER_IR"] == 200
    assert gen.full_core(r)["bucket_lifecycle"]["evidence"]["transitions"] == {"STANDARD_IA": 30, "GLACIER_IR": 180}
    with pytest.raises(AssertionError, match="disagree"):  # the two spellings of the alerts must agree
        gen.full_ops(changed)
    for text in gen.render_dev_full().values():
        for key in ("aws_account_id", "expires_at", "db_password", "operator_cidrs", "budget_alert_emails"):
            assert key not in json.loads(text)

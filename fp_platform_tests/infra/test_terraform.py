"""The dev_min stacks through Terraform itself, offline: fmt, validate, and the plans' JSON checked against
the spec's cost posture (no NAT, no load balancer, no provisioned MSK), its tags and the handles' retention."""

from __future__ import annotations

import json
import subprocess
import tomllib

import pytest

from fp_platform.cli import build_parser
from fp_platform.cli.registry import cmd_db
from fp_platform.handles import handles
from fp_platform.resources import ONE_SHOT_JOBS
from fp_platform_tests.infra import terraform as tf

pytestmark = pytest.mark.infra

FORBIDDEN_TYPES = {  # spec DA §5.4, §9.3, §15.1.4
    "aws_nat_gateway": "NAT gateway",
    "aws_lb": "load balancer",
    "aws_alb": "load balancer",
    "aws_elb": "classic load balancer",
    "aws_lb_listener": "load balancer listener",
    "aws_alb_listener": "load balancer listener",
    "aws_msk_cluster": "provisioned MSK cluster",
}
CORE_ONLY_TYPES = (  # what demo must never own (spec DA §14.1: it survives teardown)
    "aws_s3_bucket",
    "aws_dynamodb_table",
    "aws_iam_role",
    "aws_iam_role_policy",
    "aws_cloudwatch_log_group",
    "aws_ecr_repository",
    "aws_budgets_budget",
)


def _pins() -> dict:
    return tf.dev_min_pins()


def _tag_pairs() -> dict[str, str]:
    pins = _pins() | {k: handles("dev_min").get(k) for k in ("TAG_PROJECT", "TAG_ENV")}  # the runtime reads these two
    pairs = dict(pins[k].split("=", 1) for k in ("TAG_PROJECT", "TAG_ENV", "TAG_OWNER"))
    return pairs | {"expires_at": tf.OPERATOR_VARS["core"]["expires_at"]}


def _after(r: dict) -> dict:
    return r["change"]["after"] or {}


def _by_type(plan: dict, rtype: str) -> list[dict]:
    return [r for r in tf.resources(plan) if r["type"] == rtype]


def test_fmt_check_recursive(terraform, tf_base):
    proc = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(tf.TERRAFORM_DIR)],
        capture_output=True,
        text=True,
        env=tf.offline_env(tf_base),
    )
    assert proc.returncode == 0, f"terraform fmt -recursive {tf.TERRAFORM_DIR} would change:\n{proc.stdout}"


@pytest.mark.parametrize("stack", ["core", "demo"])
def test_validate(stack, request):
    wd = request.getfixturevalue(f"{stack}_dir")
    out = json.loads(wd.run("validate", "-json", "-no-color").stdout)
    assert out["valid"] is True and out["error_count"] == 0, out


@pytest.mark.parametrize("stack", ["core", "demo"])
def test_plan_has_no_forbidden_infrastructure(stack, request):
    plan = request.getfixturevalue(f"{stack}_plan")
    types = {r["type"] for r in tf.resources(plan)}
    assert len(types) >= 8, types  # the plan really has the stack in it
    found = {FORBIDDEN_TYPES[t] for t in types & set(FORBIDDEN_TYPES)}
    assert not found, f"{stack} plans {found} (spec DA §5.4)"
    assert not any(t.startswith(("aws_lb", "aws_alb", "aws_elb", "aws_msk")) for t in types), types


@pytest.mark.parametrize("stack", ["core", "demo"])
def test_every_taggable_resource_carries_the_four_tags(stack, request):
    plan = request.getfixturevalue(f"{stack}_plan")
    want = _tag_pairs()
    taggable = [r for r in tf.resources(plan) if "tags_all" in _after(r) or "tags_all" in r["change"]["after_unknown"]]
    assert len(taggable) >= 20, len(taggable)
    for r in taggable:
        tags = _after(r).get("tags_all")
        assert tags is not None, f"{r['address']}: tags_all unknown at plan"
        missing = {k: v for k, v in want.items() if tags.get(k) != v}
        assert not missing, f"{r['address']} lacks {missing}"


def test_lifecycle_rules_equal_the_retention_handles(core_plan):
    pins, h = _pins(), handles("dev_min")
    expiry = {
        h.get("S3_ORACLE_BUCKET"): pins["RETENTION_ORACLE_SOURCE_DAYS"],
        h.get("S3_ARCHIVE_BUCKET"): pins["RETENTION_ARCHIVE_DAYS"],
        h.get("S3_QUARANTINE_BUCKET"): pins["RETENTION_QUARANTINE_DAYS"],
        h.get("S3_EVIDENCE_BUCKET"): pins["RETENTION_EVIDENCE_DAYS"],
        h.get("S3_ARTIFACTS_BUCKET"): pins["RETENTION_TRAINING_ARTIFACTS_DAYS"],
        pins["TF_STATE_BUCKET"]: None,  # state history is kept (spec DA §14.1)
    }
    suffix = f"-{tf.FAKE_ACCOUNT}-{h.get('AWS_REGION')}"
    buckets = {_after(r)["bucket"]: r["index"] for r in _by_type(core_plan, "aws_s3_bucket")}
    assert set(buckets) == {stem + suffix for stem in expiry}, buckets  # names carry account and region (§8.3)
    lifecycles = {r["index"]: _after(r)["rule"] for r in _by_type(core_plan, "aws_s3_bucket_lifecycle_configuration")}
    for stem, days in expiry.items():
        rules = {rule["id"]: rule for rule in lifecycles[buckets[stem + suffix]]}
        assert (
            rules["abort-incomplete-multipart"]["abort_incomplete_multipart_upload"][0]["days_after_initiation"]
            == pins["S3_ABORT_INCOMPLETE_MULTIPART_DAYS"]
        )
        if days is None:
            assert "retention-expiry" not in rules, stem
            continue
        rule = rules["retention-expiry"]
        assert rule["status"] == "Enabled" and rule["expiration"][0]["days"] == days, (stem, rule)
        assert rule["noncurrent_version_expiration"][0]["noncurrent_days"] == days, stem


def test_buckets_are_private_encrypted_versioned_and_tls_only(core_plan):
    n = len(_by_type(core_plan, "aws_s3_bucket"))
    assert n == 6
    blocks = _by_type(core_plan, "aws_s3_bucket_public_access_block")
    assert len(blocks) == n and all(
        all(
            _after(b)[k]
            for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
        )
        for b in blocks
    )
    sse = _by_type(core_plan, "aws_s3_bucket_server_side_encryption_configuration")
    assert len(sse) == n
    versioning = _by_type(core_plan, "aws_s3_bucket_versioning")
    assert [_after(v)["versioning_configuration"][0]["status"] for v in versioning] == ["Enabled"] * n
    policies = [
        json.loads(_after(p)["policy"]) for p in _by_type(core_plan, "aws_s3_bucket_policy") if _after(p).get("policy")
    ]
    assert len(_by_type(core_plan, "aws_s3_bucket_policy")) == n
    for policy in policies:  # known at plan only where the bucket ARN is
        (st,) = policy["Statement"]
        assert st["Effect"] == "Deny" and st["Condition"]["Bool"]["aws:SecureTransport"] == "false"


def test_core_pins_logs_budget_lock_and_registry(core_plan):
    pins = _pins()
    groups = _by_type(core_plan, "aws_cloudwatch_log_group")
    assert len(groups) == len(pins["CLOUDWATCH_LOG_GROUPS"])
    assert {_after(g)["retention_in_days"] for g in groups} == {pins["RETENTION_CLOUDWATCH_LOGS_DAYS"]}
    (budget,) = _by_type(core_plan, "aws_budgets_budget")
    b = _after(budget)
    assert (
        float(b["limit_amount"]) == pins["AWS_BUDGET_LIMIT_AMOUNT"] and b["limit_unit"] == pins["AWS_BUDGET_CURRENCY"]
    )
    assert sorted(n["threshold"] for n in b["notification"]) == pins["AWS_BUDGET_ALERT_THRESHOLDS"]
    (lock,) = _by_type(core_plan, "aws_dynamodb_table")
    assert _after(lock)["name"] == pins["TF_LOCK_TABLE"] and _after(lock)["hash_key"] == "LockID"
    (repo,) = _by_type(core_plan, "aws_ecr_repository")
    assert _after(repo)["image_tag_mutability"] == "IMMUTABLE"
    roles = {_after(r)["name"] for r in _by_type(core_plan, "aws_iam_role")}
    runtime = {k: v for k, v in handles("dev_min").values.items() if k.startswith("ROLE_")}  # the packs' (k8s reads)
    assert roles == {v for k, v in (pins | runtime).items() if k.startswith("ROLE_") and v}


def _values(v: str | list[str]) -> list[str]:
    """A policy field as a list (aws_iam_policy_document writes one value as a string)."""
    return v if isinstance(v, list) else [v]


def _ecr_push(core_plan: dict) -> tuple[dict, dict, dict]:
    """The image workflow's push role as planned: its resource, trust policy and access policy."""
    name = _pins()["ROLE_ECR_PUSH"]
    (role,) = [r for r in _by_type(core_plan, "aws_iam_role") if _after(r)["name"] == name]
    (policy,) = [p for p in _by_type(core_plan, "aws_iam_role_policy") if _after(p)["name"] == f"{name}-access"]
    return role, json.loads(_after(role)["assume_role_policy"]), json.loads(_after(policy)["policy"])


def test_the_ecr_push_role_trusts_only_this_repositorys_push_ref_through_github_oidc(core_plan):
    host = "token.actions.githubusercontent.com"
    (provider,) = _by_type(core_plan, "aws_iam_openid_connect_provider")
    assert _after(provider)["url"] == f"https://{host}" and _after(provider)["client_id_list"] == ["sts.amazonaws.com"]
    role, trust, _ = _ecr_push(core_plan)
    for r in (provider, role):
        assert _tag_pairs().items() <= _after(r)["tags_all"].items(), r["address"]
    (st,) = trust["Statement"]
    assert (st["Effect"], st["Action"]) == ("Allow", "sts:AssumeRoleWithWebIdentity")
    assert st["Principal"] == {"Federated": f"arn:aws:iam::{tf.FAKE_ACCOUNT}:oidc-provider/{host}"}
    core, ref = tf.OPERATOR_VARS["core"], _pins()["GITHUB_OIDC_PUSH_REF"]
    repo = f"{core['github_owner']}/{core['github_repository']}"
    assert set(st["Condition"]) == {"StringEquals"}  # exact matches only: no StringLike wildcard on sub
    conditions = {k: _values(v) for k, v in st["Condition"]["StringEquals"].items()}
    assert conditions == {f"{host}:aud": ["sts.amazonaws.com"], f"{host}:sub": [f"repo:{repo}:ref:{ref}"]}


def test_the_ecr_push_role_may_push_to_the_platform_repository_only(core_plan):
    _, _, policy = _ecr_push(core_plan)
    by_sid = {st["Sid"]: st for st in policy["Statement"]}
    assert set(by_sid) == {"EcrLogin", "PushPlatformImage"} and all(st["Effect"] == "Allow" for st in by_sid.values())
    # the one "*" resource: GetAuthorizationToken takes no resource-level scope (github_oidc.tf says why)
    login = by_sid["EcrLogin"]
    assert (_values(login["Action"]), login["Resource"]) == (["ecr:GetAuthorizationToken"], "*")
    push = by_sid["PushPlatformImage"]
    repo = f"arn:aws:ecr:{handles('dev_min').get('AWS_REGION')}:{tf.FAKE_ACCOUNT}:repository/{_pins()['ECR_REPO_NAME']}"
    assert _values(push["Resource"]) == [repo]
    actions = set(_values(push["Action"]))
    assert {"ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"} <= actions
    assert "ecr:DescribeImages" in actions  # the workflow reads the pushed digest back
    assert all(a.startswith("ecr:") and "*" not in a for a in actions), actions
    assert not actions & {"ecr:BatchDeleteImage", "ecr:DeleteRepository", "ecr:SetRepositoryPolicy"}


def test_demo_runs_one_replica_of_each_service_by_digest(demo_plan):
    services = _by_type(demo_plan, "aws_ecs_service")
    assert len(services) == 13 and {_after(s)["desired_count"] for s in services} == {1}
    assert {_after(s)["deployment_maximum_percent"] for s in services} == {100}  # never two consumers at once
    digest = tf.OPERATOR_VARS["demo"]["image_digest"]
    for td in _by_type(demo_plan, "aws_ecs_task_definition"):
        (container,) = json.loads(_after(td)["container_definitions"])
        assert container["image"].endswith(f"@{digest}"), container["image"]
    nets = [_after(s)["network_configuration"][0] for s in services]
    assert all(n["assign_public_ip"] for n in nets)  # public subnets, no NAT (spec DA §9.2)


def _containers(plan: dict) -> dict[str, dict]:
    """Task definition family → its one container definition."""
    out = {}
    for td in _by_type(plan, "aws_ecs_task_definition"):
        (container,) = json.loads(_after(td)["container_definitions"])
        out[_after(td)["family"]] = container
    return out


def test_the_migrations_task_runs_the_schema_command_of_the_cli(demo_plan):
    """Started by the operator with no override, the task must carry its command: `fp-platform db migrate`, the
    console script the image installs and the command that runs db.bootstrap (as `stack up` does locally)."""
    migrate = _containers(demo_plan)[_pins()["TD_DB_MIGRATIONS"]]
    argv = migrate["command"]
    assert argv == ["fp-platform", "db", "migrate"] and "entryPoint" not in migrate, migrate
    scripts = tomllib.loads((tf.REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[argv[0]] == "fp_platform.cli:main"
    args = build_parser().parse_args(argv[1:])
    assert (args.func, args.action) == (cmd_db, "migrate")


def test_launched_tasks_run_their_command_as_given(demo_plan):
    """ECS prepends an entry point (the task definition's, else the image's ENTRYPOINT) to a launch's command
    override: Pipes' `python -m <module> <job> ...` and EcsRunLauncher's `dagster api execute_run ...` (registered
    with an empty entryPoint) run as given only if the image has no ENTRYPOINT and no task definition sets one."""
    dockerfile = (tf.REPO / "Dockerfile").read_text()
    assert not [line for line in dockerfile.splitlines() if line.strip().startswith("ENTRYPOINT")], "an ENTRYPOINT"
    containers, h = _containers(demo_plan), handles("dev_min")
    families = {h.get(job.ecs_task_family) for job in ONE_SHOT_JOBS.values()}
    assert len(families) == 8, families
    for family in families:
        assert "entryPoint" not in containers[family] and "command" not in containers[family], containers[family]
    assert all("entryPoint" not in c for c in containers.values())


def test_demo_database_requires_tls_and_is_private(demo_plan):
    (db,) = _by_type(demo_plan, "aws_db_instance")
    assert _after(db)["publicly_accessible"] is False and _after(db)["storage_encrypted"] is True
    (pg,) = _by_type(demo_plan, "aws_db_parameter_group")
    params = {p["name"]: p["value"] for p in _after(pg)["parameter"]}
    assert params["rds.force_ssl"] == "1"


def test_demo_secrets_are_securestrings_and_never_in_the_plan(demo_plan):
    params = _by_type(demo_plan, "aws_ssm_parameter")
    assert {_after(p)["type"] for p in params} == {"SecureString"}
    names = {_after(p)["name"] for p in params}
    pins = _pins()
    h = handles("dev_min")
    assert {
        h.get("SSM_DB_PASSWORD_PATH"),
        h.get("SSM_DB_APP_USER_PATH"),
        h.get("SSM_DB_APP_PASSWORD_PATH"),
        h.get("SSM_IG_API_KEY_PATH"),
        pins["SSM_VPC_ID_PATH"],
    } <= names
    text = json.dumps(demo_plan)
    for secret in ("db_password", "db_app_password", "ig_api_key"):
        assert tf.OPERATOR_VARS["demo"][secret] not in text, f"{secret} reached the plan"


def test_demo_owns_nothing_of_core(core_plan, demo_plan):
    """Demo creates no resource of core's kinds and names none of core's objects, so `destroy` of demo
    (which deletes exactly what demo's state holds) cannot reach core; the slow moto test destroys demo
    for real and checks core is whole."""
    demo_types = {r["type"] for r in tf.resources(demo_plan)}
    assert not demo_types & set(CORE_ONLY_TYPES), demo_types & set(CORE_ONLY_TYPES)
    core_names = {_after(r).get(k) for r in tf.resources(core_plan) for k in ("name", "bucket") if _after(r).get(k)}
    demo_names = {_after(r).get("name") for r in tf.resources(demo_plan) if _after(r).get("name")}
    assert len(core_names) >= 20 and len(demo_names) >= 20, (len(core_names), len(demo_names))
    assert not core_names & demo_names, core_names & demo_names


def test_rendered_iam_policies_grant_no_wildcard_action(core_plan):
    """The policies as Terraform renders them (the source check reads HCL; this reads the JSON AWS gets)."""
    policies = [_after(p).get("policy") for p in _by_type(core_plan, "aws_iam_role_policy")]
    known = [json.loads(p) for p in policies if p]
    assert len(known) >= 12, f"only {len(known)} of {len(policies)} policies known at plan"
    for policy in known:
        for st in policy["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            assert st["Effect"] == "Allow" and not [a for a in actions if "*" in a], st

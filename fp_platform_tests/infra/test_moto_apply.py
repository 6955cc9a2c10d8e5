"""apply and destroy against moto_server (slow): the parts of core moto emulates (buckets with their
public access block, encryption, versioning, lifecycle and TLS policy; the lock table; the log groups),
core's state moved into the bucket it created under the DynamoDB lock (the bootstrap of
infra/terraform/README.md) and back, and demo (VPC without NAT, security groups, RDS, ECS cluster, task
definitions and services, SSM parameters). Then P0 against what was applied (its AWS-side gates pass; a
seeded NAT gateway fails it by name), P17's teardown through `terraform destroy` of demo (nothing
cost-bearing left, credentials gone, evidence readable), a leftover tagged RDS instance that fails it by
name; demo's destroy leaves core whole, core's destroy leaves nothing. Of IAM, the image workflow's OIDC provider
and push role are applied (moto keeps the trust as written but enforces no condition); budgets (moto hangs on
notifications), the other roles and ECR are not applied here; moto has no Confluent broker and no Postgres behind its
RDS, so P0's topic and database gates fail here, naming what they could not reach."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from fp_platform.contracts.gates import judge
from fp_platform.handles import AWS_ACCOUNT_ENV_VAR, Handles, handles, load
from fp_platform.operate import gates, teardown
from fp_platform.operate.substrate_ready import secret_path_keys, substrate_facts
from fp_platform.substrate import db
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform_tests.infra import terraform as tf

pytestmark = [pytest.mark.infra, pytest.mark.slow]

CORE_TARGETS = (
    "aws_s3_bucket.this",
    "aws_s3_bucket_public_access_block.this",
    "aws_s3_bucket_ownership_controls.this",
    "aws_s3_bucket_server_side_encryption_configuration.this",
    "aws_s3_bucket_versioning.this",
    "aws_s3_bucket_policy.tls_only",
    "aws_s3_bucket_lifecycle_configuration.this",
    "aws_dynamodb_table.tf_lock",
    "aws_cloudwatch_log_group.this",
    "aws_iam_openid_connect_provider.github",  # named too: a targeted destroy removes dependents, not dependencies
    "aws_iam_role_policy.ecr_push",  # the push role, by reference
)
DEMO_SECRETS = ("aws_ssm_parameter.db_password", "aws_ssm_parameter.db_app_password", "aws_ssm_parameter.ig_api_key")
DEMO_TARGETS = (
    *DEMO_SECRETS,
    "aws_ssm_parameter.config",  # VPC, subnets, security groups and the RDS instance, by reference
    "aws_ecs_cluster_capacity_providers.demo",
    "aws_ecs_service.this",  # task definitions and service discovery, by reference
    "aws_ecs_task_definition.this",  # the one-shot jobs' too (no service names them)
)
RUN = "platform_20261130T000000Z"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    server = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("moto_server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _client(service: str, endpoint: str):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=handles("dev_min").get("AWS_REGION"),
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _apply_args(wd: tf.Workdir, endpoint: str, targets: tuple[str, ...]) -> list[str]:
    return [
        "-input=false",
        "-lock=false",
        *(f"-target={t}" for t in targets),
        "-var",
        "aws_offline=true",
        "-var",
        f"aws_endpoint_url={endpoint}",
        *wd.var_args(),
    ]


def _apply(wd: tf.Workdir, endpoint: str, targets: tuple[str, ...], destroy: bool = False) -> None:
    flags = ["-destroy"] if destroy else []
    wd.run("apply", "-auto-approve", *flags, *_apply_args(wd, endpoint, targets), timeout=900)


def _backend_config(wd: tf.Workdir, endpoint: str, bucket: str, table: str) -> Path:
    path = wd.path / "moto.s3.tfbackend"
    region = handles("dev_min").get("AWS_REGION")
    path.write_text(
        f'bucket = "{bucket}"\nkey = "dev_min/core/terraform.tfstate"\nregion = "{region}"\n'
        f'dynamodb_table = "{table}"\nencrypt = true\nuse_path_style = true\n'
        f'endpoints = {{ s3 = "{endpoint}", dynamodb = "{endpoint}" }}\n'
        "skip_credentials_validation = true\nskip_requesting_account_id = true\nskip_metadata_api_check = true\n"
    )
    return path


def _move_state_into_bucket_and_back(core: tf.Workdir, endpoint: str, bucket: str, table: str) -> dict:
    """README's bootstrap: drop the local override, migrate into the S3 backend (locked by the table),
    plan under the lock, then migrate back so the bucket can be emptied and destroyed."""
    s3, ddb = _client("s3", endpoint), _client("dynamodb", endpoint)
    # moto denies every object call under a Deny statement whatever its condition (a Deny on
    # aws:SecureTransport=true denies too), so the TLS-only policy is lifted while the state lives there
    policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)
    override = core.path / "backend_override.tf"
    override.unlink()
    config = _backend_config(core, endpoint, bucket, table)
    core.init("-migrate-state", "-force-copy", f"-backend-config={config.name}")
    state = s3.get_object(Bucket=bucket, Key="dev_min/core/terraform.tfstate")
    digest = ddb.get_item(TableName=table, Key={"LockID": {"S": f"{bucket}/dev_min/core/terraform.tfstate-md5"}})
    core.run("plan", "-input=false", "-lock=true", "-refresh=false", "-var", "aws_offline=true", *core.var_args())
    override.write_text(tf.BACKEND_OVERRIDE)
    core.init("-migrate-state", "-force-copy")
    versions = s3.list_object_versions(Bucket=bucket)
    for v in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
        s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    return {"state_encrypted": state.get("ServerSideEncryption"), "digest": digest.get("Item")}


def test_core_and_demo_apply_and_destroy_on_moto(terraform, tmp_path, moto_endpoint, monkeypatch):
    core = tf.prepare("core", tmp_path, terraform, endpoint=moto_endpoint)
    demo = tf.prepare("demo", tmp_path, terraform, endpoint=moto_endpoint)
    h = handles("dev_min")
    suffix = f"-{tf.FAKE_ACCOUNT}-{h.get('AWS_REGION')}"
    s3, ssm = _client("s3", moto_endpoint), _client("ssm", moto_endpoint)
    ddb, logs = _client("dynamodb", moto_endpoint), _client("logs", moto_endpoint)

    _apply(core, moto_endpoint, CORE_TARGETS)
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {stem + suffix for stem in h.buckets().values()} < buckets and len(buckets) == 6
    oracle = h.get("S3_ORACLE_BUCKET") + suffix
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=oracle)["Rules"]}
    assert rules["retention-expiry"]["Expiration"]["Days"] == 14
    assert s3.get_bucket_versioning(Bucket=oracle)["Status"] == "Enabled"
    assert s3.get_public_access_block(Bucket=oracle)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert "aws:SecureTransport" in s3.get_bucket_policy(Bucket=oracle)["Policy"]
    evidence = h.get("S3_EVIDENCE_BUCKET") + suffix
    ids = {r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=evidence)["Rules"]}
    assert ids == {"abort-incomplete-multipart"}  # evidence never expires (spec DA §14.3)
    lock_table = ddb.describe_table(TableName="fraud-platform-dev-min-tf-locks")["Table"]
    assert lock_table["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]
    groups = logs.describe_log_groups(logGroupNamePrefix="/fraud-platform/dev_min/")["logGroups"]
    assert len(groups) == 7 and {g["retentionInDays"] for g in groups} == {7}
    iam = _client("iam", moto_endpoint)
    (provider,) = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    assert provider["Arn"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    push_role = iam.get_role(RoleName=tf.dev_min_pins()["ROLE_ECR_PUSH"])["Role"]
    (trust,) = push_role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"]["Federated"] == provider["Arn"]
    assert trust["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == (
        "repo:example-org/fp_platform:ref:refs/heads/main"
    )

    moved = _move_state_into_bucket_and_back(
        core, moto_endpoint, "fraud-platform-dev-min-tfstate" + suffix, "fraud-platform-dev-min-tf-locks"
    )
    assert moved["digest"] is not None, "the S3 backend did not record its digest in the lock table"
    assert moved["state_encrypted"] in ("AES256", "aws:kms"), moved

    _apply(demo, moto_endpoint, DEMO_TARGETS)
    secret = ssm.get_parameter(Name=h.get("SSM_DB_PASSWORD_PATH"), WithDecryption=True)["Parameter"]
    assert secret["Type"] == "SecureString" and secret["Value"] == tf.OPERATOR_VARS["demo"]["db_password"]
    assert tf.OPERATOR_VARS["demo"]["db_password"] not in (demo.path / "terraform.tfstate").read_text()
    migrations = _client("ecs", moto_endpoint).describe_task_definition(
        taskDefinition=tf.dev_min_pins()["TD_DB_MIGRATIONS"]
    )
    assert migrations["taskDefinition"]["containerDefinitions"][0]["command"] == ["fp-platform", "db", "migrate"]

    destroy = demo.plan_json(
        "-destroy", "-var", "aws_offline=true", "-var", f"aws_endpoint_url={moto_endpoint}", name="destroy"
    )
    deleted = {r["address"].split("[")[0] for r in tf.resources(destroy) if r["change"]["actions"] == ["delete"]}
    assert not {a for a in deleted if a.split(".")[0] in CORE_KINDS}, deleted  # demo's destroy never reaches core

    run = _runtime(moto_endpoint, monkeypatch)
    # moto denies every object call under a Deny statement whatever its condition, so the TLS-only policies
    # (which allow these https calls on AWS) are lifted while the runtime works over moto's plain http
    policies = {b: s3.get_bucket_policy(Bucket=b)["Policy"] for b in run.buckets().values()}
    for bucket in policies:
        s3.delete_bucket_policy(Bucket=bucket)
    try:
        _p0_against_moto(run, moto_endpoint)
        _teardown_against_moto(run, demo, moto_endpoint)
    finally:
        load.cache_clear()  # the rendered bucket names belong to this test's account
        for bucket, policy in policies.items():
            _empty(s3, bucket)  # what this test's runtime wrote (its run's evidence), so core can be destroyed
            s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    assert len({b["Name"] for b in s3.list_buckets()["Buckets"]}) == 6  # core survives demo's destroy
    assert ddb.list_tables()["TableNames"] == ["fraud-platform-dev-min-tf-locks"]

    _apply(core, moto_endpoint, CORE_TARGETS, destroy=True)
    assert not s3.list_buckets()["Buckets"]
    assert not ddb.list_tables()["TableNames"]
    assert not logs.describe_log_groups(logGroupNamePrefix="/fraud-platform/dev_min/")["logGroups"]
    assert not iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    assert tf.dev_min_pins()["ROLE_ECR_PUSH"] not in {r["RoleName"] for r in iam.list_roles()["Roles"]}


CORE_KINDS = {
    "aws_s3_bucket",
    "aws_dynamodb_table",
    "aws_cloudwatch_log_group",
    "aws_ecr_repository",
    "aws_budgets_budget",
}


def _runtime(endpoint: str, mp: pytest.MonkeyPatch) -> Handles:
    """The dev_min runtime's view of the applied stacks: every boto3 client at moto_server (AWS_ENDPOINT_URL),
    core's rendered bucket names (FP_AWS_ACCOUNT_ID), and the Confluent parameters the Confluent module would
    write (not applied here: no Confluent provider), pointing at a broker that is not there."""
    for k, v in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        AWS_ACCOUNT_ENV_VAR: tf.FAKE_ACCOUNT,
    }.items():
        mp.setenv(k, v)
    load.cache_clear()
    h = load("dev_min")
    h = Handles(h.profile, {**h.values, "SUBSTRATE_PROBE_TIMEOUT_SECONDS": 1})
    ssm = _client("ssm", endpoint)
    for key, value in (
        ("SSM_CONFLUENT_BOOTSTRAP_PATH", "127.0.0.1:9"),
        ("SSM_CONFLUENT_API_KEY_PATH", "CONFLUENTKEY"),
        ("SSM_CONFLUENT_API_SECRET_PATH", "confluent-secret"),
    ):
        ssm.put_parameter(Name=h.get(key), Value=value, Type="SecureString", Overwrite=True)
    return h


def _verdicts(gate_set, doc) -> dict[str, tuple[bool, str]]:
    return {r.name: (r.passed, r.detail) for r in judge(gate_set, doc)}


def _p0_against_moto(h: Handles, endpoint: str) -> None:
    facts = substrate_facts(h, S3ObjectStore(h), RUN, lambda: db.connect(h))
    v = _verdicts(gates.SUBSTRATE_READY, facts)
    for gate in ("buckets_writable", "secrets_present", "no_forbidden_infrastructure"):
        assert v[gate][0], (gate, v[gate])
    assert len(facts["buckets"]) == 5 and len(facts["secrets"]) >= 11
    assert not v["topics_pinned"][0] and "broker unreachable" in v["topics_pinned"][1]  # no Confluent in moto
    assert not v["database_reachable_tls"][0]  # moto's RDS has no Postgres behind its endpoint
    assert facts["database"]["ssl_mode"] == "require"
    s3 = _client("s3", endpoint)
    for bucket in h.buckets().values():  # versioned buckets: the probe leaves no version and no delete marker
        left = s3.list_object_versions(Bucket=bucket, Prefix="_fp_probe/")
        assert not left.get("Versions") and not left.get("DeleteMarkers"), bucket

    ec2 = _client("ec2", endpoint)
    subnet = ec2.describe_subnets(Filters=[{"Name": "tag:env", "Values": ["dev_min"]}])["Subnets"][0]["SubnetId"]
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip)["NatGateway"]["NatGatewayId"]
    v = _verdicts(gates.SUBSTRATE_READY, substrate_facts(h, S3ObjectStore(h), RUN, lambda: db.connect(h)))
    assert not v["no_forbidden_infrastructure"][0] and nat in v["no_forbidden_infrastructure"][1]
    ec2.delete_nat_gateway(NatGatewayId=nat)  # moto marks it deleted at once
    ec2.release_address(AllocationId=eip)


def _teardown_against_moto(h: Handles, demo: tf.Workdir, endpoint: str) -> None:
    writer = run_evidence(h, RUN)
    writer.write_summary("operate/daemons_ready.json", {"packs": []}, phase_id="P2")  # what P2 left
    ecs = _client("ecs", endpoint)
    cluster = h.get("ECS_CLUSTER_NAME")
    assert ecs.list_services(cluster=cluster)["serviceArns"], "demo's services were not applied"

    def destroy(_h: Handles) -> dict:  # terraform destroy of demo, aimed at moto_server
        outcome = teardown.run_terraform_destroy(
            demo.path, *_apply_args(demo, endpoint, ()), env=demo.env, timeout_s=900
        )
        confluent = [
            h.get(k)
            for k in ("SSM_CONFLUENT_BOOTSTRAP_PATH", "SSM_CONFLUENT_API_KEY_PATH", "SSM_CONFLUENT_API_SECRET_PATH")
        ]
        _client("ssm", endpoint).delete_parameters(Names=confluent)  # the Confluent module's share of the destroy
        return outcome

    rds = _client("rds", endpoint)
    facts = teardown.teardown_facts(h, writer, lambda: db.connect(h), destroy=destroy)
    v = _verdicts(gates.TEARDOWN, facts)
    assert all(passed for passed, _ in v.values()), v
    assert not ssm_names(h, endpoint)  # every SSM parameter of the profile is gone
    assert not rds.describe_db_instances()["DBInstances"]

    rds.create_db_instance(
        DBInstanceIdentifier="leftover-db",
        DBInstanceClass="db.t4g.micro",
        Engine="postgres",
        MasterUsername="fp_admin",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
        Tags=[{"Key": "project", "Value": "fraud-platform"}, {"Key": "env", "Value": "dev_min"}],
    )
    facts = teardown.teardown_facts(h, writer, lambda: db.connect(h), destroy=destroy)
    v = _verdicts(gates.TEARDOWN, facts)
    assert not v["no_cost_bearing_residuals"][0] and "leftover-db" in v["no_cost_bearing_residuals"][1]
    writer.write_summary(
        "teardown/teardown_proof.json", teardown.proof_doc(facts, {k: p for k, (p, _) in v.items()}), phase_id="P17"
    )
    assert writer.read("teardown/teardown_proof.json")["present"]["db"] is True  # the proof names the category
    rds.delete_db_instance(DBInstanceIdentifier="leftover-db", SkipFinalSnapshot=True)


def ssm_names(h: Handles, endpoint: str) -> list[str]:
    names = [h.get(k) for k in secret_path_keys(h)]
    ssm = _client("ssm", endpoint)
    return [
        p["Name"] for i in range(0, len(names), 10) for p in ssm.get_parameters(Names=names[i : i + 10])["Parameters"]
    ]


def _empty(s3, bucket: str) -> None:
    versions = s3.list_object_versions(Bucket=bucket)
    for v in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
        s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])

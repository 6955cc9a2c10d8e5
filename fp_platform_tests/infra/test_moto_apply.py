"""apply and destroy against moto_server (slow): the parts of core moto emulates (buckets with their
public access block, encryption, versioning, lifecycle and TLS policy; the lock table; the log groups),
core's state moved into the bucket it created under the DynamoDB lock (the bootstrap of
infra/terraform/README.md) and back, and demo's SSM secrets; demo's destroy removes its secrets and
leaves core whole, core's destroy leaves nothing. Budgets (moto hangs on notifications), IAM, ECR, RDS,
ECS and the VPC are not applied here."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from fp_platform.handles import handles
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
)
DEMO_TARGETS = ("aws_ssm_parameter.db_password", "aws_ssm_parameter.ig_api_key")


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


def _apply(wd: tf.Workdir, endpoint: str, targets: tuple[str, ...], destroy: bool = False) -> None:
    flags = ["-destroy"] if destroy else []
    wd.run(
        "apply",
        "-auto-approve",
        "-input=false",
        "-lock=false",
        *flags,
        *(f"-target={t}" for t in targets),
        "-var",
        "aws_offline=true",
        "-var",
        f"aws_endpoint_url={endpoint}",
        *wd.var_args(),
        timeout=900,
    )


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


def test_core_and_demo_apply_and_destroy_on_moto(terraform, tmp_path, moto_endpoint):
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

    moved = _move_state_into_bucket_and_back(
        core, moto_endpoint, "fraud-platform-dev-min-tfstate" + suffix, "fraud-platform-dev-min-tf-locks"
    )
    assert moved["digest"] is not None, "the S3 backend did not record its digest in the lock table"
    assert moved["state_encrypted"] in ("AES256", "aws:kms"), moved

    _apply(demo, moto_endpoint, DEMO_TARGETS)
    secret = ssm.get_parameter(Name=h.get("SSM_DB_PASSWORD_PATH"), WithDecryption=True)["Parameter"]
    assert secret["Type"] == "SecureString" and secret["Value"] == tf.OPERATOR_VARS["demo"]["db_password"]
    assert tf.OPERATOR_VARS["demo"]["db_password"] not in (demo.path / "terraform.tfstate").read_text()

    destroy = demo.plan_json(
        "-destroy", "-var", "aws_offline=true", "-var", f"aws_endpoint_url={moto_endpoint}", name="destroy"
    )
    deleted = {r["address"] for r in tf.resources(destroy) if r["change"]["actions"] == ["delete"]}
    assert deleted == set(DEMO_TARGETS), deleted  # plan -destroy of demo touches demo's own addresses only
    _apply(demo, moto_endpoint, DEMO_TARGETS, destroy=True)
    assert not ssm.get_parameters(Names=[h.get("SSM_DB_PASSWORD_PATH"), h.get("SSM_IG_API_KEY_PATH")])["Parameters"]
    assert len({b["Name"] for b in s3.list_buckets()["Buckets"]}) == 6  # core survives demo's destroy
    assert ddb.list_tables()["TableNames"] == ["fraud-platform-dev-min-tf-locks"]

    _apply(core, moto_endpoint, CORE_TARGETS, destroy=True)
    assert not s3.list_buckets()["Buckets"]
    assert not ddb.list_tables()["TableNames"]
    assert not logs.describe_log_groups(logGroupNamePrefix="/fraud-platform/dev_min/")["logGroups"]

"""apply and destroy against moto_server (slow): the parts of core moto emulates (buckets with their
public access block, encryption, versioning, lifecycle and TLS policy; the lock table; the log groups)
and demo's SSM secrets; demo's destroy removes its secrets and leaves core whole, core's destroy leaves
nothing. Budgets (moto hangs on notifications), IAM, ECR, RDS, ECS and the VPC are not applied here."""

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

    _apply(demo, moto_endpoint, DEMO_TARGETS)
    secret = ssm.get_parameter(Name=h.get("SSM_DB_PASSWORD_PATH"), WithDecryption=True)["Parameter"]
    assert secret["Type"] == "SecureString" and secret["Value"] == tf.OPERATOR_VARS["demo"]["db_password"]
    assert tf.OPERATOR_VARS["demo"]["db_password"] not in (demo.path / "terraform.tfstate").read_text()

    _apply(demo, moto_endpoint, DEMO_TARGETS, destroy=True)
    assert not ssm.get_parameters(Names=[h.get("SSM_DB_PASSWORD_PATH"), h.get("SSM_IG_API_KEY_PATH")])["Parameters"]
    assert len({b["Name"] for b in s3.list_buckets()["Buckets"]}) == 6  # core survives demo's destroy
    assert ddb.list_tables()["TableNames"] == ["fraud-platform-dev-min-tf-locks"]

    _apply(core, moto_endpoint, CORE_TARGETS, destroy=True)
    assert not s3.list_buckets()["Buckets"]
    assert not ddb.list_tables()["TableNames"]
    assert not logs.describe_log_groups(logGroupNamePrefix="/fraud-platform/dev_min/")["logGroups"]

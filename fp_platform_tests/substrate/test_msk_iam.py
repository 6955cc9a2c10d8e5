"""The MSK IAM token callback (dev_full's SASL/OAUTHBEARER): with fake AWS credentials in the environment the real
signer presigns a token locally (no network), and without credentials it refuses instead of handing librdkafka an
empty token."""

from __future__ import annotations

import base64
import time
from urllib.parse import parse_qs, urlparse

import pytest

from fp_platform.substrate.bus import msk_iam_token_cb

FAKE_KEY_ID = "AKIAFAKEFAKEFAKEFAKE"


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Only the environment's credentials are in reach: no profile files, no instance metadata."""
    for var in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    return monkeypatch


def _decode(token: str) -> str:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


def test_the_callback_returns_a_presigned_token_and_its_expiry(aws_env):
    aws_env.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "fake/secret/key/fake/secret/key/fake/secr")
    token, expiry_s = msk_iam_token_cb("eu-west-2")("")
    url = urlparse(_decode(token))
    query = parse_qs(url.query)
    assert url.netloc == "kafka.eu-west-2.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith(f"{FAKE_KEY_ID}/")
    assert "/eu-west-2/kafka-cluster/aws4_request" in query["X-Amz-Credential"][0]
    assert len(query["X-Amz-Signature"][0]) == 64
    assert time.time() < expiry_s <= time.time() + 3600  # epoch seconds, as librdkafka's oauth_cb wants


def test_without_credentials_the_callback_refuses(aws_env):
    aws_env.delenv("AWS_ACCESS_KEY_ID", raising=False)
    aws_env.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    with pytest.raises(Exception, match="(?i)credential"):
        msk_iam_token_cb("eu-west-2")("")

"""Secret lookup by handle key: local files under `.fp/secrets/` or AWS SSM Parameter Store.

The handle (e.g. `SSM_IG_API_KEY_PATH`) names the path; `SECRETS_BACKEND` says where it lives.
"""

from __future__ import annotations

import secrets as token_source
from pathlib import Path

from fp_platform.handles import Handles
from fp_platform.substrate.paths import state_dir


class SecretMissing(LookupError):
    """A secret the profile needs is not present."""


def _local_path(h: Handles, path_key: str) -> Path:
    return state_dir() / "secrets" / str(h.get(path_key))


def get_secret(h: Handles, path_key: str) -> str:
    backend = h.get("SECRETS_BACKEND")
    if backend == "local_files":
        path = _local_path(h, path_key)
        if not path.exists():
            raise SecretMissing(f"secret {path_key} not found at {path}; run `fp-platform stack up`")
        return path.read_text().strip()
    if backend == "aws_ssm":
        import boto3

        ssm = boto3.client("ssm", region_name=h.get("AWS_REGION"))
        try:
            return ssm.get_parameter(Name=h.get(path_key), WithDecryption=True)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            raise SecretMissing(f"SSM parameter {h.get(path_key)} ({path_key}) not found") from None
    raise SecretMissing(f"unknown SECRETS_BACKEND {backend!r}")


def ensure_local_secret(h: Handles, path_key: str, value: str | None = None) -> str:
    """Create a local secret once (random unless given); later calls return the stored value."""
    path = _local_path(h, path_key)
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = value or token_source.token_urlsafe(24)
    path.write_text(secret)
    path.chmod(0o600)
    return secret

"""S3 object store client (SeaweedFS locally, AWS S3 in the cloud profiles)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import botocore.exceptions
from botocore.config import Config

from fp_platform.contracts.evidence import ObjectExistsError
from fp_platform.handles import Handles
from fp_platform.substrate.secrets import get_secret


class S3ObjectStore:
    """Thin wrapper over boto3 with the write-once put the append-only law needs."""

    def __init__(self, h: Handles) -> None:
        kwargs: dict = {"region_name": h.get("AWS_REGION")}
        # path-style for a local endpoint (SeaweedFS serves no bucket subdomains on 127.0.0.1); AWS S3 gets
        # virtual-host addressing, the only style new buckets are guaranteed to answer
        addressing = "path" if h.values.get("S3_ENDPOINT_URL") else "virtual"
        if h.values.get("S3_ENDPOINT_URL"):
            kwargs["endpoint_url"] = h.get("S3_ENDPOINT_URL")
            kwargs["aws_access_key_id"] = get_secret(h, "SSM_S3_ACCESS_KEY_ID_PATH")
            kwargs["aws_secret_access_key"] = get_secret(h, "SSM_S3_SECRET_ACCESS_KEY_PATH")
        self.client = boto3.client(
            "s3",
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": addressing}),
            **kwargs,
        )

    def put(
        self, bucket: str, key: str, body: bytes, *, write_once: bool, metadata: dict[str, str] | None = None
    ) -> None:
        extra: dict = {"IfNoneMatch": "*"} if write_once else {}
        if metadata:
            extra["Metadata"] = metadata
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=body, **extra)
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if write_once and code in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                raise ObjectExistsError(f"s3://{bucket}/{key} exists") from None
            raise

    def get(self, bucket: str, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(f"s3://{bucket}/{key}") from None

    def delete(self, bucket: str, key: str) -> None:
        """Remove an object with every version of it (a versioned bucket would otherwise keep each one and a
        delete marker): only P0's probe markers; truth and evidence are never deleted."""
        versions = self.client.list_object_versions(Bucket=bucket, Prefix=key)
        found = [v for v in versions.get("Versions", []) + versions.get("DeleteMarkers", []) if v["Key"] == key]
        for v in found:
            self.client.delete_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])
        if not found:
            self.client.delete_object(Bucket=bucket, Key=key)

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.client.head_object(Bucket=bucket, Key=key)
            return True
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def head(self, bucket: str, key: str) -> dict | None:
        """Size and user metadata of an object, or None when it does not exist."""
        try:
            resp = self.client.head_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return {"size": resp["ContentLength"], "metadata": resp.get("Metadata", {})}

    def iter_keys(self, bucket: str, prefix: str) -> Iterator[str]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return list(self.iter_keys(bucket, prefix))

    def bucket_names(self) -> list[str]:
        return [b["Name"] for b in self.client.list_buckets().get("Buckets", [])]

    def ensure_bucket(self, bucket: str) -> bool:
        """Create `bucket` if absent; True when it was created now."""
        try:
            self.client.head_bucket(Bucket=bucket)
            return False
        except botocore.exceptions.ClientError:
            self.client.create_bucket(Bucket=bucket)
            return True

"""The handles registry: every resource name and tuning value, `base.yaml` overlaid by `<profile>.yaml`.

Code asks for a handle by key (`handles().get("FP_BUS_CONTROL_V1")`); raw bucket, topic or path
literals stay out of code so one place says what exists. `base.yaml` holds every key the runtime reads
with its default; a profile file names only what differs there, so the three environments are read
side by side and a misspelt override fails at load instead of silently leaving the default.
Tuning values are read through typed settings (`settings.py`), not by key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PROFILES = ("local", "dev_min", "dev_full")
PROFILE_ENV_VAR = "FP_PROFILE"
AWS_ACCOUNT_ENV_VAR = "FP_AWS_ACCOUNT_ID"  # set in the cloud tasks (and by the operator); never committed
BASE = "base"
_DIR = Path(__file__).parent
# A handle that names a location in a bucket refers to the bucket's handle (`s3://{S3_ARTIFACTS_BUCKET}/mlflow/`):
# it is rendered from the bucket's rendered name, so the two can never disagree.
BUCKET_REF = re.compile(r"\{(S3_[A-Z0-9_]+_BUCKET)\}")


class HandleError(KeyError):
    """A handle key is missing from the registry, or has no value in this profile."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class Topic:
    """One bus topic as the registry pins it."""

    key: str
    name: str
    partitions: int
    retention_ms: int
    partition_key: str
    topic_class: str


@dataclass(frozen=True)
class Handles:
    """The registry of one profile."""

    profile: str
    values: dict[str, Any]

    def get(self, key: str) -> Any:
        if key not in self.values:
            raise HandleError(f"handle {key} is not in fp_platform/handles/{BASE}.yaml")
        value = self.values[key]
        if value is None:
            raise HandleError(f"handle {key} has no value in profile {self.profile}")
        return value

    def pattern(self, key: str, **fields: str) -> str:
        """Fill a pattern handle such as `S3_EVIDENCE_RUN_ROOT_PATTERN` with its fields."""
        return str(self.get(key)).format(**fields)

    def topic(self, key: str) -> Topic:
        spec = self.get(key)
        if not key.startswith("FP_BUS_") or not isinstance(spec, dict):
            raise HandleError(f"handle {key} is not a topic")
        return Topic(key=key, **spec)

    def topics(self) -> list[Topic]:
        return [self.topic(k) for k, v in self.values.items() if k.startswith("FP_BUS_") and v]

    def topic_key_for_name(self, name: str) -> str:
        for t in self.topics():
            if t.name == name:
                return t.key
        raise HandleError(f"no topic handle names {name!r} in profile {self.profile}")

    def buckets(self) -> dict[str, str]:
        return {k: v for k, v in self.values.items() if k.startswith("S3_") and k.endswith("_BUCKET") and v}


def current_profile() -> str:
    profile = os.environ.get(PROFILE_ENV_VAR, "local")
    if profile not in PROFILES:
        raise HandleError(f"{PROFILE_ENV_VAR}={profile!r}; expected one of {', '.join(PROFILES)}")
    return profile


def _read(name: str) -> dict[str, Any]:
    path = _DIR / f"{name}.yaml"
    if not path.exists():
        raise HandleError(f"no handles registry {name!r} ({path})")
    doc = yaml.safe_load(path.read_text())
    if doc.get("env") != name:
        raise HandleError(f"{path} declares env={doc.get('env')!r}, expected {name!r}")
    return dict(doc.get("handles") or {})


def _is_bucket(key: str) -> bool:
    return key.startswith("S3_") and key.endswith("_BUCKET")


def _render_bucket_names(values: dict[str, Any], suffixed: bool = True) -> dict[str, Any]:
    """Cloud bucket names carry `-<account>-<region>` (docs/decisions.md D10): the registry keeps the stem, the
    account comes from FP_AWS_ACCOUNT_ID. Without it (or with `suffixed=False`) the stems stay, and P0 reports the
    buckets unresolved. Every `{S3_*_BUCKET}` reference in another handle is then filled with the bucket's name."""
    names = {k: v for k, v in values.items() if _is_bucket(k) and v}
    suffix, account = values.get("BUCKET_NAME_SUFFIX_PATTERN"), os.environ.get(AWS_ACCOUNT_ENV_VAR)
    if suffixed and suffix and account:
        tail = suffix.format(aws_account_id=account, aws_region=values["AWS_REGION"])
        names = {k: f"{v}{tail}" for k, v in names.items()}

    def bucket(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            raise HandleError(f"a handle refers to {match.group(1)}, which names no bucket in this profile")
        return names[match.group(1)]

    refs = {k: BUCKET_REF.sub(bucket, v) for k, v in values.items() if isinstance(v, str) and BUCKET_REF.search(v)}
    return values | names | refs


@cache
def load(profile: str, rendered: bool = True) -> Handles:
    """The base registry with `profile`'s overrides applied; an override of a key base lacks is refused.
    `rendered=False` keeps the bucket stems (what Terraform's tfvars are rendered from: Terraform suffixes them)."""
    if profile not in PROFILES:
        raise HandleError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    values = _read(BASE)
    overrides = _read(profile)
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise HandleError(
            f"fp_platform/handles/{profile}.yaml overrides keys that {BASE}.yaml does not define: {', '.join(unknown)}"
        )
    merged = values | overrides
    return Handles(profile=profile, values=_render_bucket_names(merged, suffixed=rendered))


def handles(profile: str | None = None) -> Handles:
    """The registry of `profile`, or of the current `FP_PROFILE` (default `local`)."""
    return load(profile or current_profile())

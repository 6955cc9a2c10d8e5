"""The handles registry is the single source of names: complete per profile, and used by key only."""

import ast
import re
from pathlib import Path

import pytest

from fp_platform.contracts.phases import PHASES
from fp_platform.handles import PROFILES, HandleError, handles

PACKAGE = Path(__file__).resolve().parents[2] / "fp_platform"
KEY_RE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
# Upper-case string literals in code that are not handle keys: environment variable names and
# enum values. Anything else that looks like a key must be in the registry.
NOT_HANDLES = (
    {
        "FP_PROFILE",
        "FP_PG_DSN",
        "FP_STATE_DIR",
        "FP_DAGSTER_PG_URL",
        "DAGSTER_HOME",
        "FP_GIT_SHA",
        "FP_IMAGE_TAG",
        "FP_IMAGE_DIGEST",
        "DAGSTER_PIPES_CONTEXT",
        "FP_FAILPOINT",
        "FP_DECISION_PROCESSOR_SNAPSHOT_INTERVAL_S",  # crash drills; the snapshot interval override
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT",
        "AWS_ALLOW_HTTP",
        "NOT_RUN",
        "TOPIC_ALREADY_EXISTS",
        "PG_VERSION",
        "MLFLOW_S3_ENDPOINT_URL",
        "PUBLISH_AMBIGUOUS",
        "RATE_LIMITED",
        "PAYLOAD_TOO_LARGE",
        "EMPTY_BATCH",
        "MALFORMED_JSON",  # IG outcomes/errors
        "UNSUPPORTED_MEDIA_TYPE",
        "TOO_DEEP",
        "UNAUTHENTICATED_RATE_LIMITED",
        "SETTLED",
        "MSG_SIZE_TOO_LARGE",  # Kafka error names IG's reconcile treats as permanent
        "RECORD_LIST_TOO_LARGE",
        "INVALID_RECORD",
        "CORRUPT_MESSAGE",
        "MISSING_CONTEXT",
        "LATE_CONTEXT",  # CSFB binding statuses
        "STEP_UP",
        "DEGRADED_CONTEXT",
        "RULES_ONLY",
        "FAIL_CLOSED",
        "NO_RULE_FIRED",
        "MODEL_SCORE",  # decision lane
        "CASE_OPENED",
        "EVIDENCE_ATTACHED",
        "QC_SAMPLE_APPROVE",
        "CHARGED_BACK",
        "BEYOND_WORLD_CLOCK",  # case/labels
        "ROLLED_BACK",
        "ROLLED_FORWARD",
        "RUN_ID",
        "FP_BUNDLE_MODEL_REF",  # MPR events; a metavar; SageMaker env
    }
    | {p.name for p in PHASES}
    | {
        # governance event types, reporter outcomes, Dagster step event types
        "CLOSURE_REFUSED",
        "DEGRADE_POSTURE_CHANGED",
        "DRILL_OBSERVED",
        "ENVIRONMENT_CONFORMANCE",
        "ENVIRONMENT_CONFORMANCE_CHANGED",
        "LABEL_WRITE_REFUSED",
        "REPORTER_REFUSED",
        "RUN_CLOSED",
        "WORKER_RESTARTED",
        "REFUSED_EVIDENCE_MISSING",
        "REFUSED_LOCK_HELD",
        "STEP_START",
        "STEP_SUCCESS",
        "STEP_FAILURE",
    }
)


def _string_literals() -> list[tuple[Path, int, str]]:
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append((path.relative_to(PACKAGE.parent), node.lineno, node.value))
    return found


def test_every_profile_has_the_same_keys():
    keys = {p: set(handles(p).values) for p in PROFILES}
    for profile in PROFILES:
        assert keys[profile] == keys["local"], (profile, sorted(keys["local"] ^ keys[profile]))


def test_topics_are_complete_and_unique_per_profile():
    for profile in PROFILES:
        topics = handles(profile).topics()
        names = [t.name for t in topics]
        assert len(names) == len(set(names)), profile
        assert len(topics) >= 14, profile
        for t in topics:
            assert t.partitions >= 1 and t.retention_ms > 0 and t.partition_key, t


def test_code_uses_only_registered_handle_keys():
    registered = set(handles("local").values)
    unknown = [
        f"{path}:{line}: {value}"
        for path, line, value in _string_literals()
        if KEY_RE.match(value) and value not in registered and value not in NOT_HANDLES
    ]
    assert not unknown, "handle keys used in code but missing from the registry:\n" + "\n".join(unknown)


def test_no_raw_topic_or_bucket_names_in_code():
    raw_names = set()
    for profile in PROFILES:
        h = handles(profile)
        raw_names |= {t.name for t in h.topics()} | set(h.buckets().values())
    offenders = [
        f"{path}:{line}: {value!r}"
        for path, line, value in _string_literals()
        if path.suffix == ".py" and (value in raw_names or re.search(r"\bfp\.bus\.[a-z_.]+v1\b", value))
    ]
    assert not offenders, "raw topic/bucket names (refer to handle keys instead):\n" + "\n".join(offenders)


def test_local_profile_binds_loopback_only():
    h = handles("local")
    for key, value in h.values.items():
        if isinstance(value, str) and re.search(r"\d+\.\d+\.\d+\.\d+", value):
            assert re.search(r"\b127\.\d+\.\d+\.\d+\b", value), (key, value)


def test_missing_and_null_handles_fail_with_a_clear_message():
    with pytest.raises(HandleError, match="NO_SUCH_KEY is not in fp_platform/handles/local.yaml"):
        handles("local").get("NO_SUCH_KEY")
    null_key = next(k for k, v in handles("local").values.items() if v is None)
    with pytest.raises(HandleError, match="has no value in profile local"):
        handles("local").get(null_key)

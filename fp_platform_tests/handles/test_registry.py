"""The handles registry is the single source of names: complete per profile, and used by key only."""

import ast
import re
from pathlib import Path

import pytest
import yaml

from fp_platform.contracts.phases import PHASES
from fp_platform.handles import AWS_ACCOUNT_ENV_VAR, PROFILES, HandleError, handles, load

PACKAGE = Path(__file__).resolve().parents[2] / "fp_platform"
INFRA_HANDLES = PACKAGE.parent / "infra" / "handles"
KEY_RE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
# Upper-case string literals in code that are not handle keys: environment variable names and
# enum values. Anything else that looks like a key must be in the registry.
NOT_HANDLES = (
    {
        "FP_PROFILE",
        "FP_AWS_ACCOUNT_ID",  # the cloud account: bucket names carry it (docs/decisions.md D10)
        "FP_PG_DSN",
        "FP_STATE_DIR",
        "FP_DAGSTER_PG_URL",
        "DAGSTER_HOME",
        "FP_GIT_SHA",
        "FP_IMAGE_TAG",
        "FP_IMAGE_DIGEST",
        "DAGSTER_PIPES_CONTEXT",
        "FP_FAILPOINT",
        "FP_SERVE_HOST",  # `fp-platform serve` binds here (SageMaker's container sets 0.0.0.0)
        "FP_DECISION_PROCESSOR_SNAPSHOT_INTERVAL_S",  # crash drills; the snapshot interval override
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "AWS_EC2_METADATA_DISABLED",  # P(-1)'s smoke child: no credentials in reach
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
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


def _registry_file(name: str) -> dict:
    return yaml.safe_load((PACKAGE / "handles" / f"{name}.yaml").read_text())["handles"] or {}


def _string_literals() -> list[tuple[Path, int, str]]:
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append((path.relative_to(PACKAGE.parent), node.lineno, node.value))
    return found


def test_a_profile_overrides_only_what_differs_from_base():
    base = _registry_file("base")
    for profile in PROFILES:
        overrides = _registry_file(profile)
        assert set(overrides) <= set(base), (profile, sorted(set(overrides) - set(base)))
        same = sorted(k for k, v in overrides.items() if base[k] == v)
        assert not same, f"{profile}.yaml repeats base.yaml's value for {same}"


def test_a_misspelt_override_fails_at_load(tmp_path, monkeypatch):
    import fp_platform.handles as registry

    (tmp_path / "base.yaml").write_text("env: base\nhandles:\n  WSP_BATCH_SIZE: 500\n")
    (tmp_path / "dev_min.yaml").write_text("env: dev_min\nhandles:\n  WSP_BATCH_SIZ: 50\n")
    monkeypatch.setattr(registry, "_DIR", tmp_path)
    registry.load.cache_clear()
    try:
        with pytest.raises(HandleError, match="overrides keys that base.yaml does not define: WSP_BATCH_SIZ"):
            registry.load("dev_min")
    finally:
        registry.load.cache_clear()


def test_every_runtime_key_is_read_by_the_runtime_and_spec_pins_are_not():
    """base.yaml holds only what fp_platform reads; infra/handles only what it does not (yet)."""
    tokens = {m for path in PACKAGE.rglob("*.py") for m in re.findall(r"[A-Z][A-Z0-9_]{3,}", path.read_text())}
    read = tokens | {k for k in _registry_file("base") if k.startswith("EKS_NAMESPACE_")}  # k8s.namespace_key
    unread = sorted(set(_registry_file("base")) - read)
    assert not unread, f"base.yaml keys no code reads (move them to infra/handles or drop them): {unread}"
    for profile in ("dev_min", "dev_full"):
        pins = yaml.safe_load((INFRA_HANDLES / f"{profile}.yaml").read_text())
        assert pins["env"] == profile
        assert not set(pins["handles"]) & set(_registry_file("base")), profile
        assert not set(pins["handles"]) & tokens, f"code reads spec pins of infra/handles/{profile}.yaml"


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
    with pytest.raises(HandleError, match="NO_SUCH_KEY is not in fp_platform/handles/base.yaml"):
        handles("local").get("NO_SUCH_KEY")
    null_key = next(k for k, v in handles("local").values.items() if v is None)
    with pytest.raises(HandleError, match="has no value in profile local"):
        handles("local").get(null_key)


@pytest.fixture
def account(monkeypatch):
    """FP_AWS_ACCOUNT_ID set, as in the cloud tasks and pods (the registry is re-read under it)."""
    monkeypatch.setenv(AWS_ACCOUNT_ENV_VAR, "123456789012")
    load.cache_clear()
    yield "123456789012"
    load.cache_clear()


def _s3_uris(h) -> dict[str, str]:
    return {k: v for k, v in h.values.items() if isinstance(v, str) and v.startswith("s3://")}


@pytest.mark.parametrize("profile", ["dev_min", "dev_full"])
def test_every_s3_uri_handle_names_a_bucket_by_its_rendered_name(profile, account):
    """Spec DA §8.3 / decisions.md D10: a URI into a bucket (MLflow's artifact root, the Iceberg warehouse) carries
    the same -<account>-<region> suffix as the bucket, because it is rendered from the bucket's handle."""
    h = load(profile)
    suffix = f"-{account}-{h.get('AWS_REGION')}"
    buckets = set(h.buckets().values())
    assert len(buckets) == 5 and all(b.endswith(suffix) for b in buckets), buckets
    uris = _s3_uris(h)
    assert {"MLFLOW_ARTIFACT_ROOT", "ICEBERG_WAREHOUSE_URI"} <= set(uris), uris
    for key, uri in uris.items():
        assert uri.removeprefix("s3://").split("/", 1)[0] in buckets, f"{key}={uri} names no rendered bucket"
    assert h.get("MLFLOW_ARTIFACT_ROOT") == f"s3://{h.get('S3_ARTIFACTS_BUCKET')}/mlflow/"


def test_unrendered_handles_name_the_stems_everywhere(account):
    """What Terraform's tfvars are rendered from (Terraform adds the suffix): stems in names and URIs alike."""
    stems = load("dev_min", rendered=False)
    assert not any(b.endswith(account + "-eu-west-2") for b in stems.buckets().values())
    assert stems.get("ICEBERG_WAREHOUSE_URI") == f"s3://{stems.get('S3_ARTIFACTS_BUCKET')}/iceberg/"


def test_a_reference_to_an_unknown_bucket_fails_at_load(tmp_path, monkeypatch):
    import fp_platform.handles as registry

    (tmp_path / "base.yaml").write_text("env: base\nhandles:\n  S3_A_BUCKET: a\n  X_URI: 's3://{S3_B_BUCKET}/x/'\n")
    (tmp_path / "local.yaml").write_text("env: local\nhandles: {}\n")
    monkeypatch.setattr(registry, "_DIR", tmp_path)
    registry.load.cache_clear()
    try:
        with pytest.raises(HandleError, match="refers to S3_B_BUCKET, which names no bucket"):
            registry.load("local")
    finally:
        registry.load.cache_clear()

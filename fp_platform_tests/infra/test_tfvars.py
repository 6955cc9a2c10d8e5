"""tfvars are rendered from the handles registry: the committed files equal the rendering, and the
rendering says what the handles say."""

from __future__ import annotations

import importlib.util
import json

import pytest

from fp_platform.handles import handles
from fp_platform.operate.packs import SPINE_PACKS
from fp_platform_tests.infra.terraform import TERRAFORM_DIR

pytestmark = pytest.mark.infra


def _generator():
    spec = importlib.util.spec_from_file_location("fp_tfvars", TERRAFORM_DIR / "tfvars.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen():
    return _generator()


def test_committed_tfvars_equal_the_rendering(gen):
    rendered = gen.render()
    assert len(rendered) == 3
    for rel, text in rendered.items():
        committed = (TERRAFORM_DIR / rel).read_text()
        assert committed == text, f"{rel} is stale: run .venv/bin/python infra/terraform/tfvars.py"
    assert gen.main(["--check"]) == 0


def test_a_changed_handle_changes_the_rendering(gen):
    r = gen.registry()
    pins = dict(r.pins) | {"RETENTION_ARCHIVE_DAYS": 45}
    core = gen.core(gen.Registry(r.h, pins))
    assert core["bucket_lifecycle"]["archive"]["expiry_days"] == 45
    assert gen.core(r)["bucket_lifecycle"]["archive"]["expiry_days"] == 60


def test_buckets_topics_and_services_come_from_the_runtime_registry(gen):
    h = handles("dev_min")
    core = json.loads((TERRAFORM_DIR / "dev_min/core/handles.auto.tfvars.json").read_text())
    demo = json.loads((TERRAFORM_DIR / "dev_min/demo/handles.auto.tfvars.json").read_text())
    confluent = json.loads((TERRAFORM_DIR / "dev_min/demo/confluent.auto.tfvars.json").read_text())["confluent"]
    assert set(core["bucket_stems"].values()) == set(h.buckets().values())
    assert {t.name: t.partitions for t in h.topics()} == {n: t["partitions"] for n, t in confluent["topics"].items()}
    workers = [(w, h.get(w.component_key)) for p in SPINE_PACKS for w in p.workers]
    for w, component in workers:  # the local supervisor's command for the worker, by its component's service
        service = demo["services"][f"fraud-platform-dev-min-{component.replace('_', '-')}"]
        assert service["command"] == ["python", "-m", w.module, *(a.format(component=component) for a in w.args)]
    assert len(demo["services"]) == len(workers) + 2  # + the Dagster webserver and daemon
    assert demo["services"]["fraud-platform-dev-min-ingestion-gate"]["port"] == h.get("IG_PORT")


def test_every_task_runs_under_a_role_core_creates(gen):
    core = json.loads((TERRAFORM_DIR / "dev_min/core/handles.auto.tfvars.json").read_text())
    demo = json.loads((TERRAFORM_DIR / "dev_min/demo/handles.auto.tfvars.json").read_text())
    used = {s["role"] for s in demo["services"].values()} | {j["role"] for j in demo["jobs"].values()}
    assert used <= set(core["role_names"]), used - set(core["role_names"])
    assert demo["role_names"] == core["role_names"]
    # writer boundaries (run-process App. C.3): IG's role is not reused by workers, the reporter's by no service
    by_role = {}
    for name, s in demo["services"].items():
        by_role.setdefault(s["role"], []).append(name)
    assert by_role["ig_service"] == ["fraud-platform-dev-min-ingestion-gate"]
    assert "reporter_single_writer" not in by_role


def test_operator_values_are_never_rendered(gen):
    for text in gen.render().values():
        doc = json.loads(text)
        for key in (
            "aws_account_id",
            "expires_at",
            "image_digest",
            "db_password",
            "db_app_password",
            "ig_api_key",
            "platform_run_id",
        ):
            assert key not in doc

"""The Kubernetes supervisor, by rendering and against a fake AppsV1Api (no cluster here)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from fp_platform.handles import Handles, handles
from fp_platform.operate import k8s
from fp_platform.operate.packs import SPINE_PACKS, daemon_spec

pytestmark = pytest.mark.infra

RUN = "platform_20250101T000000Z"
IMAGE = "123456789012.dkr.ecr.eu-west-2.amazonaws.com/fraud-platform-dev-full-platform:git-abc1234"
INFRA_K8S = Path(__file__).resolve().parents[2] / "infra" / "k8s"


@pytest.fixture(scope="module")
def full() -> Handles:
    return handles("dev_full")


def _env(doc: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in doc["spec"]["template"]["spec"]["containers"][0]["env"]}


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return container


def test_every_spine_worker_renders_one_deployment(full):
    for p in SPINE_PACKS:
        docs = k8s.render_pack(full, p, RUN, IMAGE)
        assert len(docs) == len(p.workers)
        for w, doc in zip(p.workers, docs, strict=True):
            spec = daemon_spec(full, p, w)  # what the local supervisor runs
            assert doc["kind"] == "Deployment" and doc["apiVersion"] == "apps/v1"
            assert doc["metadata"]["name"] == spec.component.replace("_", "-")
            assert doc["metadata"]["namespace"] == full.get("EKS_NAMESPACE_" + p.pack_key.removeprefix("PACK_ID_"))
            assert doc["spec"]["replicas"] == 1
            assert doc["spec"]["strategy"] == {"type": "Recreate"}
            assert _env(doc)["FP_PROFILE"] == "dev_full"
            assert _env(doc)[full.get("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")] == RUN
            assert _container(doc)["command"] == ["python", "-m", spec.module, *spec.args]
            assert _container(doc)["image"] == IMAGE
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert labels[k8s.LABEL_RUN] == RUN and labels[k8s.LABEL_PACK] == spec.pack_id
            assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()
            assert k8s.LABEL_RUN not in doc["spec"]["selector"]["matchLabels"]  # selector is immutable


def test_render_all_covers_every_spine_worker(full):
    rendered = k8s.render_all(full, RUN, IMAGE)
    expected = {f"{full.get(p.pack_key)}/{full.get(w.component_key)}.yaml" for p in SPINE_PACKS for w in p.workers}
    assert set(rendered) == expected
    assert "control_ingress/ingestion_gate.yaml" in rendered and "rtdl_core/archive_writer.yaml" in rendered
    assert "rtdl_core/decision_processor.yaml" in rendered and "case_labels/label_store.yaml" in rendered
    assert "obs_gov/environment_conformance.yaml" in rendered
    assert rendered == k8s.render_all(full, RUN, IMAGE)  # stable


def test_ig_gets_a_readiness_probe_and_rtdl_workers_do_not(full):
    rendered = {path: yaml.safe_load(text) for path, text in k8s.render_all(full, RUN, IMAGE).items()}
    ig = _container(rendered["control_ingress/ingestion_gate.yaml"])
    assert ig["readinessProbe"]["httpGet"] == {"path": full.get("IG_READY_PATH"), "port": full.get("IG_PORT")}
    assert ig["ports"] == [{"name": "http", "containerPort": full.get("IG_PORT")}]
    rtdl = [doc for path, doc in rendered.items() if path.startswith("rtdl_core/")]
    assert len(rtdl) == 3
    assert all("readinessProbe" not in _container(doc) for doc in rtdl)
    assert [_container(doc)["command"][-1] for doc in rtdl] == [
        "archive_writer",
        "identity_entity_graph",
        "decision_processor",
    ]


def test_committed_manifests_equal_the_rendering(full):
    expected = k8s.render_all(full, k8s.RUN_ID_PLACEHOLDER, k8s.IMAGE_PLACEHOLDER)
    committed = {p.relative_to(INFRA_K8S).as_posix(): p.read_text() for p in sorted(INFRA_K8S.rglob("*.yaml"))}
    assert committed == expected, "regenerate: .venv/bin/python -m fp_platform.operate.k8s infra/k8s"


def test_substituting_the_placeholders_gives_the_real_rendering(full):
    templates = k8s.render_all(full, k8s.RUN_ID_PLACEHOLDER, k8s.IMAGE_PLACEHOLDER)
    real = k8s.render_all(full, RUN, IMAGE)
    for path, text in templates.items():
        filled = text.replace(k8s.RUN_ID_PLACEHOLDER, RUN).replace(k8s.IMAGE_PLACEHOLDER, IMAGE)
        assert yaml.safe_load(filled) == yaml.safe_load(real[path])


def test_write_manifests_replaces_stale_files_it_owns(full, tmp_path):
    (tmp_path / "rtdl_core").mkdir()
    (tmp_path / "rtdl_core" / "retired_worker.yaml").write_text("stale\n")
    (tmp_path / "obs_gov").mkdir()
    (tmp_path / "obs_gov" / "platform_run_reporter.yaml").write_text("stale\n")
    (tmp_path / "README.md").write_text("keep\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.yaml").write_text("keep\n")
    written = k8s.write_manifests(tmp_path, full, RUN, IMAGE)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == sorted(k8s.render_all(full, RUN, IMAGE))
    assert not (tmp_path / "rtdl_core" / "retired_worker.yaml").exists()
    assert not (tmp_path / "obs_gov" / "platform_run_reporter.yaml").exists()
    assert (tmp_path / "README.md").exists() and (tmp_path / "other" / "keep.yaml").exists()


def test_image_ref_pins_the_git_sha(full):
    assert k8s.image_ref(full, "123456789012", "abc1234") == IMAGE


def test_bad_pins_are_refused(full):
    p = SPINE_PACKS[1]
    with pytest.raises(k8s.K8sError, match="not a platform_run_id"):
        k8s.deployment(full, p, p.workers[0], "yesterday", IMAGE)
    with pytest.raises(k8s.K8sError, match="no tag or digest"):
        k8s.deployment(full, p, p.workers[0], RUN, "registry.example:5000/platform")
    with pytest.raises(k8s.K8sError, match="placeholders"):
        k8s.apply(full, k8s.RUN_ID_PLACEHOLDER, IMAGE, api=FakeApps())


def test_local_profile_has_no_eks_and_says_so():
    local = handles("local")
    with pytest.raises(k8s.K8sError, match="EKS_NAMESPACE_CONTROL_INGRESS.*profile local"):
        k8s.render_all(local, RUN, IMAGE)
    with pytest.raises(k8s.K8sError, match="EKS"):
        k8s.apply(local, RUN, IMAGE, api=FakeApps())


class FakeApps:
    """Records AppsV1Api calls; holds live Deployments as dicts keyed by (namespace, name)."""

    def __init__(self, live: dict[tuple[str, str], dict[str, Any]] | None = None, error: int = 404) -> None:
        self.live = dict(live or {})
        self.error = error
        self.calls: list[tuple[Any, ...]] = []

    def _get(self, name: str, namespace: str) -> dict[str, Any]:
        if (namespace, name) not in self.live:
            raise ApiException(status=self.error, reason="Not Found" if self.error == 404 else "Forbidden")
        return self.live[(namespace, name)]

    def read_namespaced_deployment(self, name: str, namespace: str) -> SimpleNamespace:
        self.calls.append(("read", namespace, name))
        body = self._get(name, namespace)
        return SimpleNamespace(
            spec=SimpleNamespace(replicas=body["spec"]["replicas"]),
            status=SimpleNamespace(ready_replicas=body.get("ready")),
            metadata=SimpleNamespace(labels=body["metadata"]["labels"]),
        )

    def create_namespaced_deployment(self, namespace: str, body: dict[str, Any]) -> None:
        self.calls.append(("create", namespace, body["metadata"]["name"]))
        self.live[(namespace, body["metadata"]["name"])] = body

    def patch_namespaced_deployment(
        self, name: str, namespace: str, body: dict[str, Any], _content_type: str | None = None
    ) -> None:
        self.calls.append(("patch", namespace, name, _content_type))
        current = self._get(name, namespace)
        self.live[(namespace, name)] = {**current, **body, "spec": {**current["spec"], **body["spec"]}}

    def delete_namespaced_deployment(self, name: str, namespace: str) -> None:
        self.calls.append(("delete", namespace, name))
        self._get(name, namespace)
        del self.live[(namespace, name)]


def test_apply_creates_when_absent_and_patches_when_present(full):
    api = FakeApps()
    assert k8s.apply(full, RUN, IMAGE, pack_ids=["rtdl_core"], api=api) == {
        "fp-rtdl-core/archive-writer": "created",
        "fp-rtdl-core/identity-entity-graph": "created",
        "fp-rtdl-core/decision-processor": "created",
    }
    assert [c[0] for c in api.calls] == ["read", "create"] * 3
    assert api.live[("fp-rtdl-core", "archive-writer")] == k8s.deployment(
        full, SPINE_PACKS[1], SPINE_PACKS[1].workers[0], RUN, IMAGE
    )
    api.calls.clear()
    next_run = "platform_20250102T000000Z"
    result = k8s.apply(full, next_run, IMAGE, api=api)
    assert result["fp-control-ingress/ingestion-gate"] == "created"
    assert [v for k, v in result.items() if k.startswith("fp-rtdl-core/")] == ["patched"] * 3
    assert ("patch", "fp-rtdl-core", "archive-writer", k8s.MERGE_PATCH) in api.calls
    assert _env(api.live[("fp-rtdl-core", "archive-writer")])["REQUIRED_PLATFORM_RUN_ID"] == next_run


def test_apply_surfaces_errors_other_than_404(full):
    with pytest.raises(ApiException) as e:
        k8s.apply(full, RUN, IMAGE, pack_ids=["control_ingress"], api=FakeApps(error=403))
    assert e.value.status == 403


def test_apply_rejects_unknown_pack(full):
    with pytest.raises(KeyError, match="unknown pack"):
        k8s.apply(full, RUN, IMAGE, pack_ids=["no_such_pack"], api=FakeApps())


def test_status_and_delete(full):
    api = FakeApps()
    k8s.apply(full, RUN, IMAGE, pack_ids=["control_ingress"], api=api)
    api.live[("fp-control-ingress", "ingestion-gate")]["ready"] = 1
    st = k8s.status(full, api=api)
    assert st["fp-control-ingress/ingestion-gate"] == {"present": True, "desired": 1, "ready": 1, "run": RUN}
    assert st["fp-rtdl-core/archive-writer"] == {"present": False, "desired": 0, "ready": 0, "run": None}
    assert k8s.delete(full, ["control_ingress"], api=api, scale_to_zero=True) == {
        "fp-control-ingress/ingestion-gate": "scaled_to_zero"
    }
    assert k8s.status(full, ["control_ingress"], api=api)["fp-control-ingress/ingestion-gate"]["desired"] == 0
    assert k8s.delete(full, ["control_ingress", "rtdl_core"], api=api)["fp-control-ingress/ingestion-gate"] == "deleted"
    assert k8s.delete(full, ["control_ingress"], api=api) == {"fp-control-ingress/ingestion-gate": "absent"}
    assert api.live == {}

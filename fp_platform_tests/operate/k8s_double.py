"""An in-memory Kubernetes API for the supervisor's tests — NOT a real cluster (no scheduler, kubelet, image
pulls or admission; docs/operating.md says what stays unverified).

It is built from the official client itself so that a call the real client would refuse fails here too: only
methods `AppsV1Api`/`CoreV1Api`/`NetworkingV1Api` have, with arguments their signatures and documented keyword
parameters accept. Objects are stored as the JSON the API server would hold and returned as the client's
models (`V1Deployment`, `V1Pod`, ...), deserialised by the client's own `ApiClient`. Merge patches follow RFC
7386. A minimal Deployment controller keeps each Deployment's pods: one Pending pod per replica of the current
pod template (a template change, e.g. a rollout restart's annotation, replaces them), none at zero replicas;
`ready`/`crash` play the kubelet's part.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from fp_platform.operate import k8s_supervisor

MODELS = {  # method suffix → the model the API returns
    "namespace": "V1Namespace",
    "namespaced_service_account": "V1ServiceAccount",
    "namespaced_network_policy": "V1NetworkPolicy",
    "namespaced_service": "V1Service",
    "namespaced_deployment": "V1Deployment",
    "namespaced_pod": "V1Pod",
}
NAME_LABEL = "app.kubernetes.io/name"
HASH_LABEL = "pod-template-hash"


class _Response:
    """What ApiClient.deserialize reads: the body as JSON text."""

    def __init__(self, body: Any) -> None:
        self.data = json.dumps(body)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _matches(labels: dict[str, str], selector: str | None) -> bool:
    """Equality-based label selectors (`a=b,c=d`), the only kind the supervisor uses."""
    if not selector:
        return True
    return all(labels.get(k) == v for k, _, v in (term.partition("=") for term in selector.split(",")))


@dataclass
class FakeCluster:
    """The API server's store, shared by the three API doubles: (suffix, namespace, name) → JSON."""

    objects: dict[tuple[str, str | None, str], dict[str, Any]] = field(default_factory=dict)
    writes: list[tuple[str, str, str | None, str]] = field(default_factory=list)
    calls: list[tuple[str, str, str | None]] = field(default_factory=list)  # every (verb, suffix, namespace)
    error: int | None = None  # answer every call with this status (403: the ServiceAccount lacks RBAC)
    _api_client: client.ApiClient = field(default_factory=client.ApiClient)

    def model(self, suffix: str, body: dict[str, Any]) -> Any:
        return self._api_client.deserialize(_Response(body), MODELS[suffix])

    def cluster(self) -> k8s_supervisor.Cluster:
        return k8s_supervisor.Cluster(
            _Api(self, client.AppsV1Api), _Api(self, client.CoreV1Api), _Api(self, client.NetworkingV1Api)
        )

    # --- what the tests read and do in the kubelet's place ---------------------------------------------------
    def deployment(self, ns: str, name: str) -> dict[str, Any]:
        return self.objects[("namespaced_deployment", ns, name)]

    def pods(self, ns: str, name: str) -> list[dict[str, Any]]:
        return [
            o
            for (suffix, pod_ns, _), o in sorted(self.objects.items())
            if suffix == "namespaced_pod" and pod_ns == ns and o["metadata"]["labels"].get(NAME_LABEL) == name
        ]

    def ready(self, ns: str, name: str) -> None:
        """Every pod of the Deployment runs and passes its readiness probe."""
        self._containers(ns, name, {"ready": True, "restartCount": 0, "state": {"running": {}}})

    def crash(self, ns: str, name: str, restarts: int = 4, reason: str = "CrashLoopBackOff") -> None:
        """Every pod's container exits and the kubelet backs off restarting it (or cannot start it: `reason`)."""
        waiting = {"waiting": {"reason": reason, "message": "back-off restarting failed container"}}
        self._containers(ns, name, {"ready": False, "restartCount": restarts, "state": waiting})

    def _containers(self, ns: str, name: str, status: dict[str, Any]) -> None:
        """The kubelet's report: every pod of the Deployment Running with this container status."""
        for pod in self.pods(ns, name):
            (container,) = pod["spec"]["containers"]
            ident = {"name": container["name"], "image": container["image"], "imageID": ""}
            pod["status"] = {"phase": "Running", "containerStatuses": [{**ident, **status}]}
        self._status(ns, name)

    def seed(self, suffix: str, ns: str | None, body: dict[str, Any]) -> None:
        """An object someone else created (an operator's `kubectl apply`): stored as the server would, unrecorded."""
        obj = copy.deepcopy(body)
        obj["metadata"].update(
            {"generation": 1, "uid": f"seed-{len(self.objects)}", **({"namespace": ns} if ns else {})}
        )
        self.objects[(suffix, ns, obj["metadata"]["name"])] = obj
        self._controller(suffix, ns, obj["metadata"]["name"])

    # --- the API server --------------------------------------------------------------------------------------
    def call(self, verb: str, suffix: str, ns: str | None, name: str | None, body: Any, selector: str | None) -> Any:
        self.calls.append((verb, suffix, ns))
        if self.error is not None:
            raise ApiException(status=self.error, reason="Forbidden")
        if verb == "list":
            items = [
                o
                for (s, o_ns, _), o in sorted(self.objects.items())
                if s == suffix and o_ns == ns and _matches(o["metadata"].get("labels") or {}, selector)
            ]
            return self._api_client.deserialize(_Response({"items": items, "metadata": {}}), "V1PodList")
        if verb == "create":
            name = body["metadata"]["name"]
        key = (suffix, ns, name)
        if verb == "create":
            if key in self.objects:
                raise ApiException(status=409, reason="AlreadyExists")
            self.writes.append((verb, suffix, ns, name))
            obj = copy.deepcopy(body)
            obj["metadata"].update({"generation": 1, "uid": f"uid-{len(self.writes)}"})
            if ns is not None:  # the server sets the namespace of the URL on the object
                obj["metadata"]["namespace"] = ns
            self.objects[key] = obj
            self._controller(suffix, ns, name)
            return self.model(suffix, self.objects[key])
        if key not in self.objects:
            raise ApiException(status=404, reason="NotFound")
        if verb == "read":
            return self.model(suffix, self.objects[key])
        self.writes.append((verb, suffix, ns, name))
        if verb == "delete":
            del self.objects[key]
            return None
        assert verb == "patch", verb
        before = self.objects[key]
        after = merge_patch(before, body)
        if after.get("spec") != before.get("spec"):
            after["metadata"]["generation"] = before["metadata"].get("generation", 1) + 1
        self.objects[key] = after
        self._controller(suffix, ns, name)
        return self.model(suffix, after)

    def _controller(self, suffix: str, ns: str | None, name: str) -> None:
        """The Deployment controller: pods of the current template, one per replica; then the status."""
        if suffix != "namespaced_deployment" or ns is None:
            return
        spec = self.objects[(suffix, ns, name)]["spec"]
        template_hash = hashlib.sha256(json.dumps(spec["template"], sort_keys=True).encode()).hexdigest()[:10]
        pods = self.pods(ns, name)
        keep = [p for p in pods if p["metadata"]["labels"].get(HASH_LABEL) == template_hash][: spec["replicas"]]
        for pod in pods:
            if pod not in keep:
                del self.objects[("namespaced_pod", ns, pod["metadata"]["name"])]
        for i in range(len(keep), spec["replicas"]):
            pod_name = f"{name}-{template_hash}-{i}"
            labels = {**spec["template"]["metadata"]["labels"], HASH_LABEL: template_hash}
            meta = {"name": pod_name, "namespace": ns, "labels": labels}
            pod = {"metadata": meta, "spec": copy.deepcopy(spec["template"]["spec"]), "status": {"phase": "Pending"}}
            self.objects[("namespaced_pod", ns, pod_name)] = pod
        self._status(ns, name)

    def _status(self, ns: str, name: str) -> None:
        d = self.deployment(ns, name)
        pods = self.pods(ns, name)
        ready = sum(all(c["ready"] for c in p["status"].get("containerStatuses") or [{"ready": False}]) for p in pods)
        d["status"] = {
            "observedGeneration": d["metadata"]["generation"],
            "replicas": len(pods),
            "updatedReplicas": len(pods),  # the controller above keeps only pods of the current template
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": len(pods) - ready,
        }


@cache
def _documented_kwargs(api_class: type, attr: str) -> frozenset[str]:
    """The keyword parameters the generated client's `<attr>_with_http_info` accepts (read from its source once
    per method: tokenizing it on every call cost seconds per test)."""
    return frozenset(re.findall(r"'(\w+)'", inspect.getsource(getattr(api_class, f"{attr}_with_http_info"))))


class _Api:
    """One API group's double: a method exists only if the real class has it, and its arguments must bind to
    the real signature and name documented keyword parameters."""

    def __init__(self, store: FakeCluster, api_class: type) -> None:
        self.store, self.api_class = store, api_class

    def __getattr__(self, attr: str) -> Any:
        real = getattr(self.api_class, attr)  # AttributeError for a method this API group does not have
        accepted = _documented_kwargs(self.api_class, attr)
        verb, _, suffix = attr.partition("_")

        def call(*args: Any, **kwargs: Any) -> Any:
            bound = inspect.signature(real).bind(None, *args, **kwargs).arguments  # TypeError as the client would
            unknown = set(kwargs) - accepted
            if unknown:
                raise TypeError(f"{attr} got unexpected keyword arguments {sorted(unknown)}")
            return self.store.call(
                verb,
                suffix,
                bound.get("namespace"),
                bound.get("name"),
                bound.get("body"),
                kwargs.get("label_selector"),
            )

        return call

"""The five Spine Green packs and their workers, as data (spec P2.1; local parity §3).

Local, the supervisor runs each worker as a subprocess; on EKS the same entries render Deployments
(`operate/k8s.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from fp_platform.contracts import components
from fp_platform.contracts.components import Component
from fp_platform.handles import Handles
from fp_platform.operate.daemons import DaemonSpec

RTDL_WORKER_MODULE = "fp_platform.rtdl"
CASE_LABELS_WORKER_MODULE = "fp_platform.case_labels"
OBS_GOV_WORKER_MODULE = "fp_platform.obs_gov"


@dataclass(frozen=True)
class WorkerEntry:
    """A component with a process of its own, and how to start it."""

    component: Component
    module: str  # `python -m <module> [args]`
    args: tuple[str, ...] = ()
    ready_path_key: str | None = None  # HTTP readiness path (services), else heartbeats tell

    @property
    def component_key(self) -> str:
        return self.component.component_key

    @property
    def consumer_group_key(self) -> str | None:
        return self.component.group_key


@dataclass(frozen=True)
class Hosted:
    """A component of the pack that runs chained inside another worker's process (the decision processor
    hosts CSFB, OFP, DL and DF): it has no process of its own, but its own heartbeat, health and gates."""

    component: Component

    @property
    def component_key(self) -> str:
        return self.component.component_key

    @property
    def host_key(self) -> str:  # component key of the worker whose process runs it
        assert self.component.host is not None, f"{self.component.component_key} has no host"
        return self.component.host.component_key


@dataclass(frozen=True)
class Pack:
    pack_key: str
    workers: tuple[WorkerEntry, ...]
    hosted: tuple[Hosted, ...] = ()

    def __post_init__(self) -> None:
        strays = [x.component_key for x in (*self.workers, *self.hosted) if x.component.pack_key != self.pack_key]
        if strays:
            raise ValueError(f"{self.pack_key} lists components of another pack: {', '.join(strays)}")


def _bus_worker(module: str, component: Component) -> WorkerEntry:
    """A bus worker run as `python -m <module> <component>`."""
    return WorkerEntry(component, module, ("{component}",))


def _rtdl(component: Component) -> WorkerEntry:
    return _bus_worker(RTDL_WORKER_MODULE, component)


def _case_labels(component: Component) -> WorkerEntry:
    return _bus_worker(CASE_LABELS_WORKER_MODULE, component)


SPINE_PACKS: tuple[Pack, ...] = (
    Pack(
        "PACK_ID_CONTROL_INGRESS",
        (WorkerEntry(components.INGESTION_GATE, "fp_platform.control.ig", ready_path_key="IG_READY_PATH"),),
    ),
    Pack(
        "PACK_ID_RTDL_CORE",
        (
            _rtdl(components.ARCHIVE_WRITER),
            _rtdl(components.ENTITY_GRAPH),
            _rtdl(components.DECISION_PROCESSOR),
        ),
        hosted=(Hosted(components.CONTEXT_BINDING), Hosted(components.ONLINE_FEATURES)),
    ),
    Pack(
        "PACK_ID_RTDL_DECISION_LANE",
        (_rtdl(components.ACTION_LAYER), _rtdl(components.DECISION_LOG_AUDIT)),
        hosted=(Hosted(components.DEGRADE_LADDER), Hosted(components.DECISION_FABRIC)),
    ),
    Pack(
        "PACK_ID_CASE_LABELS",
        (
            _case_labels(components.CASE_TRIGGER),
            _case_labels(components.CASE_MANAGEMENT),
            _case_labels(components.LABEL_STORE),
            _case_labels(components.LABEL_SIMULATION),
        ),
    ),
    # The reporter is P11's one-shot job (single writer), not a daemon.
    Pack("PACK_ID_OBS_GOV", (_bus_worker(OBS_GOV_WORKER_MODULE, components.ENV_CONFORMANCE),)),
)


def pack(h: Handles, pack_id: str) -> Pack:
    """The pack whose id (handle value, e.g. `rtdl_core`) is `pack_id`."""
    for p in SPINE_PACKS:
        if h.get(p.pack_key) == pack_id:
            return p
    raise KeyError(f"unknown pack {pack_id!r}; packs are {', '.join(h.get(p.pack_key) for p in SPINE_PACKS)}")


def daemon_spec(h: Handles, p: Pack, w: WorkerEntry) -> DaemonSpec:
    component = h.get(w.component_key)
    ready = h.get("IG_BASE_URL") + h.get(w.ready_path_key) if w.ready_path_key else None
    return DaemonSpec(
        component, h.get(p.pack_key), w.module, ready, tuple(a.format(component=component) for a in w.args)
    )


def daemon_specs(h: Handles, packs: tuple[Pack, ...] = SPINE_PACKS) -> list[DaemonSpec]:
    return [daemon_spec(h, p, w) for p in packs for w in p.workers]


def specs_by_component(h: Handles) -> dict[str, DaemonSpec]:
    """Every built worker's daemon spec, by component id (what statuses and heartbeats name); a hosted
    component maps to its host's."""
    out = {s.component: s for s in daemon_specs(h)}
    for p in SPINE_PACKS:
        for x in p.hosted:
            out[h.get(x.component_key)] = spec_for(h, x.host_key)
    return out


def spec_for(h: Handles, component_key: str) -> DaemonSpec:
    for p in SPINE_PACKS:
        for w in p.workers:
            if w.component_key == component_key:
                return daemon_spec(h, p, w)
    raise KeyError(f"no worker {component_key} in the spine packs")

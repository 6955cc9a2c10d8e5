"""The five Spine Green packs and their workers, as data (spec P2.1; local parity §3).

Local, the supervisor runs each worker as a subprocess; on EKS the same entries render Deployments
(`operate/k8s.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from fp_platform.handles import Handles
from fp_platform.operate.daemons import DaemonSpec

RTDL_WORKER_MODULE = "fp_platform.rtdl"
DECISION_PROCESSOR = "COMPONENT_ID_DECISION_PROCESSOR"
CASE_LABELS_WORKER_MODULE = "fp_platform.case_labels"
OBS_GOV_WORKER_MODULE = "fp_platform.obs_gov"


@dataclass(frozen=True)
class WorkerEntry:
    component_key: str
    module: str  # `python -m <module> [args]`
    args: tuple[str, ...] = ()
    ready_path_key: str | None = None  # HTTP readiness path (services), else heartbeats tell
    consumer_group_key: str | None = None


@dataclass(frozen=True)
class Hosted:
    """A component of the pack that runs chained inside another worker's process (the decision processor
    hosts CSFB, OFP, DL and DF): it has no process of its own, but its own heartbeat, health and gates."""

    component_key: str
    host_key: str  # component key of the worker whose process runs it


@dataclass(frozen=True)
class Pack:
    pack_key: str
    workers: tuple[WorkerEntry, ...]
    hosted: tuple[Hosted, ...] = ()


def _bus_worker(module: str, component_key: str, group_key: str) -> WorkerEntry:
    """A bus worker run as `python -m <module> <component>`."""
    return WorkerEntry(component_key, module, ("{component}",), consumer_group_key=group_key)


def _rtdl(component_key: str, group_key: str) -> WorkerEntry:
    return _bus_worker(RTDL_WORKER_MODULE, component_key, group_key)


def _case_labels(component_key: str, group_key: str) -> WorkerEntry:
    return _bus_worker(CASE_LABELS_WORKER_MODULE, component_key, group_key)


SPINE_PACKS: tuple[Pack, ...] = (
    Pack(
        "PACK_ID_CONTROL_INGRESS",
        (WorkerEntry("COMPONENT_ID_IG", "fp_platform.control.ig", ready_path_key="IG_READY_PATH"),),
    ),
    Pack(
        "PACK_ID_RTDL_CORE",
        (
            _rtdl("COMPONENT_ID_ARCHIVE_WRITER", "CONSUMER_GROUP_ID_ARCHIVE_WRITER"),
            _rtdl("COMPONENT_ID_IEG", "CONSUMER_GROUP_ID_IEG"),
            _rtdl(DECISION_PROCESSOR, "CONSUMER_GROUP_ID_DECISION_PROCESSOR"),
        ),
        hosted=(Hosted("COMPONENT_ID_CSFB", DECISION_PROCESSOR), Hosted("COMPONENT_ID_OFP", DECISION_PROCESSOR)),
    ),
    Pack(
        "PACK_ID_RTDL_DECISION_LANE",
        (_rtdl("COMPONENT_ID_AL", "CONSUMER_GROUP_ID_AL"), _rtdl("COMPONENT_ID_DLA", "CONSUMER_GROUP_ID_DLA")),
        hosted=(Hosted("COMPONENT_ID_DL", DECISION_PROCESSOR), Hosted("COMPONENT_ID_DF", DECISION_PROCESSOR)),
    ),
    Pack(
        "PACK_ID_CASE_LABELS",
        (
            _case_labels("COMPONENT_ID_CASE_TRIGGER", "CONSUMER_GROUP_ID_CASE_TRIGGER"),
            _case_labels("COMPONENT_ID_CM", "CONSUMER_GROUP_ID_CM"),
            _case_labels("COMPONENT_ID_LS", "CONSUMER_GROUP_ID_LS"),
            _case_labels("COMPONENT_ID_LABEL_SIMULATION", "CONSUMER_GROUP_ID_LABEL_SIMULATION"),
        ),
    ),
    # The reporter is P11's one-shot job (single writer), not a daemon.
    Pack(
        "PACK_ID_OBS_GOV",
        (_bus_worker(OBS_GOV_WORKER_MODULE, "COMPONENT_ID_ENV_CONFORMANCE", "CONSUMER_GROUP_ID_ENV_CONFORMANCE"),),
    ),
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

"""Every long-running component of the spine, declared once (spec P2.1: packs and their workers).

A component's identity is what its heartbeats, consumer offsets, gates and deployments are keyed by: its
id, its pack, its consumer group, the topics it reads, the phase whose gates judge it, and whether a
decision waits on it. The worker classes take it from here (`Worker.identity`), the supervisor's packs
(`operate/packs.py`) and the Kubernetes manifests too, so the three can never name a worker differently.
Values are handle keys; a profile's handles give the names.
"""

from __future__ import annotations

from dataclasses import dataclass

from fp_platform.contracts.phases import P8, P9, P10, P11


@dataclass(frozen=True)
class Component:
    component_key: str  # handle of its id (COMPONENT_ID_…)
    pack_key: str  # handle of its pack's id (PACK_ID_…)
    group_key: str | None = None  # handle of its consumer group; a hosted operator's is its host's
    topic_keys: tuple[str, ...] = ()  # the topics it reads
    phase_id: str = P8  # the phase whose gates judge it
    off_path: bool = False  # no decision waits on it: fuller, slower batches (WORKER_OFFPATH_BATCH_*)
    host: Component | None = None  # runs chained inside this component's process (no process of its own)


_TRAFFIC, _ARRIVAL_EVENTS, _ARRIVAL_ENTITIES = (
    "FP_BUS_TRAFFIC_FRAUD_V1",
    "FP_BUS_CONTEXT_ARRIVAL_EVENTS_V1",
    "FP_BUS_CONTEXT_ARRIVAL_ENTITIES_V1",
)
_FLOW_ANCHOR, _LABELS, _RTDL, _AUDIT = (
    "FP_BUS_CONTEXT_FLOW_ANCHOR_FRAUD_V1",
    "FP_BUS_LABELS_EVENTS_V1",
    "FP_BUS_RTDL_V1",
    "FP_BUS_AUDIT_V1",
)
_CORE, _LANE, _CASE_LABELS = "PACK_ID_RTDL_CORE", "PACK_ID_RTDL_DECISION_LANE", "PACK_ID_CASE_LABELS"
_PROCESSOR_GROUP = "CONSUMER_GROUP_ID_DECISION_PROCESSOR"

INGESTION_GATE = Component("COMPONENT_ID_IG", "PACK_ID_CONTROL_INGRESS")

ARCHIVE_WRITER = Component(
    "COMPONENT_ID_ARCHIVE_WRITER",
    _CORE,
    "CONSUMER_GROUP_ID_ARCHIVE_WRITER",
    (_TRAFFIC, _ARRIVAL_EVENTS, _ARRIVAL_ENTITIES, _FLOW_ANCHOR, "FP_BUS_CONTROL_V1", _LABELS),
    off_path=True,
)
ENTITY_GRAPH = Component(
    "COMPONENT_ID_IEG", _CORE, "CONSUMER_GROUP_ID_IEG", (_ARRIVAL_ENTITIES, _TRAFFIC), off_path=True
)
DECISION_PROCESSOR = Component(
    "COMPONENT_ID_DECISION_PROCESSOR",
    _CORE,
    _PROCESSOR_GROUP,
    (_TRAFFIC, _ARRIVAL_EVENTS, _ARRIVAL_ENTITIES, _FLOW_ANCHOR, _LABELS),
)
# The operators the decision processor chains (its consumer group: the offsets their state covers).
CONTEXT_BINDING = Component(
    "COMPONENT_ID_CSFB",
    _CORE,
    _PROCESSOR_GROUP,
    (_ARRIVAL_EVENTS, _ARRIVAL_ENTITIES, _FLOW_ANCHOR, _TRAFFIC),
    host=DECISION_PROCESSOR,
)
ONLINE_FEATURES = Component(
    "COMPONENT_ID_OFP", _CORE, _PROCESSOR_GROUP, (_TRAFFIC, _ARRIVAL_ENTITIES, _LABELS), host=DECISION_PROCESSOR
)
DEGRADE_LADDER = Component("COMPONENT_ID_DL", _LANE, phase_id=P9, host=DECISION_PROCESSOR)
DECISION_FABRIC = Component("COMPONENT_ID_DF", _LANE, phase_id=P9, host=DECISION_PROCESSOR)

ACTION_LAYER = Component("COMPONENT_ID_AL", _LANE, "CONSUMER_GROUP_ID_AL", (_RTDL,), P9, off_path=True)
DECISION_LOG_AUDIT = Component("COMPONENT_ID_DLA", _LANE, "CONSUMER_GROUP_ID_DLA", (_RTDL,), P9, off_path=True)

CASE_TRIGGER = Component(
    "COMPONENT_ID_CASE_TRIGGER", _CASE_LABELS, "CONSUMER_GROUP_ID_CASE_TRIGGER", (_AUDIT,), P10, off_path=True
)
CASE_MANAGEMENT = Component(
    "COMPONENT_ID_CM", _CASE_LABELS, "CONSUMER_GROUP_ID_CM", ("FP_BUS_CASE_TRIGGERS_V1",), P10, off_path=True
)
LABEL_STORE = Component("COMPONENT_ID_LS", _CASE_LABELS, "CONSUMER_GROUP_ID_LS", (), P10, off_path=True)
LABEL_SIMULATION = Component(
    "COMPONENT_ID_LABEL_SIMULATION", _CASE_LABELS, "CONSUMER_GROUP_ID_LABEL_SIMULATION", (_AUDIT,), P10, off_path=True
)

ENV_CONFORMANCE = Component(
    "COMPONENT_ID_ENV_CONFORMANCE", "PACK_ID_OBS_GOV", "CONSUMER_GROUP_ID_ENV_CONFORMANCE", (), P11
)

"""DF, the decision fabric: one decision per admitted traffic event.

DF runs last in the decision processor's chain (CSFB → OFP → DL → DF, `processor.py`). For each event:
the active bundle (MPR registry), the posture DL has just set, the CSFB binding and the OFP vector; rules
always, the bundle's model when the posture allows and the vector exists; the decision from the
bundle's thresholds. Missing context or features, an unloadable model or a posture below NORMAL are
recorded on the decision as degrade reasons. Emits `rtdl.decision_response` and `rtdl.action_intent`
keyed by the deterministic decision_id.

A decision is made once: a replayed event (a reset checkpoint, a redelivery) re-sends the decision
and intent stored with it, byte for byte, and AL/DLA see a duplicate, never a second action.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg

from fp_platform.contracts import bundle_registry, components, ids
from fp_platform.contracts import features as feature_contract
from fp_platform.contracts.envelope import Envelope
from fp_platform.contracts.features import FEATURE_NAMES, event_values
from fp_platform.handles import Handles
from fp_platform.rtdl.decision_context import EventContext
from fp_platform.rtdl.policy import Policy, at_least, decision_for
from fp_platform.substrate import bundle_models, db
from fp_platform.substrate.db import jsonb
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.substrate.worker import BusRecord

Emit = Callable[[Envelope, str], bytes]  # the worker's outbox: publish once the batch commits
REGISTRY_TTL_S = 1.0  # how stale DF's view of the active bundle may be (a promotion reaches DF within this)

MODEL_POSTURES = ("NORMAL", "DEGRADED_CONTEXT")  # postures in which DF may use the bundle's model
_COLUMNS = (
    "decision_id, platform_run_id, event_id, decision, reason_codes, score, score_source, bundle_id,"
    " bundle_version, policy_rev, posture, posture_seq, degrade_reasons, binding_status, feature_version,"
    " features, event_ts, origin_topic, origin_partition, origin_offset, decision_envelope, intent_envelope,"
    " feature_watermark, decided_at, bus_at, intake_at, parked_ms"
)
_TYPES = (
    "text",
    "text",
    "text",
    "text",
    "text[]",
    "float8",
    "text",
    "text",
    "text",
    "text",
    "text",
    "int8",
    "text[]",
    "text",
    "text",
    "jsonb",
    "timestamptz",
    "text",
    "int4",
    "int8",
    "bytea",
    "bytea",
    "jsonb",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "float8",
)


def model_values(event: dict[str, Any], ctx: EventContext) -> dict[str, Any]:
    """What a bundle's model (and the rules) score: the OFP vector, the event's own fields (`event`, from
    `contracts.features.event_values`) and the ratios the contract derives from both."""
    return feature_contract.model_values(ctx.features or {}, event)


def _model_unused(model_problem: str | None, posture: str, ctx: EventContext) -> str | None:
    """Why the bundle's model does not score this event (None: it does)."""
    if model_problem:
        return f"model: {model_problem}"
    if posture not in MODEL_POSTURES:
        return f"model: not used under posture {posture}"
    if ctx.features is None:
        return "model: not used without a feature vector"
    return None


@dataclass(frozen=True)
class Scored:
    """A model's score for one event, computed with its batch (one model call per batch, not per event)."""

    value: float

    def score(self, _values: dict[str, Any]) -> float:
        return self.value


def batch_scored(
    model: Any,
    bundle: bundle_registry.Bundle | None,
    model_problem: str | None,
    items: list[tuple[str, dict[str, Any], EventContext]],
) -> list[Any]:
    """Per (posture, event fields, context): what `decide` scores with — the events the model scores are scored
    in one call up front."""
    out = [model] * len(items)
    if model is None or bundle is None or not bundle.model_ref:
        return out
    used = [
        i
        for i, (posture, _, ctx) in enumerate(items)
        if posture != "FAIL_CLOSED" and _model_unused(model_problem, posture, ctx) is None
    ]
    if used:
        for i, value in zip(
            used, model.score_many([model_values(items[i][1], items[i][2]) for i in used]), strict=True
        ):
            out[i] = Scored(value)
    return out


def decide(
    policy: Policy,
    bundle: bundle_registry.Bundle | None,
    posture: str,
    model: Any,
    model_problem: str | None,
    event: dict[str, Any],
    ctx: EventContext,
) -> dict[str, Any]:
    """The decision for one event (pure) from its own fields and context: decision, reason codes, score, its
    source and degrade reasons."""
    missing = ctx.degrade_reasons()
    degrade = list(missing)
    if posture != "NORMAL":
        degrade.append(f"posture {posture}")
    if bundle is None or posture == "FAIL_CLOSED":
        why = "no active bundle" if bundle is None else "posture FAIL_CLOSED"
        return {
            "decision": policy.ladder["fail_closed_decision"],
            "reason_codes": ["FAIL_CLOSED"],
            "score": 1.0,
            "score_source": "fail_closed",
            "degrade_reasons": [*degrade, why],
        }
    values = model_values(event, ctx)
    score, codes = policy.rule_score(values)
    source = "rules"
    if bundle.model_ref:
        if unused := _model_unused(model_problem, posture, ctx):
            degrade.append(unused)
        else:
            model_score = model.score(values)
            source = "model+rules"
            if model_score >= score:
                score, codes = model_score, [*codes, "MODEL_SCORE"]
    decision = decision_for(score, bundle.thresholds)
    if missing:
        decision = at_least(decision, policy.ladder["degraded_min_decision"])
    return {
        "decision": decision,
        "reason_codes": codes or ["NO_RULE_FIRED"],
        "score": round(score, 6),
        "score_source": source,
        "degrade_reasons": degrade,
    }


class DecisionFabric:
    """The decision operator, last in the decision processor's chain: the active bundle (resolved at most
    every REGISTRY_TTL_S, its model loaded once per bundle), the posture DL just set, and each event's
    binding and vector as CSFB and OFP hold them."""

    identity = components.DECISION_FABRIC

    def __init__(self, h: Handles, run_id: str, policy: Policy, store: S3ObjectStore) -> None:
        self.h, self.run_id, self.policy, self.store = h, run_id, policy, store
        self.component = h.get(self.identity.component_key)
        self.counters: Counter = Counter()
        self.bundle: bundle_registry.Bundle | None = None
        self.model: Any = None
        self.model_problem: str | None = None
        self._resolved_at = -REGISTRY_TTL_S
        self._models: dict[str, Any] = {}
        self._rows: list[tuple] = []

    def resolve(self, conn: psycopg.Connection) -> bool:
        """Re-read the active bundle when the last look is older than REGISTRY_TTL_S; True when it changed."""
        if time.monotonic() - self._resolved_at < REGISTRY_TTL_S:
            return False
        self._resolved_at = time.monotonic()
        bundle = bundle_registry.active_bundle(conn)
        before = (self.bundle, self.model_problem)
        self.bundle = bundle
        self.model, self.model_problem = self._model(bundle)
        return (self.bundle, self.model_problem) != before

    def _model(self, bundle: bundle_registry.Bundle | None) -> tuple[Any, str | None]:
        if bundle is None or not bundle.model_ref:
            return None, None
        if bundle.model_ref not in self._models:
            try:
                self._models[bundle.model_ref] = bundle_models.load_model(self.store, bundle.model_ref)
            except bundle_models.ModelUnavailable as exc:
                return None, str(exc)  # not cached: the next resolution tries again
        return self._models[bundle.model_ref], None

    def resend(self, conn: psycopg.Connection, event_ids: list[str], emit: Emit) -> None:
        """Events decided before (a replay): send the stored decision and intent again, byte for byte."""
        by_decision = {ids.decision_id(self.run_id, e): e for e in event_ids}
        for decision_id, decision_env, intent_env in conn.execute(
            "SELECT decision_id, decision_envelope, intent_envelope FROM df_decisions WHERE decision_id = ANY(%s)",
            (list(by_decision),),
        ):
            for raw in (decision_env, intent_env):
                emit(Envelope.from_dict(orjson.loads(raw)), decision_id)
            self.counters["decisions_resent"] += 1

    def decide(
        self,
        records: list[tuple[BusRecord, EventContext]],
        posture: str | None,
        posture_seq: int | None,
        emit: Emit,
        decided_at: datetime,
        timing: dict[str, tuple[datetime | None, datetime, float]],
    ) -> None:
        """Decide each (record, context) under the posture (None: DL has published none for the run); `timing`:
        per event, when it went on the bus, when the processor took it in and how long it was parked."""
        level = posture or "FAIL_CLOSED"
        items = [(level, event_values(r.payload, r.ts), ctx) for r, ctx in records]
        scorers = batch_scored(self.model, self.bundle, self.model_problem, items)
        for (r, ctx), (_, event, _), scorer in zip(records, items, scorers, strict=True):
            out = decide(self.policy, self.bundle, level, scorer, self.model_problem, event, ctx)
            if posture is None:
                out["degrade_reasons"].append("posture: DL has published none for the run")
            decision_id = ids.decision_id(self.run_id, r.envelope["event_id"])
            self._rows.append(
                (
                    *self._record(decision_id, r, ctx, event, out, level, posture_seq, emit),
                    decided_at,
                    *timing[r.envelope["event_id"]],
                )
            )
            self.counters[f"decisions_{out['decision'].lower()}"] += 1
            self.counters["decisions_degraded"] += bool(out["degrade_reasons"])
        self.counters["decisions"] += len(records)

    def write(self, conn: psycopg.Connection) -> None:
        """The batch's decisions, in one binary COPY (the envelopes' bytes are copied, not hex-escaped)."""
        if self._rows:
            db.copy_rows(conn, "df_decisions", _COLUMNS, self._rows, _TYPES)
            self._rows.clear()

    def _record(
        self,
        decision_id: str,
        r: BusRecord,
        ctx: EventContext,
        event: dict[str, Any],
        out: dict[str, Any],
        posture: str,
        posture_seq: int | None,
        emit: Emit,
    ) -> tuple:
        """Build and emit the decision and its intent; the df_decisions row that keeps both. The decision logs
        what the model saw: the OFP vector and the event's own fields."""
        p = r.payload
        bundle = self.bundle
        bundle_ref = (
            bundle.ref()
            if bundle
            else {
                "bundle_id": "none",
                "bundle_version": "none",
                "policy_rev": self.policy.policy_rev,
                "model_ref": None,
                "registry_seq": None,
            }
        )
        features = {k: ctx.features[k] for k in FEATURE_NAMES} if ctx.features else None
        origin = {"topic": r.topic, "partition": r.partition, "offset": r.offset}
        subject = {
            "event_id": r.envelope["event_id"],
            "event_class": r.envelope["event_class"],
            "transaction_id": p["transaction_id"],
            "card_id": p["card_id"],
            "terminal_id": p["terminal_id"],
            "customer_id": p["customer_id"],
            "flow_id": p["flow_id"],
            "amount": p["amount"],
        }
        decision = r.derive(
            self.component,
            decision_id,
            "rtdl.decision_response",
            {
                "decision_id": decision_id,
                **subject,
                **out,
                "bundle": bundle_ref,
                "posture": {"level": posture, "seq": posture_seq},
                "binding": {"status": ctx.binding_status, "reasons": list(ctx.binding_reasons)},
                "features": {
                    "feature_version": ctx.feature_version,
                    "vector_ref": {"table": "ofp_features", "event_id": r.envelope["event_id"]},
                    "values": features,
                    "event_fields": event,
                    "as_of_offsets": ctx.feature_watermark if features else None,
                },
                "origin": origin,
            },
        )
        action = self.policy.action(out["decision"])
        action_id = ids.action_id(decision_id, action["kind"])
        intent = r.derive(
            self.component,
            action_id,
            "rtdl.action_intent",
            {
                "action_id": action_id,
                "decision_id": decision_id,
                "action_kind": action["kind"],
                "decision": out["decision"],
                "event_id": r.envelope["event_id"],
                "transaction_id": p["transaction_id"],
                "card_id": p["card_id"],
            },
        )
        decision_bytes, intent_bytes = emit(decision, decision_id), emit(intent, decision_id)
        return (
            decision_id,
            self.run_id,
            r.envelope["event_id"],
            out["decision"],
            out["reason_codes"],
            out["score"],
            out["score_source"],
            bundle_ref["bundle_id"],
            bundle_ref["bundle_version"],
            bundle_ref["policy_rev"],
            posture,
            posture_seq,
            out["degrade_reasons"],
            ctx.binding_status,
            ctx.feature_version,
            jsonb(features) if features else None,
            datetime.fromisoformat(r.ts),
            r.topic,
            r.partition,
            r.offset,
            decision_bytes,
            intent_bytes,
            jsonb(ctx.feature_watermark) if features and ctx.feature_watermark else None,
        )

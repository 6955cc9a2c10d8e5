"""The active decision bundle, resolved from the MPR registry (append-only Postgres tables), and the
models it names. Before any promotion the policy's rules-only bootstrap bundle is active.

A model is a JSON document on the object store (`s3://bucket/key`): a logistic model over named
features (`{"kind": "logistic", "features": [...], "coefficients": [...], "intercept": b}`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row

from fp_platform.contracts.features import FEATURE_NAMES, FEATURE_VERSION
from fp_platform.handles import Handles
from fp_platform.rtdl.policy import Policy
from fp_platform.substrate.object_store import S3ObjectStore


class ModelUnavailable(RuntimeError):
    """The bundle names a model that cannot be loaded; the message says why."""


@dataclass(frozen=True)
class Bundle:
    bundle_id: str
    bundle_version: str
    policy_rev: str
    model_ref: str | None
    feature_version: str
    feature_list: tuple[str, ...]
    thresholds: dict[str, float]
    registry_seq: int
    registry_event: str

    def ref(self) -> dict[str, Any]:
        return {"bundle_id": self.bundle_id, "bundle_version": self.bundle_version, "policy_rev": self.policy_rev,
                "model_ref": self.model_ref, "registry_seq": self.registry_seq}


def register(conn: psycopg.Connection, *, bundle_id: str, bundle_version: str, policy_rev: str,
             model_ref: str | None, feature_version: str, feature_list: list[str], thresholds: dict[str, float],
             provenance: dict[str, Any] | None = None) -> None:
    """Add a bundle to the registry (idempotent: the same id and version is the same bundle)."""
    conn.execute("INSERT INTO mpr_bundles (bundle_id, bundle_version, policy_rev, model_ref, feature_version,"
                 " feature_list, thresholds, provenance) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                 " ON CONFLICT DO NOTHING",
                 (bundle_id, bundle_version, policy_rev, model_ref, feature_version, list(feature_list),
                  orjson.dumps(thresholds).decode(), orjson.dumps(provenance or {}).decode()))


def activate(conn: psycopg.Connection, *, event_id: str, event_type: str, bundle_id: str, bundle_version: str,
             reason: str, actor: str) -> bool:
    """Append a registry event making the bundle active; False when `event_id` was appended before."""
    row = conn.execute("INSERT INTO mpr_registry_events (event_id, event_type, bundle_id, bundle_version, reason,"
                       " actor) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING seq",
                       (event_id, event_type, bundle_id, bundle_version, reason, actor)).fetchone()
    return row is not None


def ensure_bootstrap(conn: psycopg.Connection, h: Handles, policy: Policy) -> None:
    """Register and activate the rules-only bootstrap bundle once, ever (a no-op afterwards)."""
    bundle_id, version = h.get("MPR_BOOTSTRAP_BUNDLE_ID"), str(policy.bootstrap["bundle_version"])
    with conn.transaction():
        register(conn, bundle_id=bundle_id, bundle_version=version, policy_rev=policy.policy_rev, model_ref=None,
                 feature_version=FEATURE_VERSION, feature_list=list(FEATURE_NAMES),
                 thresholds=policy.bootstrap["thresholds"], provenance={"source": "decision policy bootstrap"})
        if conn.execute("SELECT 1 FROM mpr_registry_events LIMIT 1").fetchone() is None:
            activate(conn, event_id=f"bootstrap:{bundle_id}:{version}", event_type="BOOTSTRAP", bundle_id=bundle_id,
                     bundle_version=version, reason="no bundle promoted yet", actor="decision_fabric")


def active_bundle(conn: psycopg.Connection) -> Bundle | None:
    """The bundle of the latest registry event, or None when the registry has none."""
    row = conn.cursor(row_factory=dict_row).execute(
        "SELECT e.seq, e.event_type, b.* FROM mpr_registry_events e JOIN mpr_bundles b USING (bundle_id,"
        " bundle_version) ORDER BY e.seq DESC LIMIT 1").fetchone()
    if row is None:
        return None
    return Bundle(row["bundle_id"], row["bundle_version"], row["policy_rev"], row["model_ref"],
                  row["feature_version"], tuple(row["feature_list"]), dict(row["thresholds"]), row["seq"],
                  row["event_type"])


@dataclass(frozen=True)
class LogisticModel:
    features: tuple[str, ...]
    coefficients: tuple[float, ...]
    intercept: float

    def score(self, values: dict[str, Any]) -> float:
        z = self.intercept + sum(c * float(values[f]) for f, c in zip(self.features, self.coefficients, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def load_model(store: S3ObjectStore, model_ref: str) -> LogisticModel:
    if not model_ref.startswith("s3://"):
        raise ModelUnavailable(f"model_ref {model_ref!r} is not an s3:// URI")
    bucket, _, key = model_ref[5:].partition("/")
    try:
        doc = orjson.loads(store.get(bucket, key))
    except Exception as exc:  # missing object, bad JSON, store down: all mean no model
        raise ModelUnavailable(f"cannot load {model_ref}: {exc}") from None
    if doc.get("kind") != "logistic" or len(doc.get("features", ())) != len(doc.get("coefficients", ())):
        raise ModelUnavailable(f"{model_ref}: not a logistic model document")
    return LogisticModel(tuple(doc["features"]), tuple(float(c) for c in doc["coefficients"]),
                         float(doc.get("intercept", 0.0)))

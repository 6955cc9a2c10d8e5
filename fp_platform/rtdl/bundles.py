"""The models a decision bundle names, and the rules-only bootstrap bundle that is active before any
promotion (the registry itself is `substrate/mpr_registry.py`).

A model is a JSON document on the object store (`s3://bucket/key`) over named served fields: a logistic
model (`{"kind": "logistic", "features": [...], "coefficients": [...], "intercept": b}`) or a LightGBM
booster (`{"kind": "lightgbm", "features": [...], "model": "<booster text>"}`). A missing value scores
as 0 in a logistic model and as missing (NaN) in a booster, as each was trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import psycopg

from fp_platform.contracts.features import FEATURE_NAMES, FEATURE_VERSION
from fp_platform.handles import Handles
from fp_platform.rtdl.policy import Policy
from fp_platform.substrate import mpr_registry
from fp_platform.substrate.object_store import S3ObjectStore


class ModelUnavailable(RuntimeError):
    """The bundle names a model that cannot be loaded; the message says why."""


def ensure_bootstrap(conn: psycopg.Connection, h: Handles, policy: Policy) -> None:
    """Register and activate the rules-only bootstrap bundle once, ever (a no-op afterwards)."""
    bundle_id, version = h.get("MPR_BOOTSTRAP_BUNDLE_ID"), str(policy.bootstrap["bundle_version"])
    with conn.transaction():
        mpr_registry.register(conn, bundle_id=bundle_id, bundle_version=version, policy_rev=policy.policy_rev,
                              model_ref=None, feature_version=FEATURE_VERSION, feature_list=list(FEATURE_NAMES),
                              thresholds=policy.bootstrap["thresholds"],
                              provenance={"source": "decision policy bootstrap"})
        if conn.execute("SELECT 1 FROM mpr_registry_events LIMIT 1").fetchone() is None:
            mpr_registry.activate(conn, event_id=f"bootstrap:{bundle_id}:{version}", event_type="BOOTSTRAP",
                                  bundle_id=bundle_id, bundle_version=version, reason="no bundle promoted yet",
                                  actor="decision_fabric")


@dataclass(frozen=True)
class LogisticModel:
    features: tuple[str, ...]
    coefficients: tuple[float, ...]
    intercept: float

    def score(self, values: dict[str, Any]) -> float:
        z = self.intercept + sum(c * float(values.get(f) or 0.0)
                                 for f, c in zip(self.features, self.coefficients, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


@dataclass(frozen=True)
class BoosterModel:
    features: tuple[str, ...]
    booster: Any  # lightgbm.Booster

    def score(self, values: dict[str, Any]) -> float:
        row = np.array([[np.nan if values.get(f) is None else float(values[f]) for f in self.features]])
        return float(self.booster.predict(row)[0])


def load_model(store: S3ObjectStore, model_ref: str) -> LogisticModel | BoosterModel:
    if not model_ref.startswith("s3://"):
        raise ModelUnavailable(f"model_ref {model_ref!r} is not an s3:// URI")
    bucket, _, key = model_ref[5:].partition("/")
    try:
        doc = orjson.loads(store.get(bucket, key))
    except Exception as exc:  # missing object, bad JSON, store down: all mean no model
        raise ModelUnavailable(f"cannot load {model_ref}: {exc}") from None
    if doc.get("kind") == "lightgbm":
        import lightgbm

        try:
            return BoosterModel(tuple(doc["features"]), lightgbm.Booster(model_str=doc["model"]))
        except Exception as exc:  # a corrupt booster text is no model
            raise ModelUnavailable(f"{model_ref}: not a LightGBM model document ({exc})") from None
    if doc.get("kind") != "logistic" or len(doc.get("features", ())) != len(doc.get("coefficients", ())):
        raise ModelUnavailable(f"{model_ref}: not a logistic model document")
    return LogisticModel(tuple(doc["features"]), tuple(float(c) for c in doc["coefficients"]),
                         float(doc.get("intercept", 0.0)))

"""The model a decision bundle names: a JSON document on the object store (`s3://bucket/key`) over named
served fields — a logistic model (`{"kind": "logistic", "features": [...], "coefficients": [...],
"intercept": b}`), a LightGBM booster (`{"kind": "lightgbm", "features": [...], "model": "<booster
text>"}`) or a random forest (`{"kind": "random_forest", "features": [...], "trees": [{"left", "right",
"feature", "threshold", "p"}, ...]}`, node arrays of scikit-learn's trees). DF scores with it; MPR checks
a candidate loads before promoting it. A missing value scores as 0 in a logistic model and a forest and
as missing (NaN) in a booster, as each was trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from fp_platform.substrate.object_store import S3ObjectStore


class ModelUnavailable(RuntimeError):
    """The bundle names a model that cannot be loaded; the message says why."""


@dataclass(frozen=True)
class LogisticModel:
    features: tuple[str, ...]
    coefficients: tuple[float, ...]
    intercept: float

    def score(self, values: dict[str, Any]) -> float:
        z = self.intercept + sum(
            c * float(values.get(f) or 0.0) for f, c in zip(self.features, self.coefficients, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def score_many(self, rows: list[dict[str, Any]]) -> list[float]:
        return [self.score(values) for values in rows]


@dataclass(frozen=True)
class BoosterModel:
    features: tuple[str, ...]
    booster: Any  # lightgbm.Booster

    def score(self, values: dict[str, Any]) -> float:
        return self.score_many([values])[0]

    def score_many(self, rows: list[dict[str, Any]]) -> list[float]:
        """One booster call for the whole batch (a call per event costs more than the trees)."""
        matrix = np.array([[np.nan if v.get(f) is None else float(v[f]) for f in self.features] for v in rows])
        return [float(x) for x in self.booster.predict(matrix)]


def forest_scores(trees: list[dict[str, list]], x: np.ndarray) -> np.ndarray:
    """The forest's fraud probability per row: each tree walked for all rows at once, the leaves averaged.
    Rows are compared in float32, as scikit-learn's trees compare them (a missing value reads as 0)."""
    x32 = np.nan_to_num(x).astype(np.float32).astype(np.float64)
    total = np.zeros(len(x32))
    rows = np.arange(len(x32))
    for tree in trees:
        left, right = np.asarray(tree["left"]), np.asarray(tree["right"])
        feature, threshold = np.asarray(tree["feature"]), np.asarray(tree["threshold"])
        node = np.zeros(len(x32), dtype=np.int64)
        while True:
            inner = left[node] != -1
            if not inner.any():
                break
            n = node[inner]
            go_left = x32[rows[inner], feature[n]] <= threshold[n]
            node[inner] = np.where(go_left, left[n], right[n])
        total += np.asarray(tree["p"])[node]
    return total / len(trees)


def _tree_arrays(tree: dict[str, list]) -> dict[str, np.ndarray]:
    """A tree's node lists as arrays, once per load: converting them per scoring call costs more than the walk."""
    return {
        "left": np.asarray(tree["left"], dtype=np.int64),
        "right": np.asarray(tree["right"], dtype=np.int64),
        "feature": np.asarray(tree["feature"], dtype=np.int64),
        "threshold": np.asarray(tree["threshold"], dtype=np.float64),
        "p": np.asarray(tree["p"], dtype=np.float64),
    }


@dataclass(frozen=True)
class ForestModel:
    """A random forest's trees (MF's `random_forest` document), scored without scikit-learn."""

    features: tuple[str, ...]
    trees: list[dict[str, np.ndarray]]

    def score(self, values: dict[str, Any]) -> float:
        return self.score_many([values])[0]

    def score_many(self, rows: list[dict[str, Any]]) -> list[float]:
        matrix = np.array([[np.nan if v.get(f) is None else float(v[f]) for f in self.features] for v in rows])
        return [float(s) for s in forest_scores(self.trees, matrix)]


def read_document(store: S3ObjectStore, model_ref: str) -> bytes:
    """The model document's bytes (what a bundle's model sha256 is of)."""
    if not model_ref.startswith("s3://"):
        raise ModelUnavailable(f"model_ref {model_ref!r} is not an s3:// URI")
    bucket, _, key = model_ref[5:].partition("/")
    try:
        return store.get(bucket, key)
    except Exception as exc:  # missing object, store down: both mean no model
        raise ModelUnavailable(f"cannot load {model_ref}: {exc}") from None


def parse_model(model_ref: str, body: bytes) -> LogisticModel | BoosterModel | ForestModel:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ModelUnavailable(f"{model_ref}: not JSON ({exc})") from None
    if doc.get("kind") == "lightgbm":
        import lightgbm

        try:
            return BoosterModel(tuple(doc["features"]), lightgbm.Booster(model_str=doc["model"]))
        except Exception as exc:  # a corrupt booster text is no model
            raise ModelUnavailable(f"{model_ref}: not a LightGBM model document ({exc})") from None
    if doc.get("kind") == "random_forest":
        trees = doc.get("trees")
        keys = {"left", "right", "feature", "threshold", "p"}
        if not trees or not all(isinstance(t, dict) and keys <= set(t) for t in trees):
            raise ModelUnavailable(f"{model_ref}: not a random forest model document")
        return ForestModel(tuple(doc["features"]), [_tree_arrays(t) for t in trees])
    if doc.get("kind") != "logistic" or len(doc.get("features", ())) != len(doc.get("coefficients", ())):
        raise ModelUnavailable(f"{model_ref}: not a logistic model document")
    return LogisticModel(
        tuple(doc["features"]), tuple(float(c) for c in doc["coefficients"]), float(doc.get("intercept", 0.0))
    )


def load_model(store: S3ObjectStore, model_ref: str) -> LogisticModel | BoosterModel | ForestModel:
    return parse_model(model_ref, read_document(store, model_ref))

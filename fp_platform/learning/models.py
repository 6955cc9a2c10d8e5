"""The model kinds MF can train, each fitted on a feature matrix and written as the JSON document DF serves
(`substrate/bundle_models.py` reads the same documents): LightGBM boosting, a random forest (scikit-learn,
its trees written out node by node) and a logistic regression folded back onto raw feature values.

Features reach a model the way DF hands them over: as float, booleans 0/1, a missing value NaN; the
logistic regression and the random forest read a missing value as 0, LightGBM handles it itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

KINDS = ("lightgbm", "random_forest", "logistic")


def matrix(df: pd.DataFrame, features: tuple[str, ...]) -> np.ndarray:
    """Features as float (booleans 0/1, missing NaN), the way DF hands them to a model."""
    return np.column_stack([pd.to_numeric(df[f].astype("float64"), errors="coerce") for f in features])


def fit_logistic(x: np.ndarray, y: np.ndarray, params: dict[str, Any]) -> dict[str, Any]:
    """A logistic regression on standardised features (NaN as 0), folded back into raw coefficients so DF
    scores it as `1 / (1 + exp(-(b + w·x)))` on the values it serves."""
    from sklearn.linear_model import LogisticRegression

    x0 = np.nan_to_num(x)
    mean, std = x0.mean(axis=0), x0.std(axis=0)
    std[std == 0] = 1.0
    lr = LogisticRegression(**params).fit((x0 - mean) / std, y)
    w = lr.coef_[0] / std
    return {"coefficients": w.tolist(), "intercept": float(lr.intercept_[0] - (w * mean).sum())}


def logistic_scores(model: dict[str, Any], x: np.ndarray) -> np.ndarray:
    z = model["intercept"] + np.nan_to_num(x) @ np.array(model["coefficients"])
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def forest_document(forest: Any) -> list[dict[str, list]]:
    """A fitted scikit-learn forest's trees as arrays: children, split feature and threshold, and each node's
    probability of fraud (what `predict_proba` averages at the leaves)."""
    trees = []
    for estimator in forest.estimators_:
        t = estimator.tree_
        counts = t.value[:, 0, :]
        trees.append(
            {
                "left": t.children_left.tolist(),
                "right": t.children_right.tolist(),
                "feature": t.feature.tolist(),
                "threshold": t.threshold.tolist(),
                "p": (counts[:, 1] / counts.sum(axis=1)).tolist(),
            }
        )
    return trees


@dataclass(frozen=True)
class Fitted:
    """A trained model: its scores on a feature matrix, and the model document DF loads."""

    kind: str
    features: tuple[str, ...]
    model: Any

    def scores(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "lightgbm":
            return self.model.predict_proba(x)[:, 1]
        if self.kind == "random_forest":
            return self.model.predict_proba(np.nan_to_num(x))[:, 1]
        return logistic_scores(self.model, x)

    def document(self) -> dict[str, Any]:
        """The bundle's model document (`bundle_models.parse_model` reads it back)."""
        if self.kind == "lightgbm":
            return {"kind": "lightgbm", "features": list(self.features), "model": self.model.booster_.model_to_string()}
        if self.kind == "random_forest":
            return {"kind": "random_forest", "features": list(self.features), "trees": forest_document(self.model)}
        return {"kind": "logistic", "features": list(self.features), **self.model}


def importance(fitted: Fitted) -> dict[str, float]:
    """Each feature's share of the model's importance, largest first: split gain for LightGBM, impurity
    decrease for a forest, the absolute raw coefficient for the logistic regression."""
    if fitted.kind == "logistic":
        raw = np.abs(np.asarray(fitted.model["coefficients"]))
    elif fitted.kind == "lightgbm":
        raw = np.asarray(fitted.model.booster_.feature_importance(importance_type="gain"), dtype=float)
    else:
        raw = np.asarray(fitted.model.feature_importances_, dtype=float)
    total = raw.sum() or 1.0
    return {
        f: round(float(v / total), 6) for f, v in sorted(zip(fitted.features, raw, strict=True), key=lambda x: -x[1])
    }


def fit(kind: str, params: dict[str, Any], x: np.ndarray, y: np.ndarray, features: tuple[str, ...]) -> Fitted:
    """Train a model of `kind` (one of KINDS) with `params` on `x`, `y`."""
    if kind == "lightgbm":
        import lightgbm as lgb

        return Fitted(kind, features, lgb.LGBMClassifier(**params).fit(x, y))
    if kind == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return Fitted(kind, features, RandomForestClassifier(**params).fit(np.nan_to_num(x), y))
    if kind == "logistic":
        return Fitted(kind, features, fit_logistic(x, y, params))
    raise ValueError(f"unknown model kind {kind!r}; kinds are {', '.join(KINDS)}")

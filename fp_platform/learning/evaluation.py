"""Fraud-detection metrics under the handbook protocol (Le Borgne et al., ch. 4): AUC ROC, average
precision, and card precision@k (`contracts.metrics`); cards already known compromised are left out of
the test set by the caller."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from fp_platform.contracts.metrics import card_precision_at_k


def evaluate(test: pd.DataFrame, scores: np.ndarray, k: int) -> dict[str, float]:
    y = test["is_fraud"].to_numpy()
    both = len(set(y)) == 2
    return {
        "auc_roc": float(roc_auc_score(y, scores)) if both else float("nan"),
        "average_precision": float(average_precision_score(y, scores)) if both else float("nan"),
        "card_precision_at_k": card_precision_at_k(test, scores, k),
    }


CURVE_POINTS = 101


def curves(y: np.ndarray, scores: np.ndarray) -> dict[str, list[list[float]]]:
    """The ROC (false positive rate, true positive rate) and precision-recall (recall, precision) curves,
    each thinned to at most CURVE_POINTS points kept in order (its ends included): small enough for an
    evidence file, the same curves the MLflow figure draws."""
    fpr, tpr, _ = roc_curve(y, scores)
    precision, recall, _ = precision_recall_curve(y, scores)

    def thin(xs: np.ndarray, ys: np.ndarray) -> list[list[float]]:
        keep = np.unique(np.linspace(0, len(xs) - 1, min(len(xs), CURVE_POINTS)).round().astype(int))
        return [[round(float(xs[i]), 6), round(float(ys[i]), 6)] for i in keep]

    return {"roc": thin(fpr, tpr), "pr": thin(recall, precision)}

"""Fraud-detection metrics under the handbook protocol (Le Borgne et al., ch. 4): AUC ROC, average
precision, and card precision@k (`contracts.metrics`); cards already known compromised are left out of
the test set by the caller."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from fp_platform.contracts.metrics import card_precision_at_k


def evaluate(test: pd.DataFrame, scores: np.ndarray, k: int) -> dict[str, float]:
    y = test["is_fraud"].to_numpy()
    both = len(set(y)) == 2
    return {
        "auc_roc": float(roc_auc_score(y, scores)) if both else float("nan"),
        "average_precision": float(average_precision_score(y, scores)) if both else float("nan"),
        "card_precision_at_k": card_precision_at_k(test, scores, k),
    }

"""Fraud-detection metrics under the handbook protocol (Le Borgne et al., ch. 4): AUC ROC, average
precision, and card precision@k — each test day, the k cards with the highest score, the share of them
with a fraud that day, averaged over days; cards already known compromised are left out."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score


def card_precision_at_k(test: pd.DataFrame, scores: np.ndarray, k: int) -> float:
    """`test` has columns ts, card_id, is_fraud (truth); one score per row."""
    df = test.assign(score=scores, day=test["ts"].dt.floor("D"))
    per_card = df.groupby(["day", "card_id"]).agg(score=("score", "max"), fraud=("is_fraud", "max")).reset_index()
    daily = [g.nlargest(k, "score")["fraud"].sum() / k for _, g in per_card.groupby("day")]
    return float(np.mean(daily)) if daily else 0.0


def evaluate(test: pd.DataFrame, scores: np.ndarray, k: int) -> dict[str, float]:
    y = test["is_fraud"].to_numpy()
    both = len(set(y)) == 2
    return {"auc_roc": float(roc_auc_score(y, scores)) if both else float("nan"),
            "average_precision": float(average_precision_score(y, scores)) if both else float("nan"),
            "card_precision_at_k": card_precision_at_k(test, scores, k)}

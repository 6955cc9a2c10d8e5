"""Card precision@k (Le Borgne et al., ch. 4.2): each day, the k cards with the highest score, the share
of them with a fraud that day, averaged over days. One definition for MF's evaluation and MPR's shadow
scoring (precision at the review budget)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def card_precision_at_k(rows: pd.DataFrame, scores: np.ndarray, k: int) -> float:
    """`rows` has columns ts (datetime), card_id, is_fraud (truth); one score per row."""
    df = rows.assign(score=scores, day=rows["ts"].dt.floor("D"))
    per_card = df.groupby(["day", "card_id"]).agg(score=("score", "max"), fraud=("is_fraud", "max")).reset_index()
    daily = [g.nlargest(k, "score")["fraud"].sum() / k for _, g in per_card.groupby("day")]
    return float(np.mean(daily)) if daily else 0.0

"""Card precision@k exactly as the Fraud Detection Handbook defines it (Le Borgne et al., ch. 4.2,
`card_precision_top_k` with `remove_detected_compromised_cards=True`).

Each day, in time order: the cards already detected as compromised on an earlier day are left out (an
investigator has blocked them); each remaining card counts once, with its highest score and whether any
of its transactions that day is fraud; the k cards with the highest score are the day's alerts, and the
share of them that are compromised is the day's precision. The metric is the mean over days.

One definition serves MF's evaluation, MPR's shadow scoring (precision at the review budget), the
learning bench and the run report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _day(rows: pd.DataFrame) -> pd.Series:
    return rows["ts"].dt.floor("D")


def review_days(rows: pd.DataFrame) -> list[str]:
    """The days `card_precision_at_k_daily` returns a value for, in its order (ISO dates)."""
    return [str(d.date()) for d in sorted(_day(rows).unique())]


def card_precision_at_k_daily(rows: pd.DataFrame, scores: np.ndarray, k: int) -> list[float]:
    """The day-by-day card precision@k; `rows` has columns ts (datetime), card_id, is_fraud; one score per row."""
    df = rows[["card_id", "is_fraud"]].assign(score=np.asarray(scores), day=_day(rows))
    detected: set = set()
    daily = []
    for _, day in df.groupby("day", sort=True):
        day = day[~day["card_id"].isin(detected)]
        per_card = day.groupby("card_id").agg(score=("score", "max"), fraud=("is_fraud", "max"))
        top = per_card.sort_values("score", ascending=False, kind="stable").head(k)
        hits = top.index[top["fraud"] == 1]
        daily.append(len(hits) / k)
        detected.update(hits)
    return daily


def mean_of_days(daily: list[float]) -> float:
    """The handbook's CP@k from its daily values: their mean (0 when there is no day)."""
    return float(np.mean(daily)) if daily else 0.0


def card_precision_at_k(rows: pd.DataFrame, scores: np.ndarray, k: int) -> float:
    """The handbook's CP@k: the mean of the daily card precision@k."""
    return mean_of_days(card_precision_at_k_daily(rows, scores, k))

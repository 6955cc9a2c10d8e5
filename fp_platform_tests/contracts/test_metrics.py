"""Card precision@k against a hand-computed example that tells the handbook's definition (detected cards
leave later days) from the naive one (every day ranks every card)."""

import numpy as np
import pandas as pd
import pytest

from fp_platform.contracts.metrics import card_precision_at_k, card_precision_at_k_daily, review_days

pytestmark = pytest.mark.unit


def _rows(tx: list[tuple[str, str, int, float]]) -> tuple[pd.DataFrame, np.ndarray]:
    rows = pd.DataFrame(
        {
            "ts": pd.to_datetime([t[0] for t in tx], utc=True),
            "card_id": [t[1] for t in tx],
            "is_fraud": [t[2] for t in tx],
        }
    )
    return rows, np.array([t[3] for t in tx])


def test_a_card_detected_on_one_day_is_left_out_of_the_next():
    rows, scores = _rows(
        [
            # day 1: A is the top card and compromised -> 1/1, A is detected
            ("2018-04-01T10:00Z", "A", 1, 0.9),
            ("2018-04-01T11:00Z", "B", 0, 0.8),
            ("2018-04-01T12:00Z", "C", 1, 0.1),
            # day 2: A would be top again (naive: 1/1); the handbook leaves it out, so B is top and genuine -> 0/1
            ("2018-04-02T10:00Z", "A", 1, 0.95),
            ("2018-04-02T11:00Z", "B", 0, 0.5),
            ("2018-04-02T12:00Z", "C", 0, 0.4),
        ]
    )
    assert card_precision_at_k_daily(rows, scores, 1) == [1.0, 0.0]
    assert card_precision_at_k(rows, scores, 1) == 0.5  # the naive definition gives 1.0


def test_a_card_counts_once_a_day_with_its_highest_score_and_any_fraud():
    rows, scores = _rows(
        [
            ("2018-04-01T10:00Z", "A", 0, 0.2),
            ("2018-04-01T18:00Z", "A", 1, 0.7),  # A's best score and its fraud that day
            ("2018-04-01T11:00Z", "B", 0, 0.6),
            ("2018-04-01T12:00Z", "C", 1, 0.5),
        ]
    )
    assert card_precision_at_k_daily(rows, scores, 2) == [0.5]  # top 2: A (fraud), B (genuine)
    assert card_precision_at_k_daily(rows, scores, 4) == [0.5]  # 2 of 4 slots: k divides, not the card count


def test_no_day_is_zero():
    rows, scores = _rows([])
    assert card_precision_at_k(rows, scores, 100) == 0.0


def test_review_days_name_each_daily_value_in_order():
    rows = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2018-04-02T23:00Z", "2018-04-01T10:00Z", "2018-04-02T01:00Z"], utc=True),
            "card_id": ["a", "b", "c"],
            "is_fraud": [1, 0, 0],
        }
    )
    daily = card_precision_at_k_daily(rows, np.array([0.9, 0.1, 0.2]), 1)
    assert review_days(rows) == ["2018-04-01", "2018-04-02"] and daily == [0.0, 1.0]

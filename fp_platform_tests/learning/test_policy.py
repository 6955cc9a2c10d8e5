"""The learning policy's per-scale values: a review budget that stays scarce on a small world."""

from __future__ import annotations

import pandas as pd
import pytest

from fp_platform.contracts.metrics import card_precision_at_k
from fp_platform.contracts.profiles import read_profile
from fp_platform.handles import Handles
from fp_platform.learning.policy import LearningPolicyError, _check, load_policy, review_budget_for


def test_a_smaller_world_reviews_fewer_cards_and_an_unknown_scale_the_books_budget(h: Handles):
    policy = load_policy(h)
    assert review_budget_for(policy, "handbook") == review_budget_for(policy, None) == policy.review_budget == 100
    assert review_budget_for(policy, "smoke") < review_budget_for(policy, "demo") == policy.review_budget


def test_a_budget_covering_every_card_cannot_tell_two_rankings_apart():
    """Why the budget scales: with k at least the day's cards, opposite rankings score the same."""
    rows = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2018-04-01T10:00Z"] * 4, utc=True),
            "card_id": ["a", "b", "c", "d"],
            "is_fraud": [1, 0, 0, 0],
        }
    )
    good, bad = [0.9, 0.1, 0.2, 0.3], [0.1, 0.9, 0.8, 0.7]
    assert card_precision_at_k(rows, good, 4) == card_precision_at_k(rows, bad, 4) == 0.25
    assert card_precision_at_k(rows, good, 1) == 1.0 and card_precision_at_k(rows, bad, 1) == 0.0


def test_a_review_budget_below_one_card_is_refused(h: Handles):
    profile = h.get("LEARNING_POLICY_PROFILE")
    doc = read_profile("fp_platform.learning", profile, "learning policy", LearningPolicyError)
    _check(doc, profile)
    with pytest.raises(LearningPolicyError, match="at least one card a day"):
        _check({**doc, "review_budget_by_scale": {"smoke": 0}}, profile)

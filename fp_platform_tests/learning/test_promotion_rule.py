"""P15's promotion rule on the shadow's daily card precision: the days pair the candidate with the active
bundle, and a candidate is refused when it is behind by more than chance allows (or changes too much).
Pure: the rule reads only the policy and the shadow evaluation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fp_platform.contracts.profiles import read_profile
from fp_platform.handles import Handles
from fp_platform.learning.policy import LearningPolicy, LearningPolicyError, _check, load_policy
from fp_platform.learning.promotion import promotion_rule


def shadow(candidate: list[float], active: list[float], changed_share: float = 0.02) -> dict:
    def side(daily: list[float]) -> dict:
        return {"precision_at_review_budget": sum(daily) / len(daily), "precision_at_review_budget_daily": daily}

    return {"candidate": side(candidate), "active": side(active), "changed_share": changed_share}


@pytest.fixture
def policy(h: Handles) -> LearningPolicy:
    return load_policy(h)


def test_one_card_behind_on_one_day_of_seven_is_not_evidence_of_harm(policy):
    """The CI run that v4 refused: 0.686 vs 0.700 at 10 reviews a day, one card on one day."""
    verdict = promotion_rule(policy, shadow([0.7, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7], [0.7] * 7))
    assert verdict["passed"], verdict["detail"]
    assert verdict["days"] == 7 and verdict["gain"] == pytest.approx(-0.1 / 7)
    assert verdict["upper_bound"] > 0 > verdict["gain"]
    assert "daily gain -0.014" in verdict["detail"] and "over 7 days" in verdict["detail"]


def test_a_candidate_behind_on_most_days_is_refused(policy):
    verdict = promotion_rule(policy, shadow([0.5, 0.5, 0.7, 0.6, 0.5, 0.5, 0.6], [0.6, 0.7, 0.7, 0.7, 0.6, 0.7, 0.7]))
    assert not verdict["passed"]
    assert verdict["upper_bound"] < policy.promotion["min_precision_gain"]


def test_a_candidate_one_card_behind_every_day_is_refused(policy):
    """No spread between the days: the bound is the gain itself."""
    verdict = promotion_rule(policy, shadow([0.6] * 7, [0.7] * 7))
    assert not verdict["passed"] and verdict["standard_error"] == pytest.approx(0.0, abs=1e-12)
    assert verdict["upper_bound"] == pytest.approx(-0.1)


def test_a_better_candidate_that_changes_too_many_decisions_is_refused(policy):
    better = shadow([0.8] * 7, [0.6] * 7, changed_share=policy.promotion["max_changed_share"] + 0.01)
    verdict = promotion_rule(policy, better)
    assert not verdict["passed"] and "changed 51.0% of decisions" in verdict["detail"]


def test_a_required_gain_is_judged_by_the_bound_not_the_point(policy):
    """Refused only when the shadow shows the candidate short of the required gain: a point gain under it
    with days that spread as wide as this does not; the same point gain every day does."""
    strict = replace(policy, promotion={**policy.promotion, "min_precision_gain": 0.05})
    noisy = promotion_rule(strict, shadow([0.6, 0.7, 0.6, 0.6, 0.7, 0.6, 0.5], [0.6] * 7))
    assert noisy["gain"] < 0.05 <= noisy["upper_bound"] and noisy["passed"]
    steady = promotion_rule(strict, shadow([0.62] * 7, [0.6] * 7))
    assert not steady["passed"] and steady["upper_bound"] == pytest.approx(0.02)


def test_one_day_is_judged_by_its_point_difference(policy):
    assert promotion_rule(policy, shadow([0.7], [0.7]))["passed"]
    verdict = promotion_rule(policy, shadow([0.6], [0.7]))
    assert not verdict["passed"] and verdict["upper_bound"] == pytest.approx(-0.1)


def test_a_shadow_without_daily_precision_or_unpaired_days_fails_closed(policy):
    old = {
        "candidate": {"precision_at_review_budget": 0.9},
        "active": {"precision_at_review_budget": 0.1},
        "changed_share": 0.0,
    }
    assert promotion_rule(policy, old) == {
        "passed": False,
        "detail": "the shadow evaluation has no daily precision: score the shadow again",
    }
    verdict = promotion_rule(policy, shadow([0.9, 0.9], [0.1, 0.1, 0.1]))
    assert not verdict["passed"] and "do not pair: 2 vs 3" in verdict["detail"]


def test_the_confidence_level_is_checked(h: Handles):
    profile = h.get("LEARNING_POLICY_PROFILE")
    doc = read_profile("fp_platform.learning", profile, "learning policy", LearningPolicyError)
    for level in (0.3, 1.0):
        with pytest.raises(LearningPolicyError, match="promotion.confidence"):
            _check({**doc, "promotion": {**doc["promotion"], "confidence": level}}, profile)

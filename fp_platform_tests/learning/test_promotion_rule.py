"""P15's promotion rule on the shadow's daily card precision: the days pair the candidate with the active
bundle; a candidate is refused when the days show it behind beyond chance, when its mean daily loss is
past the policy's tolerance however noisy the days, when it changes too much, or on too few days.
Pure: the rule reads only the policy and the shadow evaluation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fp_platform.contracts.profiles import read_profile
from fp_platform.handles import Handles
from fp_platform.learning.policy import LearningPolicy, LearningPolicyError, _check, load_policy
from fp_platform.learning.promotion import promotion_rule

KEYS = {"passed", "detail", "gain", "standard_error", "days", "upper_bound", "confidence"}
ONE_CARD_DIP = [0.7, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7]  # the CI run v4 refused: 0.686 vs 0.700 at 10 reviews a day


def shadow(candidate: list[float], active: list[float], changed_share: float = 0.02) -> dict:
    def side(daily: list[float]) -> dict:
        mean = sum(daily) / len(daily) if daily else 0.0
        return {"precision_at_review_budget": mean, "precision_at_review_budget_daily": daily}

    return {"candidate": side(candidate), "active": side(active), "changed_share": changed_share}


@pytest.fixture
def policy(h: Handles) -> LearningPolicy:
    return load_policy(h)


def with_rule(policy: LearningPolicy, **values: float) -> LearningPolicy:
    return replace(policy, promotion={**policy.promotion, **values})


def test_the_policy_pins_the_rule_these_tests_judge(policy):
    assert policy.promotion == {
        "min_precision_gain": 0.0,
        "max_point_loss": 0.02,
        "min_days": 5,
        "confidence": 0.95,
        "max_changed_share": 0.5,
    }


def test_one_card_behind_on_one_day_of_seven_is_not_evidence_of_harm(policy):
    verdict = promotion_rule(policy, shadow(ONE_CARD_DIP, [0.7] * 7))
    assert verdict["passed"], verdict["detail"]
    assert verdict.keys() == KEYS and verdict["days"] == 7
    assert verdict["gain"] == pytest.approx(-0.1 / 7)
    assert verdict["standard_error"] == pytest.approx(0.1 / 7)  # sd with ddof=1 is sqrt(7)/70
    assert verdict["upper_bound"] == pytest.approx(-0.1 / 7 + 1.94318 * 0.1 / 7, abs=1e-5)  # t(0.95, 6 df)
    assert "daily gain -0.014" in verdict["detail"] and "over 7 days" in verdict["detail"]


def test_at_confidence_one_half_the_bound_is_the_point_difference(policy):
    verdict = promotion_rule(with_rule(policy, confidence=0.5), shadow(ONE_CARD_DIP, [0.7] * 7))
    assert not verdict["passed"] and verdict["upper_bound"] == pytest.approx(verdict["gain"])


def test_a_higher_confidence_widens_the_bound(policy):
    days = shadow(ONE_CARD_DIP, [0.7] * 7)
    assert (
        promotion_rule(with_rule(policy, confidence=0.99), days)["upper_bound"]
        > (promotion_rule(policy, days)["upper_bound"])
    )


def test_a_candidate_one_card_behind_every_day_is_refused(policy):
    """No spread between the days: the bound is the gain itself."""
    verdict = promotion_rule(policy, shadow([0.69] * 7, [0.7] * 7))
    assert not verdict["passed"] and verdict["standard_error"] == pytest.approx(0.0, abs=1e-12)
    assert verdict["upper_bound"] == pytest.approx(-0.01) and verdict["gain"] >= -policy.promotion["max_point_loss"]


@pytest.mark.parametrize(
    "candidate",
    [
        [0.6, 0.6, 0.6, 0.7, 0.6, 0.7, 0.8],  # behind on four days of seven: bound +0.015, gain -0.043
        [0.4, 0.4, 0.7, 0.7, 0.7, 0.7, 0.7],  # never ahead, three cards behind twice: bound +0.022
    ],
)
def test_noisy_days_do_not_hide_a_loss_past_the_tolerance(policy, candidate):
    verdict = promotion_rule(policy, shadow(candidate, [0.7] * 7))
    assert verdict["upper_bound"] >= 0 and verdict["gain"] < -policy.promotion["max_point_loss"]
    assert not verdict["passed"] and "needs >= -0.020" in verdict["detail"]


def test_a_better_candidate_that_changes_too_many_decisions_is_refused(policy):
    better = shadow([0.8] * 7, [0.6] * 7, changed_share=policy.promotion["max_changed_share"] + 0.01)
    verdict = promotion_rule(policy, better)
    assert not verdict["passed"] and "changed 51.0% of decisions" in verdict["detail"]


def test_a_required_gain_is_reached_by_the_bound_and_the_point_within_the_tolerance(policy):
    strict = with_rule(policy, min_precision_gain=0.05)
    noisy = promotion_rule(strict, shadow([0.7, 0.6, 0.7, 0.6, 0.7, 0.6, 0.6], [0.6] * 7))  # gain +0.043
    assert noisy["gain"] < 0.05 <= noisy["upper_bound"] and noisy["passed"], noisy["detail"]
    steady = promotion_rule(strict, shadow([0.64] * 7, [0.6] * 7))  # gain +0.04, no spread
    assert not steady["passed"] and steady["upper_bound"] == pytest.approx(0.04)


@pytest.mark.parametrize(
    ("candidate", "active", "why"),
    [
        ([0.9, 0.9], [0.1, 0.1, 0.1], "the shadow's days do not pair: 2 vs 3"),
        ([0.9] * 4, [0.1] * 4, "the shadow covers 4 days, fewer than the policy's 5"),
        ([], [], "the shadow covers 0 days, fewer than the policy's 5"),
        ([0.9, float("nan"), 0.9, 0.9, 0.9], [0.1] * 5, "not a number on every day"),
    ],
)
def test_a_shadow_that_cannot_be_judged_fails_closed_with_the_same_fields(policy, candidate, active, why):
    verdict = promotion_rule(policy, shadow(candidate, active))
    assert not verdict["passed"] and why in verdict["detail"] and verdict.keys() == KEYS
    assert verdict["upper_bound"] is None and verdict["confidence"] == policy.promotion["confidence"]


def test_a_shadow_without_daily_precision_fails_closed(policy):
    old = {"candidate": {"precision_at_review_budget": 0.9}, "active": {"precision_at_review_budget": 0.1}}
    verdict = promotion_rule(policy, {**old, "changed_share": 0.0})
    assert not verdict["passed"] and verdict["detail"] == (
        "the shadow evaluation has no daily precision: score the shadow again"
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("confidence", 0.3, "promotion.confidence 0.3 is not in [0.5, 1)"),
        ("confidence", 1.0, "promotion.confidence 1.0 is not in [0.5, 1)"),
        ("confidence", float("nan"), "promotion.confidence nan is not in [0.5, 1)"),
        ("min_days", 1, "promotion.min_days 1 is not a whole number >= 2"),
        ("min_days", 4.5, "promotion.min_days 4.5 is not a whole number >= 2"),
        ("max_point_loss", -0.01, "promotion.max_point_loss -0.01 is below 0"),
    ],
)
def test_the_rules_values_are_checked(h: Handles, key, value, message):
    profile = h.get("LEARNING_POLICY_PROFILE")
    doc = read_profile("fp_platform.learning", profile, "learning policy", LearningPolicyError)
    assert _check({**doc, "promotion": {**doc["promotion"], key: 0.5 if key == "confidence" else 2}}, profile)
    with pytest.raises(LearningPolicyError, match=message.replace("[", r"\[").replace(")", r"\)")):
        _check({**doc, "promotion": {**doc["promotion"], key: value}}, profile)


def test_a_profile_without_a_rule_value_names_it(h: Handles):
    profile = h.get("LEARNING_POLICY_PROFILE")
    doc = read_profile("fp_platform.learning", profile, "learning policy", LearningPolicyError)
    rule = {k: v for k, v in doc["promotion"].items() if k != "confidence"}
    with pytest.raises(LearningPolicyError, match="no 'confidence'"):
        _check({**doc, "promotion": rule}, profile)

"""The learning policy profile (`learning/policies/<profile>.yaml`): protocol, label as-of policy,
features, models, metric floors and the review budget. Its `policy_rev` goes on every learning output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fp_platform.contracts.features import SERVED_FIELDS
from fp_platform.contracts.profiles import profile_loader
from fp_platform.learning.models import KINDS

METRICS = ("auc_roc", "average_precision", "card_precision_at_k")
PROMOTION_KEYS = ("min_precision_gain", "max_point_loss", "min_days", "confidence", "max_changed_share")


class LearningPolicyError(ValueError):
    """A learning profile that cannot be applied; the message names the field."""


@dataclass(frozen=True)
class LearningPolicy:
    policy_rev: str
    train_days: int
    delay_days: int
    test_days: int
    unlabelled_as: str
    features: tuple[str, ...]
    models: dict[str, dict[str, Any]]
    metric_floors: dict[str, float]
    metric_floors_by_scale: dict[str, dict[str, float]]
    review_budget: int
    review_budget_by_scale: dict[str, int]
    thresholds: dict[str, float]
    promotion: dict[str, float]
    selection: Selection


@dataclass(frozen=True)
class Selection:
    """Model selection (`learning/selection.py`): prequential folds, a time budget, and the search space
    (model kind → parameter grid; a list is an axis, anything else is fixed)."""

    folds: int
    min_folds: int  # fewer usable folds (a short world): no selection, the default candidate
    budget_s: float
    space: dict[str, dict[str, Any]]


def floors_for(policy: LearningPolicy, scale: str | None) -> dict[str, float]:
    """The metric floors a candidate trained on a world of this scale must reach."""
    return policy.metric_floors_by_scale.get(scale or "", policy.metric_floors)


def review_budget_for(policy: LearningPolicy, scale: str | None) -> int:
    """The cards a day reviewed on a world of this scale: the k of CP@k in P14 and of P15's shadow precision."""
    return policy.review_budget_by_scale.get(scale or "", policy.review_budget)


def _check(doc: dict[str, Any], name: str) -> LearningPolicy:
    try:
        p = doc["protocol"]
        policy = LearningPolicy(
            doc["policy_rev"],
            int(p["train_days"]),
            int(p["delay_days"]),
            int(p["test_days"]),
            doc["labels"]["unlabelled_as"],
            tuple(doc["features"]),
            doc["models"],
            {k: float(v) for k, v in doc["metric_floors"].items()},
            {
                scale: {k: float(v) for k, v in floors.items()}
                for scale, floors in doc.get("metric_floors_by_scale", {}).items()
            },
            int(doc["review_budget"]),
            {scale: int(k) for scale, k in doc.get("review_budget_by_scale", {}).items()},
            {k: float(v) for k, v in doc["thresholds"].items()},
            {k: float(doc["promotion"][k]) for k in PROMOTION_KEYS},
            Selection(
                int(doc["selection"]["folds"]),
                int(doc["selection"]["min_folds"]),
                float(doc["selection"]["budget_s"]),
                doc["selection"]["space"],
            ),
        )
    except KeyError as exc:
        raise LearningPolicyError(f"{name}: no {exc} (a key the profile needs)") from None
    except (TypeError, ValueError) as exc:
        raise LearningPolicyError(f"{name}: {exc}") from None
    if unknown := [f for f in policy.features if f not in SERVED_FIELDS]:
        raise LearningPolicyError(f"{name}: features {unknown} are not served online ({SERVED_FIELDS})")
    for floors in (policy.metric_floors, *policy.metric_floors_by_scale.values()):
        if set(floors) - set(METRICS):
            raise LearningPolicyError(f"{name}: metric floors may name only {METRICS}")
    if any(k < 1 for k in (policy.review_budget, *policy.review_budget_by_scale.values())):
        raise LearningPolicyError(f"{name}: a review budget is at least one card a day")
    if unknown := sorted(set(policy.selection.space) - set(KINDS)):
        raise LearningPolicyError(f"{name}: selection.space names unknown model kinds {unknown} (kinds: {KINDS})")
    if policy.selection.folds < 1 or policy.selection.budget_s <= 0 or not policy.selection.space:
        raise LearningPolicyError(f"{name}: selection needs folds >= 1, budget_s > 0 and a space")
    promotion = policy.promotion
    if not 0.5 <= promotion["confidence"] < 1:
        raise LearningPolicyError(f"{name}: promotion.confidence {promotion['confidence']} is not in [0.5, 1)")
    if not (promotion["min_days"] >= 2 and promotion["min_days"].is_integer()):
        raise LearningPolicyError(f"{name}: promotion.min_days {promotion['min_days']:g} is not a whole number >= 2")
    if not promotion["max_point_loss"] >= 0:
        raise LearningPolicyError(f"{name}: promotion.max_point_loss {promotion['max_point_loss']} is below 0")
    if policy.unlabelled_as not in ("LEGIT", "EXCLUDE"):
        raise LearningPolicyError(f"{name}: labels.unlabelled_as must be LEGIT or EXCLUDE")
    return policy


load_policy = profile_loader(
    "fp_platform.learning", "learning policy", LearningPolicyError, _check, "LEARNING_POLICY_PROFILE"
)

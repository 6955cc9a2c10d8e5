"""The decision policy profile (`rtdl/policies/<profile>.yaml`): degrade-ladder thresholds, DF's rules,
the bootstrap bundle and AL's effects. Loaded once per process; its `policy_rev` goes on every decision."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from fp_platform.contracts.payloads import DECISIONS
from fp_platform.contracts.profiles import profile_loader

POSTURES = ("NORMAL", "DEGRADED_CONTEXT", "RULES_ONLY", "FAIL_CLOSED")  # best first

PROCESSOR_KEYS = (
    "batch_linger_ms",
    "batch_max_records",
    "park_max_ms",
    "context_slack_ms",
    "context_grace_ms",
    "snapshot_interval_s",
)
_OPS = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}


class PolicyError(ValueError):
    """A policy profile that cannot be applied; the message names the field."""


@dataclass(frozen=True)
class Rule:
    code: str
    field: str
    op: str
    points: float
    value: float = 0.0
    of: str | None = None
    also: str | None = None

    def fires(self, values: dict[str, Any]) -> bool:
        """Whether the rule fires on `values`; a value it needs being absent means it cannot (False)."""
        x = values.get(self.field)
        if x is None:
            return False
        if self.op == "all_true":
            return bool(x) and bool(values.get(self.also))
        if self.op == "gt_ratio":
            base = values.get(self.of)
            return base is not None and base > 0 and x > self.value * base
        return _OPS[self.op](x, self.value)


@dataclass(frozen=True)
class Policy:
    policy_rev: str
    ladder: dict[str, Any]
    rules: tuple[Rule, ...]
    bootstrap: dict[str, Any]
    actions: dict[str, dict[str, str]]
    processor: dict[str, float]

    def rule_score(self, values: dict[str, Any]) -> tuple[float, list[str]]:
        """(score capped at 1, codes of the rules that fired); a rule missing a value does not fire."""
        fired = [r for r in self.rules if r.fires(values)]
        return min(1.0, sum(r.points for r in fired)), [r.code for r in fired]

    def action(self, decision: str) -> dict[str, str]:
        return self.actions[decision]


def decision_for(score: float, thresholds: dict[str, float]) -> str:
    """The strongest decision whose threshold the score reaches; APPROVE below them all."""
    out = "APPROVE"
    for d in DECISIONS[1:]:
        if d in thresholds and score >= float(thresholds[d]):
            out = d
    return out


def at_least(decision: str, floor: str) -> str:
    return max(decision, floor, key=DECISIONS.index)


def _check(doc: dict[str, Any], name: str) -> Policy:
    try:
        rules = tuple(Rule(**r) for r in doc["rules"])
        ladder = doc["degrade_ladder"]
        for posture in ladder["thresholds"]:
            if posture not in POSTURES:
                raise PolicyError(f"{name}: degrade_ladder.thresholds has unknown posture {posture!r}")
        for key in ("model_unavailable", "registry_unresolved"):
            if ladder[key] not in POSTURES:
                raise PolicyError(f"{name}: degrade_ladder.{key} must be one of {POSTURES}")
        for key in ("fail_closed_decision", "degraded_min_decision"):
            if ladder[key] not in DECISIONS:
                raise PolicyError(f"{name}: degrade_ladder.{key} must be one of {DECISIONS}")
        if set(doc["actions"]) != set(DECISIONS):
            raise PolicyError(f"{name}: actions must name each of {DECISIONS}")
        for r in rules:
            if r.op not in (*_OPS, "gt_ratio", "all_true"):
                raise PolicyError(f"{name}: rule {r.code} has unknown op {r.op!r}")
        processor = {k: float(doc["decision_processor"][k]) for k in PROCESSOR_KEYS}
        return Policy(doc["policy_rev"], ladder, rules, doc["bootstrap_bundle"], doc["actions"], processor)
    except (KeyError, TypeError) as exc:
        raise PolicyError(f"{name}: {exc}") from None


load_policy = profile_loader("fp_platform.rtdl", "decision policy", PolicyError, _check, "DECISION_POLICY_PROFILE")

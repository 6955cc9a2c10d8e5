"""The case and labels policy profile (`case_labels/policies/<profile>.yaml`): what opens a case and how
the simulated world answers it — investigators after a delay, with an error rate; chargebacks later for
the fraud nobody confirmed. Every draw is a hash of the event, so the same world gives the same labels."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fp_platform.contracts import ids
from fp_platform.contracts.payloads import DECISIONS, LABELS
from fp_platform.contracts.profiles import profile_loader
from fp_platform.handles import Handles


class CasePolicyError(ValueError):
    """A case/labels profile that cannot be applied; the message names the field."""


def draw(*parts: object) -> float:
    """A deterministic uniform draw in [0, 1) for these parts."""
    h = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


def _between(lo_hi: tuple[float, float], u: float) -> float:
    return lo_hi[0] + (lo_hi[1] - lo_hi[0]) * u


@dataclass(frozen=True)
class Investigation:
    investigator: str
    assigned_at: datetime
    disposed_at: datetime
    label: str
    erred: bool


@dataclass(frozen=True)
class CasePolicy:
    policy_rev: str
    trigger_decisions: frozenset[str]
    approve_sample_rate: float
    investigators: int
    delay_hours: tuple[float, float]
    assign_fraction: float
    error_rate: float
    chargeback_rate: float
    chargeback_delay_days: tuple[float, float]

    def trigger_reason(self, decision: str, event_id: str) -> str | None:
        """Why this decision opens a case (DECISION_<decision> or QC_SAMPLE_APPROVE), None if it does not."""
        if decision in self.trigger_decisions:
            return f"DECISION_{decision}"
        if decision == "APPROVE" and draw("qc", event_id) < self.approve_sample_rate:
            return "QC_SAMPLE_APPROVE"
        return None

    def investigation(self, event_id: str, is_fraud: bool, opened_at: datetime) -> Investigation:
        """Who works the case, when, and what they conclude (the truth, wrong at the error rate)."""
        delay = timedelta(hours=_between(self.delay_hours, draw("inv_delay", event_id)))
        erred = draw("inv_error", event_id) < self.error_rate
        label = LABELS[0] if is_fraud != erred else LABELS[1]
        who = f"investigator_{int(draw('inv_who', event_id) * self.investigators)}"
        return Investigation(who, opened_at + delay * self.assign_fraction, opened_at + delay, label, erred)

    def chargeback_at(self, event_id: str, tx_at: datetime) -> datetime | None:
        """When a fraud transaction comes back as a chargeback, None if it never does."""
        if draw("cb_rate", event_id) >= self.chargeback_rate:
            return None
        return tx_at + timedelta(days=_between(self.chargeback_delay_days, draw("cb_delay", event_id)))


def _pair(doc: dict[str, Any], key: str, name: str) -> tuple[float, float]:
    lo, hi = (float(x) for x in doc[key])
    if not 0 <= lo <= hi:
        raise CasePolicyError(f"{name}: {key} must be [low, high] with 0 <= low <= high")
    return lo, hi


def _rate(x: Any, what: str, name: str) -> float:
    x = float(x)
    if not 0 <= x <= 1:
        raise CasePolicyError(f"{name}: {what} must be within [0, 1]")
    return x


def _check(doc: dict[str, Any], name: str) -> CasePolicy:
    try:
        trig, inv, cb = doc["case_trigger"], doc["investigator"], doc["chargeback"]
        unknown = set(trig["decisions"]) - set(DECISIONS)
        if unknown:
            raise CasePolicyError(f"{name}: case_trigger.decisions has unknown {sorted(unknown)}; use {DECISIONS}")
        if int(inv["investigators"]) < 1:
            raise CasePolicyError(f"{name}: investigator.investigators must be at least 1")
        return CasePolicy(
            doc["policy_rev"],
            frozenset(trig["decisions"]),
            _rate(trig["approve_sample_rate"], "case_trigger.approve_sample_rate", name),
            int(inv["investigators"]),
            _pair(inv, "delay_hours", name),
            _rate(inv["assign_fraction"], "investigator.assign_fraction", name),
            _rate(inv["error_rate"], "investigator.error_rate", name),
            _rate(cb["rate"], "chargeback.rate", name),
            _pair(cb, "delay_days", name),
        )
    except CasePolicyError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CasePolicyError(f"{name}: {exc!r}") from None


load_case_policy = profile_loader(
    "fp_platform.case_labels", "case/labels policy", CasePolicyError, _check, "CASE_LABELS_POLICY_PROFILE"
)


def case_subject(h: Handles, run_id: str, event_class: str, event_id: str) -> dict[str, object]:
    """The CaseSubjectKey of a decided event (CASE_SUBJECT_KEY_FIELDS)."""
    return ids.subject_key(
        h.get("CASE_SUBJECT_KEY_FIELDS"), {"platform_run_id": run_id, "event_class": event_class, "event_id": event_id}
    )


def label_subject(h: Handles, run_id: str, event_id: str) -> dict[str, object]:
    """The LabelSubjectKey of a transaction event (LABEL_SUBJECT_KEY_FIELDS)."""
    return ids.subject_key(h.get("LABEL_SUBJECT_KEY_FIELDS"), {"platform_run_id": run_id, "event_id": event_id})

"""Identifiers. All but platform_run_id are deterministic, so retries and reruns reuse them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fp_platform.contracts.canonical import digest

PLATFORM_RUN_ID_RE = re.compile(r"^platform_\d{8}T\d{6}Z$")


def new_platform_run_id(now: datetime | None = None) -> str:
    """`platform_<YYYYMMDDTHHMMSS>Z` in UTC."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"platform_{now:%Y%m%dT%H%M%S}Z"


class InvalidRunId(ValueError):
    """A string that is not a platform_run_id."""


def check_platform_run_id(value: str) -> str:
    if not PLATFORM_RUN_ID_RE.match(value):
        raise InvalidRunId(f"not a platform_run_id: {value!r} (expected platform_YYYYMMDDTHHMMSSZ)")
    return value


def _hashed(prefix: str, *parts: object) -> str:
    return f"{prefix}_{digest([prefix, *parts])[:32]}"


def scenario_run_id(equivalence_key: str, oracle_pack_fingerprint: str) -> str:
    return _hashed("scenario", equivalence_key, oracle_pack_fingerprint)


def ready_event_id(platform_run_id: str, scenario_run_id_: str) -> str:
    """READY's event id: one READY per run and scenario, whoever publishes it."""
    return _hashed("ready", platform_run_id, scenario_run_id_)


def event_id(output_id: str, engine_run_id: str, natural_key: object) -> str:
    return _hashed("evt", output_id, engine_run_id, natural_key)


def decision_id(platform_run_id: str, event_id_: str) -> str:
    return _hashed("dec", platform_run_id, event_id_)


def action_id(decision_id_: str, action_kind: str) -> str:
    return _hashed("act", decision_id_, action_kind)


def case_id(case_subject_key: dict[str, object]) -> str:
    return _hashed("case", case_subject_key)


def outcome_id(action_id_: str) -> str:
    return _hashed("out", action_id_)


def audit_event_id(decision_id_: str) -> str:
    """One audit chain event per decision."""
    return _hashed("aud", decision_id_)


def subject_key(fields: list[str], values: dict[str, object]) -> dict[str, object]:
    """A subject key (CaseSubjectKey, LabelSubjectKey): the pinned fields of `values`, in pinned order."""
    missing = [f for f in fields if values.get(f) is None]
    if missing:
        raise ValueError(f"subject key needs {fields}; missing {missing}")
    return {f: values[f] for f in fields}


def case_trigger_event_id(case_id_: str) -> str:
    """One trigger per case, whoever re-reads the audit event that opened it."""
    return _hashed("ctr", case_id_)


def label_subject_key(label_subject: dict[str, object]) -> str:
    return _hashed("lsk", label_subject)


def label_assertion_id(label_subject_key_: str, source: str, label: str, observed_at: str) -> str:
    """A retried assertion (same subject, source, label and observation time) is the same assertion."""
    return _hashed("lab", label_subject_key_, source, label, observed_at)


def label_plan_id(kind: str, label_subject_key_: str) -> str:
    """The label simulation plans each kind of work once per subject."""
    return _hashed("lsp", kind, label_subject_key_)

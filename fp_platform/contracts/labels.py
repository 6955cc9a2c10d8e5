"""The label store's read contract: which label was known for each subject at a world time.

LS (`case_labels/label_store.py`) is the one writer of `ls_assertions`; its readers — OFS building a training set,
P10's summary, `fp-platform labels as-of` — must all answer "known at T" the same way, so the answer is
defined once here rather than each plane importing another's internals.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

# When two assertions of a subject are observed at the same moment, the later source in this list wins.
SOURCE_PRECEDENCE = ("INVESTIGATOR", "CHARGEBACK")

_AS_OF = """
SELECT DISTINCT ON (label_subject_key) label_subject_key, subject->>'event_id', transaction_id, label, source,
       effective_at, observed_at, assertion_id
FROM ls_assertions WHERE platform_run_id = %(run)s AND observed_at <= %(at)s {extra}
ORDER BY label_subject_key, observed_at DESC, array_position(%(precedence)s::text[], source) DESC NULLS LAST, seq DESC
"""


def as_of(
    conn: psycopg.Connection, run_id: str, at: datetime, event_ids: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The label known for each subject at world time `at`: its latest assertion observed by then (never one
    observed after; ties go to the later source in SOURCE_PRECEDENCE, then the later append). Keyed by event
    id; `event_ids` narrows it."""
    extra = "AND subject->>'event_id' = ANY(%(ids)s)" if event_ids is not None else ""
    rows = conn.execute(
        _AS_OF.format(extra=extra), {"run": run_id, "at": at, "ids": event_ids, "precedence": list(SOURCE_PRECEDENCE)}
    ).fetchall()
    keys = (
        "label_subject_key",
        "event_id",
        "transaction_id",
        "label",
        "source",
        "effective_at",
        "observed_at",
        "assertion_id",
    )
    return {r[1]: dict(zip(keys, r, strict=True)) for r in rows}

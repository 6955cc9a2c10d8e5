"""LS, the label store: the one writer boundary for label assertions.

`append` takes assertions from a named writer. A writer/source pair not granted in `ls_writers` is
refused and the attempt recorded in `ls_refused_writes` (a governance anomaly); the foreign key from
`ls_assertions` to `ls_writers` makes the database refuse it too, whoever writes. Accepted assertions
are appended once (idempotent on `assertion_id`) and their `labels.assertion` events go to LS's outbox
in the same transaction; the LabelStore worker sends them after commit. `as_of` answers "which label
was known for each subject at world time T" — it lives in `contracts/labels.py`, the read contract LS
shares with OFS and the CLI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg

from fp_platform.contracts import components, ids
from fp_platform.contracts.envelope import Envelope
from fp_platform.contracts.payloads import LABELS
from fp_platform.handles import Handles
from fp_platform.substrate.worker import Worker, outbox_row, write_outbox


@dataclass(frozen=True)
class Assertion:
    """One label claim about a transaction event (LabelSubjectKey = run + event id)."""

    subject: dict[str, object]
    transaction_id: int
    label: str
    source: str
    effective_at: datetime  # the transaction's time
    observed_at: datetime  # the world time the platform learns it
    origin: tuple[str, int, int]  # the record this claim derives from
    case_id: str | None = None

    @property
    def subject_key(self) -> str:
        return ids.label_subject_key(self.subject)

    @property
    def assertion_id(self) -> str:
        return ids.label_assertion_id(self.subject_key, self.source, self.label, _iso(self.observed_at))


@dataclass
class AppendResult:
    appended: int = 0
    duplicates: int = 0
    refused: int = 0


def granted(conn: psycopg.Connection) -> set[tuple[str, str]]:
    return {(w, s) for w, s in conn.execute("SELECT writer_id, source FROM ls_writers")}


def append(
    h: Handles, conn: psycopg.Connection, writer_id: str, assertions: list[Assertion], outbox_group: str | None = None
) -> AppendResult:
    """Append `assertions` from `writer_id` inside the caller's transaction (see the module doc); their
    events go to the outbox of `outbox_group` (LS's consumer group unless a test runs its own LS)."""
    out = AppendResult()
    if not assertions:
        return out
    # LS's outbox has several writers: serialising appends keeps its seq order = commit order, so the
    # LabelStore worker's cursor never passes a row that commits later.
    group = outbox_group or h.get("CONSUMER_GROUP_ID_LS")
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (group,))
    grants = granted(conn)
    accepted, refused = [], []
    for a in assertions:
        if a.label not in LABELS:
            refused.append((a, f"label {a.label!r} is not one of {LABELS}"))
        elif (writer_id, a.source) not in grants:
            refused.append((a, f"writer {writer_id!r} is not granted source {a.source!r}"))
        else:
            accepted.append(a)
    for a, reason in refused:
        conn.execute(
            "INSERT INTO ls_refused_writes (platform_run_id, writer_id, source, label_subject_key, reason,"
            " attempted) VALUES (%s, %s, %s, %s, %s, %s)",
            (
                a.subject["platform_run_id"],
                writer_id,
                a.source,
                a.subject_key,
                reason,
                orjson.dumps(_payload(a, writer_id)).decode(),
            ),
        )
    out.refused = len(refused)
    component = h.get("COMPONENT_ID_LS")
    events = []
    for a in accepted:
        row = conn.execute(
            "INSERT INTO ls_assertions (assertion_id, platform_run_id, label_subject_key, subject, transaction_id,"
            " label, source, writer_id, effective_at, observed_at, case_id, origin_topic, origin_partition,"
            " origin_offset) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (assertion_id) DO NOTHING RETURNING seq",
            (
                a.assertion_id,
                a.subject["platform_run_id"],
                a.subject_key,
                orjson.dumps(a.subject).decode(),
                a.transaction_id,
                a.label,
                a.source,
                writer_id,
                a.effective_at,
                a.observed_at,
                a.case_id,
                *a.origin,
            ),
        ).fetchone()
        if row is None:
            out.duplicates += 1
            continue
        out.appended += 1
        events.append(
            outbox_row(
                h,
                Envelope.build(
                    event_id=a.assertion_id,
                    event_class="labels.assertion",
                    ts_utc=_iso(a.observed_at),
                    pins={"platform_run_id": a.subject["platform_run_id"]},
                    producer=component,
                    payload=_payload(a, writer_id),
                ),
                a.subject_key,
                component,
                group,
            )
        )
    write_outbox(conn, events)
    return out


def _iso(t: datetime) -> str:
    """UTC with a Z, whatever zone the value came in (a session's TimeZone must not change an id)."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _payload(a: Assertion, writer_id: str) -> dict[str, Any]:
    return {
        "assertion_id": a.assertion_id,
        "label_subject_key": a.subject_key,
        "subject": a.subject,
        "transaction_id": a.transaction_id,
        "label": a.label,
        "source": a.source,
        "writer_id": writer_id,
        "effective_at": _iso(a.effective_at),
        "observed_at": _iso(a.observed_at),
        "case_id": a.case_id,
        "origin": {"topic": a.origin[0], "partition": a.origin[1], "offset": a.origin[2]},
    }


_SINCE = "SELECT count(*), coalesce(max(seq), %(s)s) FROM {table} WHERE platform_run_id = %(r)s AND seq > %(s)s"


def appended_since(conn: psycopg.Connection, run_id: str, table: str, seq: int = 0) -> tuple[int, int]:
    """Rows of the run in `table` (ls_assertions, ls_refused_writes) past `seq`, and the last seq among them
    (`seq` when none): from 0 the run's count, from a seq already seen a range of the primary key."""
    n, last = conn.execute(_SINCE.format(table=table), {"r": run_id, "s": seq}).fetchone()
    return n, last


class LabelStore(Worker):
    """Publishes what LS appended: it reads no topic; it sends LS's outbox (past the broker-confirmed cursor)."""

    identity = components.LABEL_STORE
    _last_send = 0.0
    _counted: dict[str, list[int]]  # table -> [rows of the run, last seq counted]

    def on_start(self, conn: psycopg.Connection) -> None:
        self._counted = {t: list(appended_since(conn, self.run_id, t)) for t in ("ls_assertions", "ls_refused_writes")}

    def apply(self, conn: psycopg.Connection, records: list) -> None:
        raise AssertionError("LabelStore reads no topic")

    def on_idle(self, conn: psycopg.Connection) -> None:
        if time.monotonic() - self._last_send > 0.2:
            self._last_send = time.monotonic()
            self._send_outbox(conn)

    def health(self, conn: psycopg.Connection) -> tuple[str, dict[str, Any]]:
        """The run's counts, kept up from the rows appended since the last beat (no pass over the run). Those
        rows are past the last seq counted: `append` holds the outbox group's lock from the seq it takes to
        its commit, so a run's rows (one group per run) commit in seq order."""
        for table, counted in self._counted.items():
            n, counted[1] = appended_since(conn, self.run_id, table, counted[1])
            counted[0] += n
        return "", {
            "assertions": self._counted["ls_assertions"][0],
            "refused_writes": self._counted["ls_refused_writes"][0],
        }

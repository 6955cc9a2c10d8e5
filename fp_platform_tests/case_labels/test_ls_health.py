"""LS's heartbeat counters (the run's assertions and refused writes) are read once at start and then kept
up from the rows appended since the last beat — never counted over the run per beat — and equal the
counts over the whole run at every beat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fp_platform.case_labels import label_store
from fp_platform.case_labels.label_store import LabelStore
from fp_platform.case_labels.policy import label_subject
from fp_platform.substrate import db
from fp_platform_tests.support import unique_run_id

T0 = datetime(2018, 4, 1, tzinfo=UTC)


def _sql(conn, run_id: str) -> dict[str, int]:
    n, refused = conn.execute(
        "SELECT (SELECT count(*) FROM ls_assertions WHERE platform_run_id = %(r)s),"
        " (SELECT count(*) FROM ls_refused_writes WHERE platform_run_id = %(r)s)",
        {"r": run_id},
    ).fetchone()
    return {"assertions": n, "refused_writes": refused}


def test_label_store_heartbeat_counts_follow_the_appends(h, stack):
    run_id, other = unique_run_id(), unique_run_id()
    group = f"test.ls.health.{run_id}"
    cm, sim = h.get("COMPONENT_ID_CM"), h.get("COMPONENT_ID_LABEL_SIMULATION")

    def append(conn, run: str, first: int, count: int, writer: str = cm, source: str = "INVESTIGATOR") -> None:
        with conn.transaction():
            label_store.append(
                h,
                conn,
                writer,
                [
                    label_store.Assertion(
                        label_subject(h, run, f"evt_{i}"),
                        i,
                        "FRAUD",
                        source,
                        T0,
                        T0 + timedelta(hours=i),
                        ("test", 0, i),
                    )
                    for i in range(first, first + count)
                ],
                group,
            )

    worker = LabelStore(h, run_id, group_id=group)
    with db.connect(h, autocommit=True) as conn:
        append(conn, run_id, 0, 5)
        append(conn, run_id, 0, 1, writer=sim)  # INVESTIGATOR is not granted to the simulation: refused
        worker.on_start(conn)
        assert worker.health(conn)[1] == _sql(conn, run_id) == {"assertions": 5, "refused_writes": 1}
        append(conn, run_id, 5, 7)
        append(conn, other, 0, 4)  # another run's rows, interleaved: not this run's counts
        append(conn, run_id, 10, 4)  # 2 repeats of assertions already appended, 2 new
        append(conn, run_id, 0, 2, writer="rogue_writer")
        assert worker.health(conn)[1] == _sql(conn, run_id) == {"assertions": 14, "refused_writes": 3}
        assert worker.health(conn)[1] == _sql(conn, run_id)  # a beat with nothing new changes nothing

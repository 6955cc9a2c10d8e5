"""The case and labels plane on the real stack: a smoke world's decided traffic opens cases by policy,
investigators and chargebacks (from the oracle truth on S3) become label assertions through LS's writer
boundary, OFP takes the label events in; re-delivered triggers change nothing; the database refuses to
rewrite case/label truth and an ungranted writer; the as-of query never returns a later observation."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fp_platform.benches.rtdl import world_envelopes
from fp_platform.case_labels import case_management, label_store, summary
from fp_platform.case_labels.case_management import CaseManagement
from fp_platform.case_labels.case_trigger import CaseTrigger
from fp_platform.case_labels.label_simulation import LabelSimulation
from fp_platform.case_labels.label_store import LabelStore
from fp_platform.case_labels.policy import draw, label_subject, load_case_policy
from fp_platform.contracts import labels
from fp_platform.rtdl.processor import DecisionProcessor
from fp_platform.substrate import bus, db
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.world.engine import TRUTH_OUTPUT
from fp_platform_tests.support import Lane, smoke_world, start_lane, unique_run_id

# OFP takes in LS's label events: it runs in the decision processor, which goes on from the lane's checkpoint
PLANE = (CaseTrigger, CaseManagement, LabelSimulation, LabelStore, DecisionProcessor)


def put_truth(h, run_id: str, world) -> None:
    """The oracle truth where P3 seals it for the run (the label simulation reads it from there)."""
    buf = io.BytesIO()
    pq.write_table(world[TRUTH_OUTPUT], buf)
    key = (
        h.pattern("S3_ORACLE_ENGINE_RUN_ROOT_PATTERN", platform_run_id=run_id)
        + f"output_id={h.get('ORACLE_TRUTH_OUTPUT_ID')}/part-00000.parquet"
    )
    S3ObjectStore(h).put(h.get("S3_ORACLE_BUCKET"), key, buf.getvalue(), write_once=False)


def plane_extra(lane: Lane) -> dict:
    return {LabelSimulation: {"ls_group": lane.group(LabelStore)}}


@pytest.fixture(scope="module")
def lane(h, stack) -> Lane:
    world = smoke_world(days=14)
    lane = start_lane(h, world_envelopes(h, "platform_20000101T000000Z", world))
    put_truth(h, lane.run_id, world)
    lane.run(h, *PLANE, extra=plane_extra(lane))
    return lane


def _progress(h, conn, lane: Lane) -> dict[str, int]:
    groups = {
        k: lane.group(c)
        for k, c in (
            ("CONSUMER_GROUP_ID_CASE_TRIGGER", CaseTrigger),
            ("CONSUMER_GROUP_ID_LABEL_SIMULATION", LabelSimulation),
            ("CONSUMER_GROUP_ID_LS", LabelStore),
        )
    }
    return summary.progress(h, load_case_policy(h), conn, lane.run_id, groups)


def test_decisions_open_cases_and_the_world_answers_with_labels(h, lane):
    with db.connect(h) as conn:
        done, where = summary.caught_up(_progress(h, conn, lane))
        cases = summary.case_summary(load_case_policy(h), conn, lane.run_id)
        labels = summary.label_summary(h, conn, lane.run_id, lane.group(LabelStore))
        features_seen = conn.execute(
            "SELECT count(*) FROM ofp_labels WHERE platform_run_id = %s", (lane.run_id,)
        ).fetchone()[0]
    assert done, where
    assert cases["triggers"] == cases["triggers_expected"] > 0, cases
    assert cases["triggers_by_reason"] == cases["triggers_expected_by_reason"]
    assert "QC_SAMPLE_APPROVE" in cases["triggers_by_reason"] and "DECISION_DECLINE" in cases["triggers_by_reason"]
    assert cases["cases"] == cases["triggers"] and cases["triggers_without_case"] == 0
    assert cases["timeline_events_by_type"]["EVIDENCE_ATTACHED"] == 3 * cases["cases"]
    assert cases["evidence_refs_unresolved"] == 0 and cases["cases_with_incomplete_evidence"] == 0
    assert cases["cases_by_status"].get("CLOSED", 0) > 0 and cases["investigations"].get("DUE", 0) == 0
    assert cases["trigger_deliveries"] == {"NEW": cases["cases"]}
    assert labels["assertions"] == labels["assertions_expected"] > 0, labels
    assert {k.split(":")[0] for k in labels["by_source_label"]} == {"INVESTIGATOR", "CHARGEBACK"}
    assert labels["same_source_repeats"] == 0 and labels["ungranted_assertions"] == 0
    assert labels["label_events_unsent"] == 0 and features_seen == labels["assertions"]
    assert labels["simulated_work"].get("CHARGEBACK:BEYOND_WORLD_CLOCK", 0) > 0  # the world ends before some arrive


def test_labels_follow_the_truth_and_the_policy(h, lane):
    """Every chargeback is a fraud of the truth; an investigator's label is the truth unless the plan
    says they erred; no assertion is observed before its transaction or after the world clock."""
    world = smoke_world(days=14)
    fraud = dict(
        zip(world[TRUTH_OUTPUT]["transaction_id"].to_pylist(), world[TRUTH_OUTPUT]["tx_fraud"].to_pylist(), strict=True)
    )
    with db.connect(h) as conn:
        rows = conn.execute(
            "SELECT a.transaction_id, a.label, a.source, a.effective_at, a.observed_at,"
            " (p.detail->>'erred')::boolean FROM ls_assertions a LEFT JOIN label_sim_plan p"
            " ON p.platform_run_id = a.platform_run_id AND p.case_id = a.case_id"
            " WHERE a.platform_run_id = %s",
            (lane.run_id,),
        ).fetchall()
        clock = summary.world_clock(conn, lane.run_id)
    for tx, label, source, effective, observed, erred in rows:
        assert effective <= observed <= clock
        if source == "CHARGEBACK":
            assert label == "FRAUD" and fraud[tx] == 1
        else:
            assert ((label == "FRAUD") != erred) == (fraud[tx] == 1)


def test_evidence_references_that_do_not_resolve_are_found(h, lane):
    """A timeline pointing at a decision without a chain, a foreign audit id and a receipt the run did
    not admit: P10's by-reference check names all three."""
    run_id, case_id = unique_run_id(), "case_unresolvable"
    at = datetime(2018, 4, 1, tzinfo=UTC)
    refs = {"decision_id": "dec_missing", "audit_event_id": "aud_other", "ig_receipt_id": "rcpt_missing"}
    with db.connect(h, autocommit=True) as conn:
        case_management.append_events(
            conn,
            [
                (
                    run_id,
                    case_id,
                    "EVIDENCE_ATTACHED",
                    f"{run_id}:{k}",
                    "test",
                    at,
                    {"ref_kind": k, "ref_id": v},
                    "test",
                    0,
                    0,
                )
                for k, v in refs.items()
            ],
        )
        doc = summary.case_summary(load_case_policy(h), conn, run_id)
    assert doc["evidence_refs_unresolved"] == 3
    assert {(r["ref_kind"], r["ref_id"]) for r in doc["evidence_refs_unresolved_sample"]} == set(refs.items())


def test_redelivering_every_trigger_changes_nothing_in_cm(h, lane):
    """Every trigger of the run produced again (same bytes, new offsets) and CM's checkpoint reset:
    CM records the duplicates and its timelines stay exactly as they were."""
    group = lane.group(CaseTrigger)
    with db.connect(h, autocommit=True) as conn:
        before = conn.execute(
            "SELECT count(*), max(seq) FROM cm_case_events WHERE platform_run_id = %s", (lane.run_id,)
        ).fetchone()
        triggers = conn.execute(
            "SELECT topic, value, record_key, headers FROM worker_outbox WHERE consumer_group = %s ORDER BY seq",
            (group,),
        ).fetchall()
        conn.execute("DELETE FROM worker_offsets WHERE consumer_group = %s", (lane.group(CaseManagement),))
    assert triggers
    records = [(t, bytes(v), bytes(k), [tuple(x) for x in hs]) for t, v, k, hs in triggers]
    results = bus.deliver(bus.producer(h), records)
    assert not [r for r in results if isinstance(r, str)]
    counters = lane.run(h, CaseManagement)["CaseManagement"]
    with db.connect(h) as conn:
        after = conn.execute(
            "SELECT count(*), max(seq) FROM cm_case_events WHERE platform_run_id = %s", (lane.run_id,)
        ).fetchone()
        deliveries = dict(
            conn.execute(
                "SELECT outcome, count(*) FROM cm_trigger_deliveries WHERE platform_run_id = %s GROUP BY 1",
                (lane.run_id,),
            ).fetchall()
        )
    assert after == before
    assert counters.get("timeline_events", 0) == 0
    assert counters["deliveries_duplicate"] == len(triggers) and counters["deliveries_reread"] == len(triggers)
    assert deliveries == {"NEW": len(triggers), "DUPLICATE": len(triggers)}


def _assertion(
    h, run_id: str, event_id: str, source: str, observed: datetime, label: str = "FRAUD"
) -> label_store.Assertion:
    return label_store.Assertion(
        label_subject(h, run_id, event_id), 1, label, source, observed - timedelta(days=1), observed, ("test", 0, 0)
    )


def test_an_unauthorised_label_write_is_refused_and_recorded(h, lane):
    at = datetime(2018, 4, 5, tzinfo=UTC)
    with db.connect(h, autocommit=True) as conn:
        with conn.transaction():
            rogue = label_store.append(
                h,
                conn,
                "rogue_writer",
                [_assertion(h, lane.run_id, "evt_rogue", "INVESTIGATOR", at)],
                lane.group(LabelStore),
            )
            wrong_source = label_store.append(
                h,
                conn,
                h.get("COMPONENT_ID_CM"),
                [_assertion(h, lane.run_id, "evt_rogue", "CHARGEBACK", at)],
                lane.group(LabelStore),
            )
        assert (rogue.refused, rogue.appended, wrong_source.refused, wrong_source.appended) == (1, 0, 1, 0)
        with pytest.raises(psycopg.errors.ForeignKeyViolation):  # around the boundary: the database refuses too
            conn.execute(
                "INSERT INTO ls_assertions (assertion_id, platform_run_id, label_subject_key, subject,"
                " transaction_id, label, source, writer_id, effective_at, observed_at, origin_topic,"
                " origin_partition, origin_offset) VALUES ('lab_x', %s, 'lsk_x', '{}', 1, 'FRAUD',"
                " 'INVESTIGATOR', 'rogue_writer', now(), now(), 't', 0, 0)",
                (lane.run_id,),
            )
        doc = summary.label_summary(h, conn, lane.run_id, lane.group(LabelStore))
    assert doc["refused_writes"] == 2 and doc["ungranted_assertions"] == 0
    assert {(r["writer_id"], r["source"]) for r in doc["refused_writes_sample"]} == {
        ("rogue_writer", "INVESTIGATOR"),
        (h.get("COMPONENT_ID_CM"), "CHARGEBACK"),
    }


def test_replaying_the_audit_topic_plans_and_labels_nothing_twice(h, lane):
    """CaseTrigger and the simulation read every chain again (their checkpoints reset, as after a crash
    before the Kafka commit): no trigger, plan, timeline event, assertion or label event is added."""
    tables = ("case_triggers", "label_sim_plan", "label_sim_done", "cm_case_events", "ls_assertions")

    def state(conn) -> dict:
        out = {
            t: conn.execute(f"SELECT count(*) FROM {t} WHERE platform_run_id = %s", (lane.run_id,)).fetchone()[0]
            for t in tables
        }
        for cls in (CaseTrigger, LabelStore):
            out[cls.__name__] = conn.execute(
                "SELECT count(*) FROM worker_outbox WHERE consumer_group = %s", (lane.group(cls),)
            ).fetchone()[0]
        return out

    with db.connect(h, autocommit=True) as conn:
        before = state(conn)
        for cls in (CaseTrigger, LabelSimulation):
            conn.execute("DELETE FROM worker_offsets WHERE consumer_group = %s", (lane.group(cls),))
    counters = lane.run(h, CaseTrigger, LabelSimulation, extra=plane_extra(lane))
    with db.connect(h) as conn:
        assert state(conn) == before
    assert counters["CaseTrigger"]["retriggers_skipped"] == before["case_triggers"]
    assert counters["CaseTrigger"].get("triggers", 0) == 0 and counters["LabelSimulation"]["chains_read"] > 0


@pytest.mark.parametrize("table", summary.APPEND_ONLY_TABLES)
def test_the_database_refuses_to_rewrite_case_and_label_truth(h, lane, table):
    """The triggers, as the owner (the application role is refused earlier, by privileges: test_roles)."""
    with db.connect(h, role=db.OWNER, autocommit=True) as conn:
        column = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
            " ORDER BY ordinal_position LIMIT 1",
            (table,),
        ).fetchone()[0]
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, f"{table} has no rows to refuse"
        for sql in (f"UPDATE {table} SET {column} = {column}", f"DELETE FROM {table}", f"TRUNCATE {table} CASCADE"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(sql)


def test_the_granted_writers_are_the_plane_components(h, stack):
    with db.connect(h) as conn:
        writers = {w for w, _ in label_store.granted(conn)}
    assert writers == {h.get("COMPONENT_ID_CM"), h.get("COMPONENT_ID_LABEL_SIMULATION")}


T0 = datetime(2018, 4, 1, tzinfo=UTC)
claims = st.lists(
    st.tuples(
        st.integers(0, 5),
        st.sampled_from(("INVESTIGATOR", "CHARGEBACK")),
        st.sampled_from(("FRAUD", "LEGIT")),
        st.integers(0, 20),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(claims=claims, probes=st.lists(st.integers(-1, 21), min_size=1, max_size=6))
def test_as_of_never_returns_an_assertion_observed_after_t(h, stack, claims, probes):
    """Random assertions through LS; at every probe time the as-of answer is, per subject, the latest
    assertion observed by then (source precedence on ties) — never one observed later."""
    n = uuid.uuid4().int  # not `random`: hypothesis seeds it alike for every example
    run_id = f"platform_2099{n % 10**4:04d}T{n // 10**4 % 10**6:06d}Z"
    writer = {"INVESTIGATOR": h.get("COMPONENT_ID_CM"), "CHARGEBACK": h.get("COMPONENT_ID_LABEL_SIMULATION")}
    made = []
    with db.connect(h, autocommit=True) as conn:
        with conn.transaction():
            for subject, source, label, day in claims:
                a = _assertion(h, run_id, f"evt_{subject}", source, T0 + timedelta(days=day), label)
                result = label_store.append(h, conn, writer[source], [a], "test.ls.as_of")
                assert result.appended + result.duplicates == 1
                if result.appended:  # a repeat of an earlier assertion (same id) is that assertion
                    made.append(a)
        for probe in probes:
            at = T0 + timedelta(days=probe, hours=12)
            got = labels.as_of(conn, run_id, at)
            known = [a for a in made if a.observed_at <= at]
            want = {}
            for a in known:  # latest observed; ties: the later source in the precedence list, then the later append
                best = want.get(a.subject["event_id"])
                rank = (a.observed_at, labels.SOURCE_PRECEDENCE.index(a.source))
                if best is None or rank >= (best.observed_at, labels.SOURCE_PRECEDENCE.index(best.source)):
                    want[a.subject["event_id"]] = a
            assert all(v["observed_at"] <= at for v in got.values())
            assert {e: (v["label"], v["source"], v["observed_at"]) for e, v in got.items()} == {
                e: (a.label, a.source, a.observed_at) for e, a in want.items()
            }


def test_the_trigger_and_investigation_policy_is_deterministic(h):
    policy = load_case_policy(h)
    ids_ = [f"evt_{i}" for i in range(20000)]
    sampled = [e for e in ids_ if policy.trigger_reason("APPROVE", e)]
    assert round(draw("qc", "evt_0"), 12) == 0.120720861448  # pinned: the same event draws the same in any process
    assert 0.5 * policy.approve_sample_rate < len(sampled) / len(ids_) < 1.5 * policy.approve_sample_rate
    assert policy.trigger_reason("DECLINE", "x") == "DECISION_DECLINE" and policy.trigger_reason("STEP_UP", "x") is None
    work = [policy.investigation(e, True, T0) for e in ids_[:5000]]
    wrong = sum(w.label == "LEGIT" for w in work) / len(work)
    assert abs(wrong - policy.error_rate) < 0.01 and all(w.erred == (w.label == "LEGIT") for w in work)
    lo, hi = policy.delay_hours
    assert all(T0 + timedelta(hours=lo) <= w.disposed_at <= T0 + timedelta(hours=hi) for w in work)
    assert all(T0 < w.assigned_at <= w.disposed_at for w in work)
    cb = [policy.chargeback_at(e, T0) for e in ids_[:1000]]
    lo, hi = policy.chargeback_delay_days
    assert all(c is not None and T0 + timedelta(days=lo) <= c <= T0 + timedelta(days=hi) for c in cb)


def test_a_run_without_oracle_truth_fails_closed(h, stack):
    from fp_platform.contracts.oracle_truth import TruthMissing, oracle_frauds

    with pytest.raises(TruthMissing, match="no oracle truth"):
        oracle_frauds(h, S3ObjectStore(h), unique_run_id())


def test_the_investigator_cli_lists_shows_and_answers_as_of(h, lane, capsys):
    from fp_platform.cli import main as cli

    assert cli(["cases", "list", lane.run_id, "--status", "CLOSED", "--limit", "3"]) == 0
    listed = capsys.readouterr().out
    assert "CLOSED" in listed and ("DECISION_" in listed or "QC_SAMPLE" in listed)
    with db.connect(h) as conn:
        case_id = conn.execute(
            "SELECT case_id FROM cm_cases WHERE platform_run_id = %s AND status = 'CLOSED' ORDER BY opened_at LIMIT 1",
            (lane.run_id,),
        ).fetchone()[0]
        clock = summary.world_clock(conn, lane.run_id)
        known = labels.as_of(conn, lane.run_id, clock)
    assert cli(["cases", "show", case_id]) == 0
    shown = capsys.readouterr().out
    assert all(kind in shown for kind in ("CASE_OPENED", "EVIDENCE_ATTACHED", "ASSIGNED", "DISPOSITION", "CLOSED"))
    assert cli(["labels", lane.run_id, "--at", clock.isoformat()]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {x["event_id"]: x["label"] for x in lines} == {e: v["label"] for e, v in known.items()} and lines
    assert cli(["labels", lane.run_id, "--at", "yesterday"]) == 2
    assert cli(["cases", "show", "case_none"]) == 1

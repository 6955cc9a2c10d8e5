"""The decision lane on the real stack: one decision, intent, outcome and audit chain per admitted
traffic event; a replay (DF's checkpoint reset) acts nothing twice; a missing-context drill gives
explicit degrades and a posture change; the database refuses to rewrite the lane's truth."""

from __future__ import annotations

import io

import orjson
import psycopg
import pyarrow.parquet as pq
import pytest

from fp_platform.benches.rtdl import world_envelopes
from fp_platform.contracts import bundle_registry, ids
from fp_platform.contracts.features import FEATURE_NAMES, FEATURE_VERSION
from fp_platform.rtdl import decision_lane
from fp_platform.rtdl.action_layer import ActionLayer
from fp_platform.rtdl.decision_context import EventContext
from fp_platform.rtdl.decision_fabric import Scored, batch_scored, decide
from fp_platform.rtdl.decision_log import DecisionLogAudit
from fp_platform.rtdl.degrade_ladder import ladder_posture
from fp_platform.rtdl.policy import load_policy
from fp_platform.rtdl.processor import DecisionProcessor
from fp_platform.substrate import bundle_models, db
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform_tests.support import Lane, smoke_world, start_lane, unique_run_id


@pytest.fixture(scope="module")
def items(h):
    return world_envelopes(h, "platform_20000101T000000Z", smoke_world(days=7))


@pytest.fixture(scope="module")
def lane(h, stack, items) -> Lane:
    return start_lane(h, items)


def test_every_admitted_event_has_one_decision_outcome_and_chain(h, lane):
    with db.connect(h) as conn:
        c = decision_lane.counts(conn, lane.run_id)
        doc = decision_lane.decision_summary(conn, lane.run_id)
        audit = decision_lane.audit_summary(h, conn, S3ObjectStore(h), lane.run_id)
        rows = conn.execute(
            "SELECT decision_id, event_id, decision, degrade_reasons, binding_status FROM df_decisions"
            " WHERE platform_run_id = %s",
            (lane.run_id,),
        ).fetchall()
        lineage = conn.execute(
            "SELECT lineage FROM dla_chains WHERE platform_run_id = %s LIMIT 1", (lane.run_id,)
        ).fetchone()[0]
    assert c == {
        "admitted_traffic": lane.traffic,
        "decisions": lane.traffic,
        "outcomes": lane.traffic,
        "chains": lane.traffic,
    }
    assert all(d == ids.decision_id(lane.run_id, e) for d, e, *_ in rows)
    assert doc["degraded_without_reason"] == 0 and doc["decisions_not_admitted"] == 0
    assert {b["bundle_id"] for b in doc["bundles"]} == {h.get("MPR_BOOTSTRAP_BUNDLE_ID")}
    assert len(doc["by_decision"]) > 1, doc["by_decision"]  # the rules separate events, not one answer for all
    # every binding READY (context streamed before traffic, all consumed first): no degrade on any decision
    assert {s for *_, s in rows} == {"READY"} and not any(r for *_, r, _ in rows)
    assert audit["lineage_unresolved_total"] == 0 and audit["audit_events_unsent"] == 0
    assert audit["segment_records"] == audit["audit_records"] == 3 * lane.traffic
    assert set(lineage) == {"admitted_event", "ig_receipt_id", "decision", "intent", "outcome"}
    assert doc["posture_events"][0]["posture"] == "NORMAL"


def test_audit_segments_on_s3_hold_the_records(h, lane):
    store = S3ObjectStore(h)
    with db.connect(h) as conn:
        keys = [
            k
            for (k,) in conn.execute(
                "SELECT object_key FROM dla_audit_segments WHERE platform_run_id = %s", (lane.run_id,)
            )
        ]
    ids_on_s3 = []
    for key in keys:
        ids_on_s3 += (
            pq.read_table(io.BytesIO(store.get(h.get("S3_ARCHIVE_BUCKET"), key)), columns=["event_id"])
            .column("event_id")
            .to_pylist()
        )
    assert len(ids_on_s3) == len(set(ids_on_s3)) == 3 * lane.traffic


def test_replaying_admitted_events_acts_nothing_twice(h, lane):
    """Reset the decision processor's checkpoint: it rebuilds its state from the log, DF re-sends the stored
    decisions and intents, AL prevents every duplicate, DLA records the redeliveries and keeps one chain per
    decision."""
    with db.connect(h, autocommit=True) as conn:
        before = decision_lane.counts(conn, lane.run_id)
        vectors = conn.execute(
            "SELECT event_id, features FROM ofp_features WHERE platform_run_id = %s ORDER BY event_id", (lane.run_id,)
        ).fetchall()
        conn.execute("DELETE FROM worker_offsets WHERE consumer_group = %s", (lane.group(DecisionProcessor),))
    counters = lane.run(h, DecisionProcessor, ActionLayer, DecisionLogAudit)
    assert counters["DecisionFabric"]["decisions_resent"] == lane.traffic
    assert counters["DecisionFabric"].get("decisions", 0) == 0
    assert counters["ActionLayer"]["duplicates_prevented"] == lane.traffic
    assert counters["ActionLayer"].get("outcomes", 0) == 0
    with db.connect(h) as conn:
        assert decision_lane.counts(conn, lane.run_id) == before
        actions = decision_lane.action_summary(conn, lane.run_id)
        audit = decision_lane.audit_summary(h, conn, S3ObjectStore(h), lane.run_id)
    assert actions["duplicates_prevented"] == lane.traffic and actions["decisions_acted_twice"] == 0
    assert actions["intent_deliveries"] - actions["intents"] == actions["duplicates_prevented"]
    assert audit["chains"] == lane.traffic and audit["lineage_unresolved_total"] == 0
    assert audit["redeliveries"] == 2 * lane.traffic and audit["redeliveries_conflicting"] == 0
    # The rebuilt state leaves every vector as it was. (Not its revision: a revision counts the late records that
    # moved a vector while it was rebuilt, and how many did depends on the order the partitions were read in.)
    with db.connect(h) as conn:
        assert (
            conn.execute(
                "SELECT event_id, features FROM ofp_features WHERE platform_run_id = %s ORDER BY event_id",
                (lane.run_id,),
            ).fetchall()
            == vectors
        )


@pytest.mark.parametrize("table", decision_lane.APPEND_ONLY_TABLES)
def test_the_database_refuses_to_rewrite_decision_lane_truth(h, lane, table):
    """The triggers, as the owner (the application role is refused earlier, by privileges: test_roles)."""
    with db.connect(h, role=db.OWNER, autocommit=True) as conn:
        column = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
            " ORDER BY ordinal_position LIMIT 1",
            (table,),
        ).fetchone()[0]
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, f"{table} has no rows to refuse"
        for sql in (f"UPDATE {table} SET {column} = {column}", f"DELETE FROM {table}", f"TRUNCATE {table}"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(sql)


def test_missing_context_drill_degrades_explicitly_and_moves_the_posture(h, stack, items):
    """Drop the arrival entities of every third flow: those decisions say so and are never APPROVEd;
    DL's join-miss rate crosses the policy threshold and the posture change is recorded with its reason."""

    def dropped(env) -> bool:
        flow = int(env["payload"]["flow_id"].removeprefix("flow_"))
        return env["event_class"] == "context.arrival_entities" and flow % 3 == 0

    lane = start_lane(h, items[: len(items) // 2], drop=dropped)
    with db.connect(h) as conn:
        doc = decision_lane.decision_summary(conn, lane.run_id)
        rows = conn.execute(
            "SELECT decision, degrade_reasons, binding_status FROM df_decisions WHERE platform_run_id = %s",
            (lane.run_id,),
        ).fetchall()
        chains = conn.execute(
            "SELECT count(*) FILTER (WHERE degraded), count(*) FROM dla_chains WHERE platform_run_id = %s",
            (lane.run_id,),
        ).fetchone()
    degraded = [(d, r) for d, r, s in rows if s == "MISSING_CONTEXT"]
    assert 0.2 * len(rows) < len(degraded) < 0.5 * len(rows)
    assert all(any("arrival_entities missing" in x for x in r) and d != "APPROVE" for d, r in degraded)
    assert doc["degraded_without_reason"] == 0 and doc["decisions"] == lane.traffic
    assert chains[0] >= len(degraded) and chains[1] == lane.traffic
    moved = [p for p in doc["posture_events"] if p["posture"] != "NORMAL"]
    assert moved and any("join_miss_rate" in r for r in moved[0]["reasons"]), doc["posture_events"]
    assert doc["by_posture"].keys() - {"NORMAL"}, "no decision was made under the degraded posture"


# --- pure policy logic ----------------------------------------------------------------------------


def _ctx(features: dict | None = None, status: str | None = "READY") -> EventContext:
    return EventContext(
        status,
        () if status == "READY" else ("arrival_entities missing",),
        FEATURE_VERSION if features is not None else None,
        features,
    )


def _vector(**over) -> dict:
    return {
        **{n: 0 for n in FEATURE_NAMES},
        "customer_avg_amount_30d": 50.0,
        "customer_avg_amount_1d": 50.0,
        "terminal_labels_visible": 0,
        "context_complete": True,
        **over,
    }


def _bundle(model_ref: str | None = None) -> bundle_registry.Bundle:
    return bundle_registry.Bundle(
        "b",
        "1",
        "rev",
        model_ref,
        FEATURE_VERSION,
        FEATURE_NAMES,
        {"STEP_UP": 0.3, "REVIEW": 0.5, "DECLINE": 0.8},
        1,
        "PROMOTED",
    )


def test_the_ladder_follows_the_policy_thresholds(h):
    policy = load_policy(h)
    base = {
        "registry_resolved": True,
        "model_problem": None,
        "window_events": 400,
        "join_miss_rate": 0.0,
        "feature_miss_rate": 0.0,
    }
    assert ladder_posture(policy, base) == ("NORMAL", [])
    assert ladder_posture(policy, {**base, "join_miss_rate": 0.1})[0] == "DEGRADED_CONTEXT"
    assert ladder_posture(policy, {**base, "join_miss_rate": 0.6})[0] == "RULES_ONLY"
    assert ladder_posture(policy, {**base, "join_miss_rate": 0.6, "window_events": 10})[0] == "NORMAL"
    assert ladder_posture(policy, {**base, "model_problem": "gone"}) == ("RULES_ONLY", ["model: gone"])
    assert ladder_posture(policy, {**base, "registry_resolved": False})[0] == "FAIL_CLOSED"


def test_decide_uses_rules_model_and_degrades_explicitly(h):
    policy = load_policy(h)
    payload = {"amount": 500.0}
    out = decide(policy, _bundle(), "NORMAL", None, None, payload, _ctx(_vector()))
    assert out["decision"] == "DECLINE" and "HIGH_AMOUNT" in out["reason_codes"] and not out["degrade_reasons"]
    calm = decide(policy, _bundle(), "NORMAL", None, None, {"amount": 20.0}, _ctx(_vector()))
    assert calm["decision"] == "APPROVE" and calm["reason_codes"] == ["NO_RULE_FIRED"]
    blind = decide(policy, _bundle(), "NORMAL", None, None, {"amount": 20.0}, _ctx(None, None))
    assert blind["decision"] == "STEP_UP" and len(blind["degrade_reasons"]) == 2
    model = bundle_models.LogisticModel(("terminal_risk_7d",), (10.0,), -5.0)
    scored = decide(
        policy, _bundle("s3://x/m.json"), "NORMAL", model, None, {"amount": 20.0}, _ctx(_vector(terminal_risk_7d=1.0))
    )
    assert scored["score_source"] == "model+rules" and "MODEL_SCORE" in scored["reason_codes"]
    assert scored["score"] > 0.99 and scored["decision"] == "DECLINE"  # sigmoid(10 - 5) beats the rules' 0.55
    gone = decide(
        policy, _bundle("s3://x/m.json"), "RULES_ONLY", None, "cannot load", {"amount": 20.0}, _ctx(_vector())
    )
    assert gone["score_source"] == "rules" and "model: cannot load" in gone["degrade_reasons"]
    closed = decide(policy, _bundle(), "FAIL_CLOSED", None, None, {"amount": 20.0}, _ctx(_vector()))
    assert closed["decision"] == policy.ladder["fail_closed_decision"] and closed["reason_codes"] == ["FAIL_CLOSED"]


def test_a_batch_scored_in_one_model_call_decides_as_event_by_event(h):
    """DF scores a batch's events in one booster call; every decision equals the one-event-at-a-time one,
    and events the model may not score (no vector, posture) are left to `decide` as before."""
    import lightgbm as lgb
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((400, 2))
    booster = lgb.LGBMClassifier(n_estimators=20, verbose=-1).fit(x, (x[:, 0] > 0.5).astype(int)).booster_
    model = bundle_models.BoosterModel(("terminal_risk_7d", "amount"), booster)
    policy, bundle = load_policy(h), _bundle("s3://x/m.json")
    items = [("NORMAL", {"amount": float(a)}, _ctx(_vector(terminal_risk_7d=float(r)))) for r, a in x[:50] * [1, 900]]
    items += [("NORMAL", {"amount": 20.0}, _ctx(None, None)), ("RULES_ONLY", {"amount": 20.0}, _ctx(_vector()))]
    scorers = batch_scored(model, bundle, None, items)
    assert sum(isinstance(s, Scored) for s in scorers) == 50
    for (posture, payload, ctx), scorer in zip(items, scorers, strict=True):
        assert decide(policy, bundle, posture, scorer, None, payload, ctx) == decide(
            policy, bundle, posture, model, None, payload, ctx
        )


def test_df_resolves_a_promoted_model_bundle_and_dl_sees_a_missing_model(h, stack, items):
    """A promoted bundle's model scores DF's decisions; a bundle whose model is gone moves DL to RULES_ONLY.
    The registry is restored to the bootstrap bundle afterwards (append-only: a ROLLED_BACK event)."""
    store = S3ObjectStore(h)
    bucket = h.get("S3_ARTIFACTS_BUCKET")
    tag = unique_run_id()
    model_key = f"tests/models/{tag}/model.json"
    store.put(
        bucket,
        model_key,
        orjson.dumps({"kind": "logistic", "features": ["customer_nb_tx_1d"], "coefficients": [0.5], "intercept": -1.0}),
        write_once=True,
    )
    policy = load_policy(h)
    boot = h.get("MPR_BOOTSTRAP_BUNDLE_ID"), str(policy.bootstrap["bundle_version"])
    try:
        with db.connect(h, autocommit=True) as conn:
            for version, ref in (("good", f"s3://{bucket}/{model_key}"), ("gone", f"s3://{bucket}/tests/none.json")):
                bundle_registry.register(
                    conn,
                    bundle_id=f"test_{tag}",
                    bundle_version=version,
                    policy_rev=policy.policy_rev,
                    model_ref=ref,
                    feature_version=FEATURE_VERSION,
                    feature_list=list(FEATURE_NAMES),
                    thresholds={"STEP_UP": 0.6, "REVIEW": 0.9, "DECLINE": 0.99},
                )
            bundle_registry.activate(
                conn,
                event_id=f"test:{tag}:good",
                event_type="PROMOTED",
                bundle_id=f"test_{tag}",
                bundle_version="good",
                reason="test",
                actor="test",
            )
        lane = start_lane(h, items[: len(items) // 4])
        with db.connect(h, autocommit=True) as conn:
            sources = dict(
                conn.execute(
                    "SELECT score_source, count(*) FROM df_decisions WHERE platform_run_id = %s GROUP BY 1",
                    (lane.run_id,),
                ).fetchall()
            )
            bundle_ids = {
                b
                for (b,) in conn.execute(
                    "SELECT DISTINCT bundle_id FROM df_decisions WHERE platform_run_id = %s", (lane.run_id,)
                )
            }
            bundle_registry.activate(
                conn,
                event_id=f"test:{tag}:gone",
                event_type="PROMOTED",
                bundle_id=f"test_{tag}",
                bundle_version="gone",
                reason="test",
                actor="test",
            )
            DecisionProcessor(h, lane.run_id, group_id=lane.group(DecisionProcessor)).on_start(conn)  # a restart
            posture = conn.execute(
                "SELECT posture, reasons FROM dl_posture_events WHERE platform_run_id = %s ORDER BY seq DESC LIMIT 1",
                (lane.run_id,),
            ).fetchone()
    finally:
        with db.connect(h, autocommit=True) as conn:
            bundle_registry.activate(
                conn,
                event_id=f"test:{tag}:restore",
                event_type="ROLLED_BACK",
                bundle_id=boot[0],
                bundle_version=boot[1],
                reason="test restores the bootstrap bundle",
                actor="test",
            )
    assert bundle_ids == {f"test_{tag}"}
    assert sources.get("model+rules") == lane.traffic, sources
    assert posture[0] == "RULES_ONLY" and any(r.startswith("model: cannot load") for r in posture[1])

"""OFP features (keyed state in the decision processor) equal the handbook's, computed by hand (pandas)
from the raw world data — even when the records reach the processor in a random order (late data
recomputes what it touches) and labels arrive after the vectors were first computed."""

from __future__ import annotations

from datetime import UTC, timedelta

import pandas as pd
import pytest

from fp_platform.benches.rtdl import publish_admitted as publish
from fp_platform.benches.rtdl import world_envelopes as envelopes
from fp_platform.contracts.canonical import payload_hash
from fp_platform.contracts.features import FEATURE_NAMES
from fp_platform.rtdl.processor import DecisionProcessor
from fp_platform.substrate import db
from fp_platform_tests.support import truth, unique_run_id

DELAY = 7


def handbook_features(world) -> pd.DataFrame:
    """The book's customer and terminal features (ch. 3.4), indexed by transaction_id."""
    tx = world["traffic_fraud"].to_pandas()[
        ["transaction_id", "ts_utc", "customer_id", "terminal_id", "amount", "event_id", "flow_id", "card_id"]
    ]
    tx = tx.merge(truth(world).to_pandas()[["transaction_id", "tx_fraud"]], on="transaction_id")
    tx = tx.sort_values(["ts_utc", "transaction_id"], kind="stable")
    tx.index = pd.DatetimeIndex(tx["ts_utc"], name="t")
    parts = []
    for _, g in tx.groupby("customer_id", sort=False):
        g = g.copy()
        for w in (1, 7, 30):
            g[f"customer_nb_tx_{w}d"] = g["amount"].rolling(f"{w}D").count()
            g[f"customer_avg_amount_{w}d"] = g["amount"].rolling(f"{w}D").sum() / g[f"customer_nb_tx_{w}d"]
        parts.append(g)
    tx = pd.concat(parts)
    parts = []
    for _, g in tx.groupby("terminal_id", sort=False):
        g = g.sort_values(["ts_utc", "transaction_id"], kind="stable").copy()  # still time-indexed
        fraud_delay = g["tx_fraud"].rolling(f"{DELAY}D").sum()
        n_delay = g["tx_fraud"].rolling(f"{DELAY}D").count()
        for w in (1, 7, 30):
            n = g["tx_fraud"].rolling(f"{DELAY + w}D").count() - n_delay
            f = g["tx_fraud"].rolling(f"{DELAY + w}D").sum() - fraud_delay
            g[f"terminal_nb_tx_{w}d"] = n
            g[f"terminal_risk_{w}d"] = (f / n).fillna(0)
        parts.append(g)
    return pd.concat(parts).set_index("transaction_id")


def ofp_vectors(h, run_id: str) -> dict[str, dict]:
    with db.connect(h) as conn:
        return dict(
            conn.execute("SELECT event_id, features FROM ofp_features WHERE platform_run_id = %s", (run_id,)).fetchall()
        )


def process(h, run_id: str) -> None:
    """Run the decision processor of the test's group until the topics have nothing more for it."""
    DecisionProcessor(h, run_id, group_id=f"test.ofp.{run_id}").run(until_idle_s=3, install_signals=False)


def label_items(h, run_id: str, labels: list[tuple[int, bool, object, object]]) -> list[tuple[str, dict]]:
    """LS's label events (transaction_id, is_fraud, effective_at, observed_at) as admitted records."""
    topic = h.topic("FP_BUS_LABELS_EVENTS_V1").name
    out = []
    for tid, fraud, effective, observed in labels:
        payload = {
            "transaction_id": tid,
            "label": "FRAUD" if fraud else "LEGIT",
            "merchant_id": f"tx_{tid}",
            "effective_at": effective.isoformat().replace("+00:00", "Z"),
            "observed_at": observed.isoformat().replace("+00:00", "Z"),
        }
        out.append(
            (
                topic,
                {
                    "event_id": f"label_{run_id}_{tid}",
                    "event_class": "labels.assertion",
                    "schema_version": "v1",
                    "ts_utc": payload["observed_at"],
                    "pins": {"platform_run_id": run_id},
                    "producer": "test",
                    "payload": payload,
                    "payload_hash": payload_hash(payload),
                },
            )
        )
    return out


def utc(ts) -> object:
    return ts.to_pydatetime().replace(tzinfo=UTC) if ts.tzinfo is None else ts.to_pydatetime()


@pytest.fixture(scope="module")
def ofp_run(h, stack, world):
    """The processor fed the smoke world's traffic and arrival entities in a random order."""
    run_id = unique_run_id()
    items = [
        (t, e)
        for t, e in envelopes(h, run_id, world)
        if e["event_class"] in ("traffic.fraud", "context.arrival_entities")
    ]
    publish(h, run_id, items, shuffle_seed=7)
    process(h, run_id)
    return run_id


def test_features_equal_the_handbook_whatever_the_arrival_order(h, world, ofp_run):
    expected = handbook_features(world)
    labels = [
        (int(tid), bool(fraud), utc(ts), utc(ts) + timedelta(days=DELAY))
        for tid, fraud, ts in zip(expected.index, expected["tx_fraud"], expected["ts_utc"], strict=True)
    ]
    before = ofp_vectors(h, ofp_run)
    assert len(before) == len(expected)
    assert all(v["terminal_labels_visible"] == 0 and v["terminal_risk_30d"] == 0 for v in before.values())
    publish(h, ofp_run, label_items(h, ofp_run, labels))  # observed exactly 7 days after: the book's view
    process(h, ofp_run)
    got = ofp_vectors(h, ofp_run)
    assert got != before
    by_event = expected.set_index("event_id")
    mismatches = []
    for event_id, vec in got.items():
        row = by_event.loc[event_id]
        for name in FEATURE_NAMES[:12]:
            if abs(float(vec[name]) - float(row[name])) > 1e-9:
                mismatches.append((event_id, name, vec[name], row[name]))
    assert not mismatches, mismatches[:5]
    assert sum(v["terminal_risk_30d"] > 0 for v in got.values()) > 0  # the smoke world has compromised terminals


def test_new_device_and_ip_follow_event_time(h, world, ofp_run):
    ent = world["arrival_entities"].to_pandas().sort_values(["ts_utc", "flow_id"], kind="stable")
    ent["new_device"] = ent.groupby(["card_id", "device_id"]).cumcount() == 0
    ent["new_ip"] = ent.groupby(["card_id", "ip"]).cumcount() == 0
    flows = world["traffic_fraud"].to_pandas().set_index("flow_id")["event_id"]
    got = ofp_vectors(h, ofp_run)
    for _, r in ent.iterrows():
        vec = got[flows[r["flow_id"]]]
        assert vec["context_complete"] is True
        assert (vec["card_new_device"], vec["card_new_ip"]) == (r["new_device"], r["new_ip"]), r["flow_id"]
    assert 0 < sum(v["card_new_device"] for v in got.values()) < len(got)


def test_risk_counts_only_labels_observed_by_event_time(h, stack, world):
    """Labels observed 10 days after the transaction: a 7-day-delayed window sees only the older ones."""
    run_id = unique_run_id()
    items = [(t, e) for t, e in envelopes(h, run_id, world) if e["event_class"] == "traffic.fraud"]
    publish(h, run_id, items)
    process(h, run_id)
    tx = (
        world["traffic_fraud"]
        .to_pandas()
        .merge(truth(world).to_pandas()[["transaction_id", "tx_fraud"]], on="transaction_id")
    )
    late = timedelta(days=10)
    labels = [(int(r.transaction_id), bool(r.tx_fraud), utc(r.ts_utc), utc(r.ts_utc) + late) for r in tx.itertuples()]
    publish(h, run_id, label_items(h, run_id, labels))
    process(h, run_id)
    got = ofp_vectors(h, run_id)
    risky = tx[tx.tx_fraud == 1].terminal_id.unique()
    sample = tx[tx.terminal_id.isin(risky)].sort_values("ts_utc").iloc[::7].head(60)
    assert len(sample) > 10
    for r in sample.itertuples():
        same = tx[tx.terminal_id == r.terminal_id]
        for w in (1, 7, 30):
            window = same[
                (same.ts_utc > r.ts_utc - timedelta(days=DELAY + w)) & (same.ts_utc <= r.ts_utc - timedelta(days=DELAY))
            ]
            seen_fraud = window[(window.tx_fraud == 1) & (window.ts_utc + late <= r.ts_utc)]
            want = len(seen_fraud) / len(window) if len(window) else 0.0
            vec = got[r.event_id]
            assert vec[f"terminal_nb_tx_{w}d"] == len(window)
            assert abs(vec[f"terminal_risk_{w}d"] - want) < 1e-12, (r.event_id, w)


@pytest.mark.unit
def test_a_batch_of_labels_alone_still_has_writes():
    """The processor writes OFP when it holds vectors *or* labels: labels that moved no vector are not left
    in memory while the batch's offsets commit."""
    from fp_platform.rtdl.online_features import Ofp

    ofp = Ofp("platform_20000101T000000Z")
    assert not ofp.holds_writes()
    ofp.on_label(1, True, "2018-04-01T00:00:00Z", "2018-04-02T00:00:00Z", ("fp.bus.labels.events.v1", 0, 7))
    assert not ofp.dirty and ofp.holds_writes()

"""OFP features equal the handbook's, computed by hand (pandas) from the raw world data — even when
the records reach OFP in a random order (late data recomputes what it touches)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from fp_platform.contracts.features import FEATURE_NAMES
from fp_platform.rtdl import ofp
from fp_platform.rtdl.bench import publish_admitted as publish
from fp_platform.rtdl.bench import world_envelopes as envelopes
from fp_platform.rtdl.ofp import OfpProjector
from fp_platform.substrate import db
from fp_platform_tests.control.conftest import unique_run_id
from fp_platform_tests.rtdl.conftest import truth

DELAY = 7


def handbook_features(world) -> pd.DataFrame:
    """The book's customer and terminal features (ch. 3.4), indexed by transaction_id."""
    tx = world["traffic_fraud"].to_pandas()[["transaction_id", "ts_utc", "customer_id", "terminal_id", "amount",
                                             "event_id", "flow_id", "card_id"]]
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
        return dict(conn.execute("SELECT event_id, features FROM ofp_features WHERE platform_run_id = %s",
                                 (run_id,)).fetchall())


@pytest.fixture(scope="module")
def ofp_run(h, stack, world):
    """OFP fed the smoke world's traffic and arrival entities in a random order."""
    run_id = unique_run_id()
    items = [(t, e) for t, e in envelopes(h, run_id, world)
             if e["event_class"] in ("traffic.fraud", "context.arrival_entities")]
    publish(h, run_id, items, shuffle_seed=7)
    OfpProjector(h, run_id, group_id=f"test.ofp.{run_id}").run(until_idle_s=3, install_signals=False)
    return run_id


def test_features_equal_the_handbook_whatever_the_arrival_order(h, world, ofp_run):
    expected = handbook_features(world)
    labels = [(int(tid), bool(fraud), ts.to_pydatetime(), ts.to_pydatetime() + timedelta(days=DELAY), "test", 0, i)
              for i, (tid, fraud, ts) in enumerate(zip(expected.index, expected["tx_fraud"], expected["ts_utc"],
                                                       strict=True))]
    before = ofp_vectors(h, ofp_run)
    assert len(before) == len(expected)
    assert all(v["terminal_labels_visible"] == 0 and v["terminal_risk_30d"] == 0 for v in before.values())
    with db.connect(h) as conn, conn.transaction():
        changed = ofp.record_labels(conn, ofp_run, labels)  # labels observed exactly 7 days after: the book's view
    assert changed > 0
    got = ofp_vectors(h, ofp_run)
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


def test_risk_counts_only_labels_observed_by_event_time(h, world):
    """Labels observed 10 days after the transaction: a 7-day-delayed window sees only the older ones."""
    run_id = unique_run_id()
    items = [(t, e) for t, e in envelopes(h, run_id, world) if e["event_class"] == "traffic.fraud"]
    publish(h, run_id, items)
    OfpProjector(h, run_id, group_id=f"test.ofp.{run_id}").run(until_idle_s=3, install_signals=False)
    tx = world["traffic_fraud"].to_pandas().merge(truth(world).to_pandas()[["transaction_id", "tx_fraud"]],
                                                  on="transaction_id")
    late = timedelta(days=10)
    labels = [(int(r.transaction_id), bool(r.tx_fraud), r.ts_utc.to_pydatetime(), r.ts_utc.to_pydatetime() + late,
               "test", 0, i) for i, r in enumerate(tx.itertuples())]
    with db.connect(h) as conn, conn.transaction():
        ofp.record_labels(conn, run_id, labels)
    got = ofp_vectors(h, run_id)
    risky = tx[tx.tx_fraud == 1].terminal_id.unique()
    sample = tx[tx.terminal_id.isin(risky)].sort_values("ts_utc").iloc[::7].head(60)
    assert len(sample) > 10
    for r in sample.itertuples():
        same = tx[tx.terminal_id == r.terminal_id]
        for w in (1, 7, 30):
            window = same[(same.ts_utc > r.ts_utc - timedelta(days=DELAY + w))
                          & (same.ts_utc <= r.ts_utc - timedelta(days=DELAY))]
            seen_fraud = window[(window.tx_fraud == 1) & (window.ts_utc + late <= r.ts_utc)]
            want = len(seen_fraud) / len(window) if len(window) else 0.0
            vec = got[r.event_id]
            assert vec[f"terminal_nb_tx_{w}d"] == len(window)
            assert abs(vec[f"terminal_risk_{w}d"] - want) < 1e-12, (r.event_id, w)

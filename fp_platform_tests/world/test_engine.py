"""The world engine's laws (DESIGN.md §6) at smoke scale, and the handbook figures (slow)."""

import hashlib

import numpy as np
import pyarrow.parquet as pq
import pytest

from fp_platform.world import engine


@pytest.fixture(scope="module")
def smoke():
    p = engine.params_for("smoke")
    tx = engine.simulate_transactions(p)
    return p, tx, engine.add_frauds(p, tx)


def test_profiles_are_the_books():
    """Customer 0 and terminal 0 of the book's tables (seeds 0 and 1, same draw order)."""
    p = engine.params_for("handbook")
    c, t = engine.customer_profiles(p), engine.terminal_profiles(p)
    assert c["x"][0] == pytest.approx(54.88135039273247)
    assert c["y"][0] == pytest.approx(71.51893663724195)
    assert c["mean_amount"][0] == pytest.approx(62.262520726806166)
    assert c["std_amount"][0] == pytest.approx(31.131260363403083)
    assert c["mean_nb_tx_per_day"][0] == pytest.approx(2.1795327319875875)
    assert t["x"][0] == pytest.approx(41.7022004702574)


def test_transactions_obey_the_model(smoke):
    p, tx, _ = smoke
    tod = tx["tx_time_seconds"] - tx["tx_time_days"] * engine.DAY_S
    assert ((tod > 0) & (tod < engine.DAY_S)).all()
    assert (tx["amount"] >= 0).all() and np.allclose(tx["amount"], np.round(tx["amount"], 2))
    c, t = engine.customer_profiles(p), engine.terminal_profiles(p)
    dist2 = (c["x"][tx["customer_id"]] - t["x"][tx["terminal_id"]]) ** 2 + (
        c["y"][tx["customer_id"]] - t["y"][tx["terminal_id"]]
    ) ** 2
    assert (dist2 < p.radius**2).all()


def test_fraud_scenarios(smoke):
    p, tx, f = smoke
    s = f["tx_fraud_scenario"]
    assert ((s > 0) == (f["tx_fraud"] == 1)).all()
    assert (tx["amount"][s == 1] > 220).all()
    assert (f["tx_fraud"][tx["amount"] > 220] == 1).all()  # (1) holds unless re-labelled by (2)/(3)
    s3 = s == 3
    # ×5 per compromise; a transaction inside two overlapping compromise windows is ×25 (as in the book)
    ratio = f["amount_fraud"][s3] / np.maximum(tx["amount"][s3], 0.01)
    assert (
        s3.any() and (np.isclose(ratio, 5, rtol=1e-2) | np.isclose(ratio, 25, rtol=1e-2) | (tx["amount"][s3] < 1)).all()
    )
    assert np.array_equal(f["amount_fraud"][~s3], tx["amount"][~s3])
    assert (s == 2).any()


def test_outputs_are_byte_identical_and_truth_is_separate(tmp_path):
    p = engine.params_for("smoke")
    a = engine.write_outputs(p, tmp_path / "a")
    engine.write_outputs(p, tmp_path / "b")
    files = sorted(f.relative_to(tmp_path / "a") for f in (tmp_path / "a").rglob("*") if f.is_file())
    assert files
    for rel in files:
        assert (
            hashlib.sha256((tmp_path / "a" / rel).read_bytes()).digest()
            == hashlib.sha256((tmp_path / "b" / rel).read_bytes()).digest()
        ), rel
    assert a["engine_run_id"] == p.engine_run_id != engine.params_for("smoke", seed=7).engine_run_id
    for output_id in engine.STREAMED_OUTPUTS:
        cols = pq.read_schema(next((tmp_path / "a" / f"output_id={output_id}").glob("*.parquet"))).names
        assert "tx_fraud" not in cols and "tx_fraud_scenario" not in cols
        assert {"event_id", "ts_utc", "flow_id", "merchant_id"} <= set(cols)
    assert not a["outputs"][engine.TRUTH_OUTPUT]["streamed"]


def test_context_precedes_its_transaction(tmp_path):
    tables = engine.build_outputs(engine.params_for("smoke"))
    tx = tables["traffic_fraud"].column("ts_utc").to_numpy()
    arrival = tables["arrival_events"].column("ts_utc").to_numpy()
    entities = tables["arrival_entities"].column("ts_utc").to_numpy()
    anchor = tables["flow_anchor_fraud"].column("ts_utc").to_numpy()
    assert (arrival < entities).all() and (entities < anchor).all() and (anchor < tx).all()
    assert tables["traffic_fraud"].column("flow_id").equals(tables["arrival_entities"].column("flow_id"))


def test_context_signal_strength_marks_fraud_with_new_devices():
    p = engine.params_for("smoke", context_signal_strength=1.0, background_new_device_rate=0.0)
    t = engine.build_outputs(p)
    fraud = t["truth"].column("tx_fraud").to_numpy() == 1
    new_device = np.char.startswith(
        t["arrival_entities"].column("device_id").to_numpy(zero_copy_only=False).astype(str), "dev_x"
    )
    assert np.array_equal(fraud, new_device)


@pytest.mark.slow
def test_handbook_world_reproduces_the_book():
    """The book's dataset exactly (ch. 3.2 prints 1,754,155 transactions; its add_frauds 973 / 9,077 / 4,631
    frauds per scenario): the same seeds, the same draws in the same order."""
    p = engine.params_for("handbook")
    tx = engine.simulate_transactions(p)
    f = engine.add_frauds(p, tx)
    assert len(tx["amount"]) == 1_754_155
    assert int(f["tx_fraud"].sum()) == 14_681
    for scenario, book in ((1, 973), (2, 9_077), (3, 4_631)):
        assert int((f["tx_fraud_scenario"] == scenario).sum()) == book, scenario


def test_other_seeds_draw_other_worlds():
    """Only the book's seed draws the book's streams; another seed draws another world of the same law."""
    a = engine.simulate_transactions(engine.params_for("smoke"))
    b = engine.simulate_transactions(engine.params_for("smoke", seed=7))
    assert not np.array_equal(a["amount"][:50], b["amount"][: min(50, len(b["amount"]))])

"""`fp-platform bench learning`: model quality under the handbook protocol, beside the book's published row.

The `handbook` world (context-signal strength 0: pure handbook parity) is generated in-process; OFS's
DuckDB feature definition (the one P13 runs and parity proves equal to OFP) is computed over its traffic,
card sightings and truth (every fraud known from its own time: the terminal windows already end
DELAY_DAYS before each event, as in the book). The book's split (Le Borgne et al., ch. 3.4): training
from 2018-07-25 for 7 days, 7 days of delay, 7 days of test (a smaller world: its last three whole
weeks); a test day leaves out the cards known compromised by then: a fraud in the training week, or in
the delay days before it (the book's `get_train_test_set`, `learning/selection.book_split`). The model
is the one the learning policy's selection chooses (`learning/selection.py`: prequential folds laid back
from the training week, the choice by validation average precision), fitted on the training week and
scored once on the test week; beside it, the book's random forest (its parameters, its 15 features) on
the same split, as the anchor that says whether this world is the book's. At `seed` 0 the world is the book's
dataset transaction for transaction (`world/engine.py`), so the split has the book's 67,240 training rows (598
frauds) and 58,264 test rows (385 frauds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fp_platform.contracts.bench_line import bench_line
from fp_platform.contracts.features import EVENT_FIELDS, FEATURE_NAMES, with_event_fields
from fp_platform.handles import Handles
from fp_platform.learning import evaluation, models, offline_features, selection
from fp_platform.learning.policy import LearningPolicy, load_policy

BOOK = {"auc_roc": 0.867, "average_precision": 0.658, "card_precision_at_k": 0.287}  # random forest, ch. 3.4
# ch. 5.3's best rows (XGBoost 50 trees / rate 0.3 / depth 3 chosen by validation AP: test AP 0.687 ± 0.01, CP@100
# 0.303; its best AUC 0.875): means over four test weeks laid back from 2018-08-08, not the one test week above
BOOK_BEST = {"auc_roc": 0.875, "average_precision": 0.69, "card_precision_at_k": 0.305}
TRAIN_START = datetime(2018, 7, 25, tzinfo=UTC)
TOPICS = {"traffic": "traffic", "entities": "entities", "labels": "labels"}  # no watermarks: names unused
K = 100


def _tables(scale: str, context_signal_strength: float, seed: int) -> dict[str, pa.Table]:
    """The world's tables; `seed` 0 is the book's seeds, any other changes the world and the profile seeds."""
    from fp_platform.world.engine import build_outputs, params_for  # a bench generates its own world

    seeds = {} if seed == 0 else {"seed": seed, "profile_seed_customers": seed, "profile_seed_terminals": seed + 1}
    out = build_outputs(params_for(scale, context_signal_strength=context_signal_strength, **seeds))
    tx, ent, truth = out["traffic_fraud"], out["arrival_entities"], out["truth"]
    n = tx.num_rows
    fraud = truth.filter(pc.equal(truth["tx_fraud"], 1))
    ts, fraud_ts = (pc.cast(t["ts_utc"], pa.timestamp("us", "UTC")) for t in (tx, fraud))
    zeros = pa.array(np.zeros(n, dtype=np.int32))
    return {
        "tx": pa.table(
            {
                "event_id": tx["event_id"],
                "transaction_id": tx["transaction_id"],
                "flow_id": tx["flow_id"],
                "customer_id": tx["customer_id"],
                "card_id": tx["card_id"],
                "terminal_id": tx["terminal_id"],
                "amount": pc.cast(tx["amount"], pa.float64()),
                "ts": ts,
                "part": zeros,
                "off": pa.array(np.arange(n, dtype=np.int64)),
            }
        ),
        "sightings": pa.table(
            {
                "flow_id": ent["flow_id"],
                "card_id": ent["card_id"],
                "device_id": ent["device_id"],
                "ip": ent["ip"],
                "ts": pc.cast(ent["ts_utc"], pa.timestamp("us", "UTC")),
                "part": pa.array(np.zeros(ent.num_rows, dtype=np.int32)),
                "off": pa.array(np.arange(ent.num_rows, dtype=np.int64)),
            }
        ),
        "labels": pa.table(
            {
                "transaction_id": fraud["transaction_id"],
                "is_fraud": pa.array(np.ones(fraud.num_rows, dtype=bool)),
                "observed_at": fraud_ts,
                "part": pa.array(np.zeros(fraud.num_rows, dtype=np.int32)),
                "off": pa.array(np.arange(fraud.num_rows, dtype=np.int64)),
            }
        ),
        "truth": truth.select(["transaction_id", "tx_fraud"]),
    }


@dataclass(frozen=True)
class Protocol:
    """A generated world featured by OFS's definition, with the truth: every row from the first day the
    prequential folds reach to the end of the book's training week (which starts at `start`), and the test
    week (`selection.book_split` cuts them)."""

    frame: pd.DataFrame
    start: datetime
    rows: int
    ofs_s: float


def protocol_frames(
    policy: LearningPolicy,
    scale: str,
    context_signal_strength: float,
    seed: int,
    history_days: int,
    log: Callable[[str], None],
) -> Protocol:
    """Generate the world, feature the rows the protocol (and `history_days` before its training week) needs."""
    t0 = time.perf_counter()
    tables = _tables(scale, context_signal_strength, seed)
    log(f"{scale} world: {tables['tx'].num_rows} transactions in {time.perf_counter() - t0:.1f}s")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name in ("tx", "sightings", "labels", "truth"):
        con.register(f"{name}_in", tables[name])
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_in")
    con.execute("CREATE TABLE wm (wm_id INTEGER, topic VARCHAR, part INTEGER, next_offset BIGINT)")
    span = policy.train_days + policy.delay_days + policy.test_days
    last_day = datetime.combine(con.execute("SELECT max(ts) FROM tx").fetchone()[0].date(), datetime.min.time(), UTC)
    start = min(TRAIN_START, last_day - timedelta(days=span))  # a smaller world: its last whole weeks
    end = start + timedelta(days=span)
    con.execute(  # the delay days too: a fraud on one makes its card known for the test days after it
        "CREATE TABLE events AS SELECT event_id, NULL::INTEGER AS wm_id FROM tx WHERE ts >= $a AND ts < $b",
        {"a": start - timedelta(days=history_days), "b": end},
    )
    rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
    t1 = time.perf_counter()
    vectors = offline_features.compute(con, TOPICS)
    ofs_s = time.perf_counter() - t1
    log(f"OFS features for {rows} events in {ofs_s:.1f}s")
    con.register("vectors", vectors)
    df = con.sql(
        "SELECT t.ts, t.card_id, t.amount, v.*, coalesce(tr.tx_fraud, 0) AS is_fraud"
        " FROM vectors v JOIN tx t USING (event_id) LEFT JOIN truth tr USING (transaction_id)"
        " ORDER BY t.ts, t.event_id"
    ).df()
    frame = with_event_fields(df.assign(ts=df["ts"].dt.tz_convert("UTC")))
    return Protocol(frame=frame, start=start, rows=rows, ofs_s=ofs_s)


BOOK_RF_PARAMS = {"random_state": 0, "n_jobs": -1}  # ch. 3.4: RandomForestClassifier(random_state=0, n_jobs=-1)
BOOK_FEATURES = tuple(  # the book's 15: amount, weekend, night, the customer and terminal windows
    f for f in (*EVENT_FIELDS, *FEATURE_NAMES) if f in EVENT_FIELDS or f.startswith(("customer_", "terminal_"))
)


def run(h: Handles, scale: str, context_signal_strength: float, seed: int, log: Callable[[str], None]) -> list[dict]:
    """Model selection on the prequential folds, the chosen model on the book's test week, and the book's
    random-forest row as the anchor — all on one generated world (`seed` 0: the book's seeds)."""
    policy = load_policy(h)
    history_days = policy.delay_days + policy.test_days * policy.selection.folds
    frames = protocol_frames(policy, scale, context_signal_strength, seed, history_days, log)
    train, test = selection.book_split(
        frames.frame, frames.start, policy.train_days, policy.delay_days, policy.test_days
    )
    features = policy.features
    log(
        f"train {len(train)} rows ({int(train['is_fraud'].sum())} fraud); test {len(test)} rows"
        f" ({int(test['is_fraud'].sum())} fraud, known compromised cards left out)"
    )
    picked = selection.select(
        frames.frame[frames.frame["ts"] < pd.Timestamp(frames.start) + pd.Timedelta(days=policy.train_days)],
        features,
        frames.start,
        (policy.train_days, policy.delay_days, policy.test_days),
        selection.search_space(policy.selection.space),
        policy.selection.folds,
        K,
        policy.selection.budget_s,
        log,
    )
    t2 = time.perf_counter()
    chosen = selection.fit_chosen(picked, train, features)
    train_s = time.perf_counter() - t2
    cand = evaluation.evaluate(test, chosen.scores(models.matrix(test, features)), K)
    anchor_model = models.fit("random_forest", BOOK_RF_PARAMS, *_xy(train, BOOK_FEATURES), BOOK_FEATURES)
    anchor = evaluation.evaluate(test, anchor_model.scores(models.matrix(test, BOOK_FEATURES)), K)
    log(f"chosen {picked.chosen.name}: test {cand}; book's random forest on the book's features: {anchor}")
    params = {
        "scale": scale,
        "seed": seed,
        "context_signal_strength": context_signal_strength,
        "train_start": frames.start.date().isoformat(),
        "protocol_days": [policy.train_days, policy.delay_days, policy.test_days],
        "features": list(features),
        "chosen": picked.chosen.name,
        "folds": picked.folds,
        "validation": [
            {k: r[k] for k in ("trial", "reached", "average_precision_mean", "average_precision_std", "fit_s")}
            for r in picked.table()
        ],
        "train_rows": len(train),
        "test_rows": len(test),
        "book_random_forest_here": anchor,
        "book_best": BOOK_BEST,
        "policy_rev": policy.policy_rev,
    }
    book = "book: random forest (Le Borgne et al. ch. 3.4)"
    return [
        bench_line("learning", "ofs_rows_per_s", round(frames.rows / frames.ofs_s, 1), "rows/s", params),
        bench_line("learning", "mf_selection_s", round(picked.seconds, 1), "s", params, higher_is_better=False),
        bench_line("learning", "mf_train_s", round(train_s, 2), "s", params, higher_is_better=False),
        *(
            bench_line("learning", f"mf_{m}", round(cand[k], 4), "", params, book, BOOK[k])
            for m, k in (
                ("auc_roc", "auc_roc"),
                ("average_precision", "average_precision"),
                ("card_precision_at_100", "card_precision_at_k"),
            )
        ),
        *(
            bench_line("learning", f"book_rf_{m}", round(anchor[k], 4), "", params, book, BOOK[k])
            for m, k in (
                ("auc_roc", "auc_roc"),
                ("average_precision", "average_precision"),
                ("card_precision_at_100", "card_precision_at_k"),
            )
        ),
    ]


def _xy(frame: pd.DataFrame, features: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    return models.matrix(frame, features), frame["is_fraud"].astype(int).to_numpy()

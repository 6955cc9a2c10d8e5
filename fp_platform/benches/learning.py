"""`fp-platform bench learning`: model quality under the handbook protocol, beside the book's published row.

The `handbook` world (context-signal strength 0: pure handbook parity) is generated in-process; OFS's
DuckDB feature definition (the one P13 runs and parity proves equal to OFP) is computed over its traffic,
card sightings and truth (every fraud known from its own time: the terminal windows already end
DELAY_DAYS before each event, as in the book). The book's split (Le Borgne et al., ch. 3.4): training
from 2018-07-25 for 7 days, 7 days of delay, 7 days of test (a smaller world: its last three whole
weeks); a test day leaves out the cards known compromised by then: a fraud in the training week, or in
the delay days before it (the book's `get_train_test_set`). The candidate and baseline are MF's
(the learning policy's LightGBM and logistic regression).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import duckdb
import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fp_platform.contracts.bench_line import bench_line
from fp_platform.contracts.features import with_event_fields
from fp_platform.handles import Handles
from fp_platform.learning import evaluation, model_factory, offline_features
from fp_platform.learning.policy import load_policy

BOOK = {"auc_roc": 0.867, "average_precision": 0.658, "card_precision_at_k": 0.287}  # random forest, ch. 3.4
BOOK_BEST = {"average_precision": 0.69, "card_precision_at_k": 0.305}
TRAIN_START = datetime(2018, 7, 25, tzinfo=UTC)
TOPICS = {"traffic": "traffic", "entities": "entities", "labels": "labels"}  # no watermarks: names unused
K = 100


def _tables(scale: str, context_signal_strength: float) -> dict[str, pa.Table]:
    from fp_platform.world.engine import build_outputs, params_for  # a bench generates its own world

    out = build_outputs(params_for(scale, context_signal_strength=context_signal_strength))
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


def run(h: Handles, scale: str, context_signal_strength: float, log: Callable[[str], None]) -> list[dict]:
    policy = load_policy(h)
    t0 = time.perf_counter()
    tables = _tables(scale, context_signal_strength)
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
    train_end = start + timedelta(days=policy.train_days)
    test_start = train_end + timedelta(days=policy.delay_days)
    test_end = test_start + timedelta(days=policy.test_days)
    con.execute(
        "CREATE TABLE events AS SELECT event_id, NULL::INTEGER AS wm_id FROM tx WHERE (ts >= $a AND ts < $b)"
        " OR (ts >= $c AND ts < $d)",
        {"a": start, "b": train_end, "c": test_start, "d": test_end},
    )
    rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
    t1 = time.perf_counter()
    vectors = offline_features.compute(con, TOPICS)
    ofs_s = time.perf_counter() - t1
    log(f"OFS features for {rows} events in {ofs_s:.1f}s")
    con.register("vectors", vectors)
    df = con.sql(
        """WITH fraud_cards AS (
                        SELECT t.card_id, t.ts FROM tx t JOIN truth USING (transaction_id)
                        WHERE tx_fraud = 1 AND t.ts >= $train_start)
                    SELECT t.ts, t.card_id, t.amount, v.*, coalesce(tr.tx_fraud, 0) AS is_fraud,
                           t.ts < $train_end AS train,
                           EXISTS (SELECT 1 FROM fraud_cards f WHERE f.card_id = t.card_id AND f.ts < $train_end
                                   + INTERVAL 1 DAY * datediff('day', $test_start, t.ts)) AS known
                    FROM vectors v JOIN tx t USING (event_id) LEFT JOIN truth tr USING (transaction_id)
                    ORDER BY t.ts, t.event_id""",
        params={"train_start": start, "train_end": train_end, "test_start": test_start},
    ).df()
    df = with_event_fields(df.assign(ts=df["ts"].dt.tz_convert("UTC")))
    train, test = df[df["train"]], df[~df["train"] & ~df["known"]]
    x_train, x_test, y = (
        model_factory.matrix(train, policy.features),
        model_factory.matrix(test, policy.features),
        train["is_fraud"],
    )
    t2 = time.perf_counter()
    gbm = lgb.LGBMClassifier(**policy.models["candidate"]["params"]).fit(x_train, y.to_numpy())
    train_s = time.perf_counter() - t2
    cand = evaluation.evaluate(test, gbm.predict_proba(x_test)[:, 1], K)
    base = evaluation.evaluate(
        test,
        model_factory.logistic_scores(
            model_factory.fit_logistic(x_train, y.to_numpy(), policy.models["baseline"]["params"]), x_test
        ),
        K,
    )
    log(
        f"train {len(train)} rows ({int(y.sum())} fraud) in {train_s:.1f}s; test {len(test)} rows"
        f" ({int(test['is_fraud'].sum())} fraud); candidate {cand}; logistic baseline {base}"
    )
    params = {
        "scale": scale,
        "context_signal_strength": context_signal_strength,
        "train_start": start.date().isoformat(),
        "protocol_days": [policy.train_days, policy.delay_days, policy.test_days],
        "features": list(policy.features),
        "candidate": policy.models["candidate"]["kind"],
        "train_rows": len(train),
        "test_rows": len(test),
        "logistic_baseline": base,
        "book_best": BOOK_BEST,
        "policy_rev": policy.policy_rev,
    }
    book = "book: random forest (Le Borgne et al. ch. 3.4)"
    return [
        bench_line("learning", "ofs_rows_per_s", round(rows / ofs_s, 1), "rows/s", params),
        bench_line("learning", "mf_train_s", round(train_s, 2), "s", params, higher_is_better=False),
        bench_line("learning", "mf_auc_roc", round(cand["auc_roc"], 4), "", params, book, BOOK["auc_roc"]),
        bench_line(
            "learning",
            "mf_average_precision",
            round(cand["average_precision"], 4),
            "",
            params,
            book,
            BOOK["average_precision"],
        ),
        bench_line(
            "learning",
            "mf_card_precision_at_100",
            round(cand["card_precision_at_k"], 4),
            "",
            params,
            book,
            BOOK["card_precision_at_k"],
        ),
    ]

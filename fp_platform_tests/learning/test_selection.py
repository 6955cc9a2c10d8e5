"""Model selection without the stack: the search space, the book's split and folds, the choice by validation
AP within the time budget, and every model kind served by DF exactly as it was trained."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from fp_platform.learning import models, selection
from fp_platform.substrate.bundle_models import parse_model

pytestmark = pytest.mark.unit
FEATURES = ("signal", "noise")


def _world(days: int = 42, per_day: int = 120, seed: int = 0) -> pd.DataFrame:
    """Transactions whose fraud follows `signal`; cards recur so the known-card rule has work to do."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    start = datetime(2018, 4, 1, tzinfo=UTC)
    ts = [start + timedelta(days=i // per_day, seconds=int(rng.integers(0, 86_400))) for i in range(n)]
    signal = rng.random(n)
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(ts, utc=True),
            "card_id": [f"c{int(c)}" for c in rng.integers(0, 400, n)],
            "signal": signal,
            "noise": rng.random(n),
            "is_fraud": (signal + 0.3 * rng.random(n) > 1.05).astype(int),
        }
    )


def test_the_space_is_every_grid_point_in_order():
    trials = selection.search_space({"lightgbm": {"n_estimators": [10, 20], "verbose": -1}, "logistic": {"C": 1.0}})
    assert [t.params for t in trials] == [
        {"n_estimators": 10, "verbose": -1},
        {"n_estimators": 20, "verbose": -1},
        {"C": 1.0},
    ]


def test_the_book_split_leaves_out_cards_known_by_each_test_day():
    w = _world()
    start = datetime(2018, 4, 8, tzinfo=UTC)
    train, test = selection.book_split(w, start, 7, 7, 7)
    assert train["ts"].min() >= pd.Timestamp(start) and train["ts"].max() < pd.Timestamp(start + timedelta(days=7))
    known = set(train.loc[train["is_fraud"] == 1, "card_id"])
    first_day = test[test["ts"].dt.floor("D") == pd.Timestamp(start + timedelta(days=14))]
    assert not set(first_day["card_id"]) & known
    # a card defrauded on the first delay day is out of the second test day, not of the first
    delay0 = w[(w["ts"].dt.floor("D") == pd.Timestamp(start + timedelta(days=7))) & (w["is_fraud"] == 1)]
    second_day = test[test["ts"].dt.floor("D") == pd.Timestamp(start + timedelta(days=15))]
    assert not set(second_day["card_id"]) & set(delay0["card_id"])


def test_folds_go_back_from_the_final_training_week():
    starts = selection.fold_starts(datetime(2018, 5, 1, tzinfo=UTC), 7, 7, 3)
    assert [s.date().isoformat() for s in starts] == ["2018-04-17", "2018-04-10", "2018-04-03"]


def test_selection_chooses_by_validation_ap_and_stops_at_the_budget():
    w = _world()
    space = selection.search_space(
        {"logistic": {"C": [1.0]}, "lightgbm": {"n_estimators": [30], "num_leaves": [7], "n_jobs": 1, "verbose": -1}}
    )
    logs = []
    picked = selection.select(
        w, FEATURES, datetime(2018, 4, 29, tzinfo=UTC), (7, 7, 7), space, 2, 20, 600.0, logs.append
    )
    assert len(picked.folds) == 2 and all(r.reached and len(r.folds) == 2 for r in picked.results)
    best = max(picked.results, key=lambda r: r.mean("average_precision"))
    assert picked.chosen == best.trial
    none_left = selection.select(w, FEATURES, datetime(2018, 4, 29, tzinfo=UTC), (7, 7, 7), space, 2, 20, 0.0, print)
    assert [r.reached for r in none_left.results] == [True, False]  # the first trial runs, then the budget is spent


@pytest.mark.parametrize(
    "kind,params",
    [
        ("lightgbm", {"n_estimators": 20, "num_leaves": 7, "n_jobs": 1, "verbose": -1}),
        ("random_forest", {"n_estimators": 15, "max_depth": 6, "random_state": 0}),
        ("logistic", {"C": 1.0}),
    ],
)
def test_dfs_model_document_scores_as_the_trained_model(kind, params):
    w = _world(days=10)
    x, y = models.matrix(w, FEATURES), w["is_fraud"].to_numpy()
    x[::17, 1] = np.nan  # a missing value, as DF may serve one
    fitted = models.fit(kind, params, x, y, FEATURES)
    import orjson

    served = parse_model("s3://b/m.json", orjson.dumps(fitted.document()))
    rows = [{f: (None if np.isnan(v) else float(v)) for f, v in zip(FEATURES, r, strict=True)} for r in x[:300]]
    np.testing.assert_allclose(served.score_many(rows), fitted.scores(x[:300]), rtol=1e-6, atol=1e-9)


def test_too_few_usable_folds_is_no_selection():
    w = _world(days=21)  # one fold at most: the folds before the world's start have no rows
    space = selection.search_space({"logistic": {"C": [1.0]}})
    with pytest.raises(selection.NoFold, match="fewer than the 2 a choice needs"):
        selection.select(
            w, FEATURES, datetime(2018, 4, 15, tzinfo=UTC), (7, 7, 7), space, 4, 20, 60.0, print, min_folds=2
        )

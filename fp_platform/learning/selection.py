"""Model selection the way the Fraud Detection Handbook does it (Le Borgne et al., ch. 5): prequential
validation over a declared search space, the choice by mean validation average precision.

A fold is the book's split laid back in time: a training week, the label delay, a validation week whose
days leave out the cards already known compromised (`book_split`). The first fold's validation week is
the final training week, so no fold sees the test week; fold i moves i validation weeks further back.
Every trial (a model kind and one point of its parameter grid) is fitted and scored on every fold; trials
run in the space's order until the time budget is spent (the first always runs), and the ones it did not
reach are reported as such. The chosen trial is the one with the best mean validation average precision.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fp_platform.learning import evaluation
from fp_platform.learning.models import Fitted, fit, matrix

CHOICE_METRIC = "average_precision"


class NoFold(ValueError):
    """No validation fold has data of both classes: the world is too short for the protocol's folds."""


@dataclass(frozen=True)
class Trial:
    """One point of the search space: a model kind and its parameters."""

    kind: str
    params: dict[str, Any]

    @property
    def name(self) -> str:
        return self.kind + "(" + ", ".join(f"{k}={v}" for k, v in sorted(self.params.items())) + ")"


@dataclass
class TrialResult:
    trial: Trial
    folds: list[dict[str, float]] = field(default_factory=list)  # validation metrics per fold
    fit_s: float = 0.0
    reached: bool = False  # False: the time budget ran out before this trial

    def mean(self, metric: str) -> float:
        values = [f[metric] for f in self.folds if not np.isnan(f[metric])]
        return float(np.mean(values)) if values else float("nan")

    def std(self, metric: str) -> float:
        values = [f[metric] for f in self.folds if not np.isnan(f[metric])]
        return float(np.std(values)) if values else float("nan")

    def row(self) -> dict[str, Any]:
        metrics = ("auc_roc", "average_precision", "card_precision_at_k")
        return {
            "trial": self.trial.name,
            "kind": self.trial.kind,
            "params": self.trial.params,
            "reached": self.reached,
            "fit_s": round(self.fit_s, 2),
            **{f"{m}_mean": _finite(self.mean(m)) for m in metrics},
            **{f"{m}_std": _finite(self.std(m)) for m in metrics},
            "folds": self.folds,
        }


def _finite(x: float) -> float | None:
    """Rounded for the evidence, None where there is no value (evidence JSON holds no NaN)."""
    return None if np.isnan(x) else round(x, 4)


@dataclass(frozen=True)
class Selection:
    results: list[TrialResult]
    chosen: Trial
    folds: list[dict[str, Any]]  # each fold's windows and sizes
    seconds: float

    def table(self) -> list[dict[str, Any]]:
        return [r.row() for r in self.results]


def search_space(space: dict[str, dict[str, Any]]) -> list[Trial]:
    """Every point of each kind's grid, in the declared order; a list value is a grid axis, any other value
    is fixed."""
    trials = []
    for kind, grid in space.items():
        axes = {k: v if isinstance(v, list) else [v] for k, v in grid.items()}
        for values in itertools.product(*axes.values()):
            trials.append(Trial(kind, dict(zip(axes, values, strict=True))))
    return trials


def book_split(
    frame: pd.DataFrame, train_start: datetime, train_days: int, delay_days: int, test_days: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The book's `get_train_test_set`: the training week, and each test day without the cards known compromised
    by then — a fraud in the training week, or on a delay day before that test day. `frame` has ts, card_id
    and is_fraud (the truth the split judges with)."""
    day = frame["ts"].dt.floor("D")
    start = pd.Timestamp(train_start).floor("D")
    train_end = start + pd.Timedelta(days=train_days)
    train = frame[(day >= start) & (day < train_end)]
    known = set(train.loc[train["is_fraud"] == 1, "card_id"])
    test_days_out = []
    for d in range(test_days):
        delay_day = train_end + pd.Timedelta(days=d - 1)
        known |= set(frame.loc[(day == delay_day) & (frame["is_fraud"] == 1), "card_id"])
        test_day = train_end + pd.Timedelta(days=delay_days + d)
        test_days_out.append(frame[(day == test_day) & ~frame["card_id"].isin(known)])
    return train, pd.concat(test_days_out) if test_days_out else frame.iloc[:0]


def fold_starts(train_start: datetime, delay_days: int, valid_days: int, n_folds: int) -> list[datetime]:
    """Training starts of the validation folds: the first validates on the final training week."""
    first = train_start - timedelta(days=delay_days + valid_days)
    return [first - timedelta(days=i * valid_days) for i in range(n_folds)]


def select(
    frame: pd.DataFrame,
    features: tuple[str, ...],
    train_start: datetime,
    protocol: tuple[int, int, int],
    space: list[Trial],
    n_folds: int,
    k: int,
    budget_s: float,
    log: Callable[[str], None],
    on_trial: Callable[[TrialResult], None] | None = None,
    min_folds: int = 1,
) -> Selection:
    """Score every trial on every fold (as far as the budget goes); the trial with the best mean validation
    average precision is chosen. `frame` holds every featured row from the oldest fold's training week to the
    final training week, with the truth in is_fraud."""
    train_days, delay_days, valid_days = protocol
    started = time.perf_counter()
    folds = []
    for s in fold_starts(train_start, delay_days, valid_days, n_folds):
        train, valid = book_split(frame, s, train_days, delay_days, valid_days)
        if train["is_fraud"].nunique() < 2 or valid["is_fraud"].nunique() < 2:
            log(f"fold from {s.date()}: too little data of both classes (train {len(train)}, valid {len(valid)})")
            continue
        folds.append(((train, valid), {"train_start": s.date().isoformat(), "train": len(train), "valid": len(valid)}))
    if len(folds) < min_folds:
        raise NoFold(
            f"{len(folds)} of the {n_folds} validation folds have data of both classes, fewer than the {min_folds}"
            " a choice needs (the world is too short)"
        )
    log(f"selection: {len(space)} trials x {len(folds)} folds, budget {budget_s:.0f}s")
    results = [TrialResult(t) for t in space]

    def spent(i: int) -> bool:  # the first trial always runs to the end: a choice exists
        return i > 0 and time.perf_counter() - started > budget_s

    for i, result in enumerate(results):
        if spent(i):
            log(f"selection: budget spent after {i} of {len(space)} trials")
            break
        t0 = time.perf_counter()
        for (train, valid), _ in folds:
            fitted = fit(result.trial.kind, result.trial.params, *_xy(train, features), features)
            result.folds.append(evaluation.evaluate(valid, fitted.scores(matrix(valid, features)), k))
            if spent(i) and len(result.folds) < len(folds):
                break  # a trial cut short by the budget is not compared on fewer folds
        if len(result.folds) < len(folds):
            result.folds = []
            log(f"selection: budget spent during trial {i + 1} of {len(space)}")
            break
        result.fit_s, result.reached = time.perf_counter() - t0, True
        log(
            f"trial {i + 1}/{len(space)} {result.trial.name}: validation AP {result.mean(CHOICE_METRIC):.4f}"
            f" ± {result.std(CHOICE_METRIC):.4f} ({result.fit_s:.1f}s)"
        )
        if on_trial:
            on_trial(result)
    reached = [r for r in results if r.reached and not np.isnan(r.mean(CHOICE_METRIC))]
    if not reached:
        raise ValueError("the time budget allowed no trial")
    chosen = max(reached, key=lambda r: r.mean(CHOICE_METRIC)).trial
    return Selection(results, chosen, [meta for _, meta in folds], time.perf_counter() - started)


def _xy(train: pd.DataFrame, features: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    return matrix(train, features), train["is_fraud"].astype(int).to_numpy()


def fit_chosen(selection: Selection, train: pd.DataFrame, features: tuple[str, ...]) -> Fitted:
    """The chosen trial fitted on the final training week (its truth in is_fraud)."""
    return fit(selection.chosen.kind, selection.chosen.params, *_xy(train, features), features)

"""The run report's learning section: P14's metrics, selection, curves, importance and daily CP@k; P15's outcome."""

from __future__ import annotations

import numpy as np

from fp_platform.learning.evaluation import CURVE_POINTS, curves
from fp_platform.obs_gov.report_html import render

REPORT = {
    "platform_run_id": "platform_X",
    "status": "PASS",
    "scale": "smoke",
    "profile": "local",
    "phases": [{"phase_id": "P11", "name": "CLOSED", "verdict": "PASS", "gates": []}],
    "drills": {},
    "reconciliation": {
        "checks": [],
        "funnel": {"admitted_traffic": 10, "decisions": 10, "cases": 1, "label_assertions": 1},
    },
    "decisions": {"by_decision": {"APPROVE": 10}, "by_binding_status": {"BOUND": 10}, "by_posture": {"NORMAL": 10}},
    "decision_latency": {"p50_ms": 1.0, "p99_ms": 2.0, "bucket_edges_ms": [0, 1, 2], "bucket_counts": [5, 5]},
    "environment_conformance": "PASS",
    "closed_at_utc": "2026-11-30T00:00:00Z",
    "anomalies": {},
    "evidence_root": "s3://b/evidence/runs/platform_X/",
    "evidence_files": ["run_report.json"],
}


def _eval() -> dict:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    scores = {"candidate": y * 0.5 + rng.random(5000), "baseline": rng.random(5000)}
    return {
        "test": {"rows": 5000, "frauds": int(y.sum()), "known_compromised_cards_removed": 3},
        "metrics": {
            "candidate": {"auc_roc": 0.9, "average_precision": 0.7, "card_precision_at_k": 0.3},
            "baseline": {"auc_roc": 0.5, "average_precision": 0.5, "card_precision_at_k": 0.1},
        },
        "metric_floors": {"auc_roc": {"floor": 0.75, "value": 0.9, "passed": True}},
        "selection": {
            "chosen": "lightgbm(max_depth=3)",
            "table": [
                {
                    "trial": "lightgbm(max_depth=3)",
                    "reached": True,
                    "average_precision_mean": 0.71,
                    "average_precision_std": 0.02,
                    "fit_s": 1.5,
                },
                {
                    "trial": "logistic(C=1.0)",
                    "reached": True,
                    "average_precision_mean": 0.61,
                    "average_precision_std": 0.03,
                    "fit_s": 0.5,
                },
            ],
        },
        "curves": {name: curves(y, s) for name, s in scores.items()},
        "feature_importance": {"amount": 0.6, "terminal_risk_7d": 0.4},
        "card_precision_at_k_daily": [0.3, 0.2, 0.4],
        "review_budget_k": 10,
    }


def test_curves_are_thinned_in_order_with_their_ends():
    rng = np.random.default_rng(1)
    y, s = rng.integers(0, 2, 20000), rng.random(20000)
    c = curves(y, s)
    for points in c.values():
        assert 2 < len(points) <= CURVE_POINTS
    assert c["roc"][0] == [0.0, 0.0] and c["roc"][-1] == [1.0, 1.0]
    assert [p[0] for p in c["roc"]] == sorted(p[0] for p in c["roc"])


def test_without_the_learning_lane_the_report_has_no_learning_section():
    assert "<h2>Learning</h2>" not in render(REPORT)


def test_the_learning_section_shows_metrics_selection_plots_and_the_promotion():
    promotion = {
        "promoted": True,
        "candidate": {"bundle_id": "fp_model", "bundle_version": "abc-1"},
        "promotion_rule": {"passed": True, "detail": "precision at the review budget 0.400 vs active 0.300"},
    }
    page = render(REPORT, {"eval": _eval(), "promotion": promotion})
    section = page[page.index("<h2>Learning</h2>") :]
    assert "k = 10 cards a day" in section and "<b>lightgbm(max_depth=3)</b>" in section
    assert "0.7000" in section and "0.71" in section and "logistic(C=1.0)" in section
    assert ">PROMOTED</b> fp_model abc-1" in section and "0.400 vs active 0.300" in section
    assert section.count("<svg") == 3  # curves, importance, daily card precision


def test_before_p15_the_section_says_so():
    page = render(REPORT, {"eval": _eval(), "promotion": None})
    assert "P15 has not run." in page

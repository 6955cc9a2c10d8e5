"""Figures more than one plane draws: MF logs them to MLflow, the run report inlines them as SVG."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def curves_figure(curves: dict[str, dict[str, list[list[float]]]]) -> plt.Figure:
    """ROC and precision-recall curves of each model side by side; `curves` maps a model's name to its
    `roc` (false positive rate, true positive rate) and `pr` (recall, precision) points."""
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4.2))
    for name, c in curves.items():
        roc_ax.plot(*zip(*c["roc"], strict=True), label=name)
        pr_ax.plot(*zip(*c["pr"], strict=True), label=name)
    roc_ax.plot([0, 1], [0, 1], ":", color="grey")
    roc_ax.set(title="ROC (test week)", xlabel="false positive rate", ylabel="true positive rate")
    pr_ax.set(title="Precision-recall (test week)", xlabel="recall", ylabel="precision")
    for ax in (roc_ax, pr_ax):
        ax.legend(loc="best", fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig

"""The run report for people: one self-contained HTML page (inline SVG plots, no external assets)."""

from __future__ import annotations

import html
import io
import json
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fp_platform.substrate import plots  # noqa: E402

COLOURS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "NOT_RUN": "#9a6700"}


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]


def _barh(title: str, items: dict[str, float], xlabel: str, colour: str = "#0969da") -> str:
    labels = list(items)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(labels) + 1.2))
    bars = ax.barh(labels, [items[k] for k in labels], color=colour)
    ax.bar_label(bars, labels=[f"{items[k]:,.0f}" for k in labels], padding=3, fontsize=8)
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_xlabel(xlabel)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def _histogram(title: str, latency: dict[str, Any]) -> str:
    fig, ax = plt.subplots(figsize=(7, 2.8))
    edges, counts = latency["bucket_edges_ms"], latency["bucket_counts"]
    if counts:
        ax.bar(
            edges[:-1],
            counts,
            width=[b - a for a, b in zip(edges[:-1], edges[1:], strict=True)],
            align="edge",
            color="#8250df",
        )
        for q in ("p50_ms", "p99_ms"):
            ax.axvline(latency[q], color="#cf222e" if q == "p99_ms" else "#1a7f37", linestyle="--", linewidth=1)
            ax.annotate(f"{q[:3]} {latency[q]:,.0f} ms", (latency[q], max(counts) * 0.9), fontsize=8)
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_xlabel("ms from IG admission to decision")
    ax.set_ylabel("decisions")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def _curves(curves: dict[str, dict[str, list[list[float]]]]) -> str:
    return _svg(plots.curves_figure(curves))


def _daily(title: str, series: list[float], k: int) -> str:
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.plot(range(1, len(series) + 1), series, marker="o", color="#0969da")
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_xlabel("test day")
    ax.set_ylabel(f"card precision@{k}")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _verdict(v: str) -> str:
    return f'<b style="color:{COLOURS.get(v, "#57606a")}">{html.escape(v)}</b>'


def _learning(learning: dict[str, Any]) -> str:
    """The learning lane's section: P14's metrics against the floors, the selection's validation table, its
    curves, feature importance and daily card precision; P15's promotion outcome."""
    e = html.escape
    ev, promotion = learning["eval"], learning.get("promotion")
    floors = ev.get("metric_floors", {})
    metrics = _table(
        ["model", *ev["metrics"]["candidate"]],
        [[e(name), *(f"{v:.4f}" for v in m.values())] for name, m in ev["metrics"].items()]
        + [["floor", *(f"{floors[k]['floor']:.2f}" if k in floors else "" for k in ev["metrics"]["candidate"])]],
    )
    sel = ev.get("selection", {})
    trials = _table(
        ["trial", "reached", "validation AP mean", "std", "fit s"],
        [
            [
                ("<b>" + e(t["trial"]) + "</b>") if t["trial"] == sel.get("chosen") else e(t["trial"]),
                str(t.get("reached")),
                "" if t.get("average_precision_mean") is None else f"{t['average_precision_mean']:.4f}",
                "" if t.get("average_precision_std") is None else f"{t['average_precision_std']:.4f}",
                f"{t.get('fit_s', 0):.1f}",
            ]
            for t in sel.get("table", [])
        ],
    )
    k = ev.get("review_budget_k", 0)
    plots = [
        p
        for p in (
            _curves(ev["curves"]) if ev.get("curves") else "",
            _barh(
                "Feature importance (candidate)",
                {f: v * 100 for f, v in ev.get("feature_importance", {}).items()},
                "% of importance",
            )
            if ev.get("feature_importance")
            else "",
            _daily("Card precision per test day", ev["card_precision_at_k_daily"], k)
            if ev.get("card_precision_at_k_daily")
            else "",
        )
        if p
    ]
    outcome = (
        "<p>P15 has not run.</p>"
        if promotion is None
        else f"<p>P15: {_verdict('PROMOTED' if promotion.get('promoted') else 'NOT PROMOTED')} "
        f"{e(promotion['candidate']['bundle_id'])} {e(promotion['candidate']['bundle_version'])} — "
        f"{e(promotion['promotion_rule']['detail'])}</p>"
    )
    return (
        f"<h2>Learning</h2><p>test week: {ev['test']['rows']:,} rows, {ev['test']['frauds']:,} frauds"
        f" (known compromised cards left out: {ev['test']['known_compromised_cards_removed']:,}); review budget"
        f" k = {k} cards a day; chosen: <b>{e(str(sel.get('chosen', '')))}</b>"
        f"{' (' + e(sel['skipped']) + ')' if sel.get('skipped') else ''}</p>"
        f"{metrics}{outcome}<h3>Model selection</h3>{trials if sel.get('table') else '<p>No selection ran.</p>'}"
        f'<div class="plots">{"".join(f"<div>{p}</div>" for p in plots)}</div>'
    )


def render(report: dict[str, Any], learning: dict[str, Any] | None = None) -> str:
    """`report` is run_report.json's content; `learning`, once P14 ran: its evaluation report (`eval`) and
    P15's promotion receipt (`promotion`, None before P15)."""
    e = html.escape
    phases = _table(
        ["phase", "name", "verdict", "gates"],
        [
            [
                e(p["phase_id"]),
                e(p["name"]),
                _verdict(p["verdict"]),
                "<br>".join(
                    f"{'✔' if g['passed'] else '✘'} {e(g['asset'])}.{e(g['name'])}: {e(str(g['detail']))[:240]}"
                    for g in p["gates"]
                ),
            ]
            for p in report["phases"]
        ],
    )
    drills = (
        _table(
            ["drill", "injects", "expected", "observed", "verdict"],
            [
                [
                    e(d),
                    e(r.get("injects", "")),
                    e(str(r.get("expected", ""))),
                    e(str(r.get("observed", ""))),
                    _verdict(r["verdict"]) + f"<br><small>{e(r['reason'])}</small>",
                ]
                for d, r in report["drills"].items()
            ],
        )
        if report["drills"]
        else "<p>No drill in this run.</p>"
    )
    recon = _table(
        ["check", "intended", "observed", "holds"],
        [
            [e(c["name"]), e(str(c["intended"])), e(str(c["observed"])), _verdict("PASS" if c["holds"] else "FAIL")]
            for c in report["reconciliation"]["checks"]
        ],
    )
    links = "".join(f'<li><a href="{e(n)}">{e(n)}</a></li>' for n in report["evidence_files"])
    plots = [
        _barh("Event funnel", report["reconciliation"]["funnel"], "events"),
        _barh("Decision mix", report["decisions"]["by_decision"], "decisions", "#1a7f37"),
        _histogram("Decision latency", report["decision_latency"]),
        _barh("Degrade: flow binding status", report["decisions"]["by_binding_status"], "traffic events", "#9a6700"),
        _barh("Degrade: decision posture", report["decisions"]["by_posture"], "decisions", "#bc4c00"),
    ]
    lat = report["decision_latency"]
    hops = e(
        ", ".join(
            f"{hop.replace('_', ' ')} p50 {q['p50_ms']:,.1f} / p99 {q['p99_ms']:,.1f} ms"
            for hop, q in lat.get("hops", {}).items()
        )
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>run {e(report["platform_run_id"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #1f2328; }}
table {{ border-collapse: collapse; margin: 1em 0; width: 100%; font-size: 13px; }}
td, th {{ border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f6f8fa; }} .plots {{ display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }}
.plots svg {{ width: 100%; height: auto; }} .kpi b {{ font-size: 20px; }}
</style></head><body>
<h1>Run {e(report["platform_run_id"])} — {_verdict(report["status"])}</h1>
<p class="kpi">scale <b>{e(str(report["scale"]))}</b> · profile <b>{e(report["profile"])}</b> ·
admitted traffic <b>{report["reconciliation"]["funnel"]["admitted_traffic"]:,}</b> ·
decisions <b>{report["reconciliation"]["funnel"]["decisions"]:,}</b> ·
decision latency p50 <b>{lat["p50_ms"]:,.1f} ms</b> p99 <b>{lat["p99_ms"]:,.1f} ms</b>
({hops}; {lat.get("degraded_share", 0):.1%} degraded, {lat.get("parked_share", 0):.1%} parked) ·
cases <b>{report["reconciliation"]["funnel"]["cases"]:,}</b> ·
labels <b>{report["reconciliation"]["funnel"]["label_assertions"]:,}</b> ·
conformance {_verdict(report["environment_conformance"])} · closed {e(report["closed_at_utc"])}</p>
<h2>Phases</h2>{phases}
<h2>Flow</h2><div class="plots">{"".join(f"<div>{p}</div>" for p in plots)}</div>
<h2>Reconciliation</h2>{recon}
{_learning(learning) if learning else ""}
<h2>Drills</h2>{drills}
<h2>Anomalies</h2><pre>{e(_pretty(report["anomalies"]))}</pre>
<h2>Evidence</h2><p>Relative to <code>{e(report["evidence_root"])}</code>.</p><ul>{links}</ul>
</body></html>
"""


def _pretty(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True)

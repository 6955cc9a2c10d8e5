"""DF in shadow mode (P15): decide a run's scored traffic again with a candidate bundle beside the active one.

`python -m fp_platform.rtdl.shadow score --run-id ID --bundle-id B --bundle-version V
 --baseline-bundle-id A --baseline-bundle-version W --from ISO --to ISO --review-budget K`

Every event DF decided in the window is decided twice more with DF's own `decide`, from what DF logged
with the decision (the event, its flow binding, the OFP vector, the posture): once with the baseline
(the bundle active before the promotion; "active" in the result), once with the candidate. Nothing is
emitted or stored but the shadow evaluation: the decisions the candidate would have changed and each
bundle's card precision at the review budget against the oracle's truth, day by day and over the window.
MPR's promotion rule reads it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from typing import Any

import numpy as np
import orjson
import pandas as pd
import psycopg

from fp_platform.contracts import bundle_registry
from fp_platform.contracts.features import event_values
from fp_platform.contracts.metrics import card_precision_at_k_daily, mean_of_days, review_days
from fp_platform.contracts.oracle_truth import oracle_frauds
from fp_platform.contracts.phases import P15
from fp_platform.handles import Handles, handles
from fp_platform.rtdl.decision_context import EventContext
from fp_platform.rtdl.decision_fabric import batch_scored, decide
from fp_platform.rtdl.policy import Policy, load_policy
from fp_platform.substrate import bundle_models, db
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.job_channel import Log, job_channel
from fp_platform.substrate.object_store import S3ObjectStore

FLAGGED = ("REVIEW", "DECLINE")
EXAMPLES = 10


class ShadowRefused(RuntimeError):
    """The shadow cannot run (no such candidate, a model DF cannot load, no decisions in the window)."""


def _logged(conn: psycopg.Connection, run_id: str, start: str, end: str) -> list[tuple[str, Any, dict[str, Any]]]:
    """(posture, event time, decision payload) of each decision DF made in the window."""
    rows = conn.execute(
        "SELECT posture, event_ts, decision_envelope FROM df_decisions WHERE platform_run_id = %s"
        " AND event_ts >= %s AND event_ts < %s ORDER BY event_ts, event_id",
        (run_id, start, end),
    ).fetchall()
    return [(posture, ts, orjson.loads(env)["payload"]) for posture, ts, env in rows]


def _context(p: dict[str, Any]) -> EventContext:
    binding, features = p["binding"], p["features"]
    return EventContext(binding["status"], tuple(binding["reasons"]), features["feature_version"], features["values"])


def _load(store: S3ObjectStore, bundle: bundle_registry.Bundle) -> Any:
    """The bundle's model as DF loads it (None for a rules-only bundle)."""
    if not bundle.model_ref:
        return None
    try:
        return bundle_models.load_model(store, bundle.model_ref)
    except bundle_models.ModelUnavailable as exc:
        raise ShadowRefused(f"bundle {bundle.bundle_id} {bundle.bundle_version}: {exc}") from None


def shadow_score(
    h: Handles,
    conn: psycopg.Connection,
    store: S3ObjectStore,
    policy: Policy,
    run_id: str,
    candidate: tuple[str, str],
    baseline: tuple[str, str],
    window: tuple[str, str],
    review_budget: int,
    log: Log,
) -> dict[str, Any]:
    cand, active = (bundle_registry.registered_bundle(conn, *b) for b in (candidate, baseline))
    for name, b, found in (("candidate", candidate, cand), ("baseline", baseline, active)):
        if found is None:
            raise ShadowRefused(f"{name} bundle {b[0]} {b[1]} is not registered")
    logged = _logged(conn, run_id, *window)
    if not logged:
        raise ShadowRefused(f"DF decided no event of {run_id} in [{window[0]}, {window[1]})")
    models = {"active": _load(store, active), "candidate": _load(store, cand)}
    log(
        f"shadow: {len(logged)} decisions of {run_id}, active {active.bundle_id} {active.bundle_version},"
        f" candidate {cand.bundle_id} {cand.bundle_version}"
    )
    items = [(posture, event_values(p, ts), _context(p)) for posture, ts, p in logged]
    out: dict[str, list[dict[str, Any]]] = {}
    for name, bundle in (("active", active), ("candidate", cand)):
        scorers = batch_scored(models[name], bundle, None, items)
        out[name] = [
            decide(policy, bundle, posture, scorer, None, event, ctx)
            for (posture, event, ctx), scorer in zip(items, scorers, strict=True)
        ]
    frauds = oracle_frauds(h, store, run_id)
    rows = pd.DataFrame(
        {
            "ts": pd.to_datetime([ts for _, ts, _ in logged], utc=True),
            "card_id": [p["card_id"] for _, _, p in logged],
            "is_fraud": [int(p["transaction_id"] in frauds) for _, _, p in logged],
        }
    )
    changed = Counter(
        f"{a['decision']}->{c['decision']}"
        for a, c in zip(out["active"], out["candidate"], strict=True)
        if a["decision"] != c["decision"]
    )
    examples = [
        {
            "event_id": p["event_id"],
            "transaction_id": p["transaction_id"],
            "active": a["decision"],
            "candidate": c["decision"],
            "active_score": a["score"],
            "candidate_score": c["score"],
        }
        for (_, _, p), a, c in zip(logged, out["active"], out["candidate"], strict=True)
        if a["decision"] != c["decision"]
    ][:EXAMPLES]

    def summary(bundle: bundle_registry.Bundle, decided: list[dict[str, Any]]) -> dict[str, Any]:
        scores = np.array([d["score"] for d in decided])
        flagged = np.array([d["decision"] in FLAGGED for d in decided])
        daily = card_precision_at_k_daily(rows, scores, review_budget)
        return {
            "bundle_id": bundle.bundle_id,
            "bundle_version": bundle.bundle_version,
            "decisions": dict(Counter(d["decision"] for d in decided)),
            "score_sources": dict(Counter(d["score_source"] for d in decided)),
            "precision_at_review_budget": mean_of_days(daily),
            "precision_at_review_budget_daily": daily,  # one per day of the window: the rule pairs them by day
            "flagged": int(flagged.sum()),
            "flagged_precision": float(rows["is_fraud"][flagged].mean()) if flagged.any() else 0.0,
            "frauds_flagged": int(rows["is_fraud"][flagged].sum()),
        }

    return {
        "run_id": run_id,
        "window": {"start": window[0], "end": window[1]},
        "events": len(logged),
        "frauds": int(rows["is_fraud"].sum()),
        "review_budget": review_budget,
        "window_days": review_days(rows),  # the days of the daily lists, in their order
        "active": summary(active, out["active"]),
        "candidate": summary(cand, out["candidate"]),
        "changed_decisions": sum(changed.values()),
        "changed_share": sum(changed.values()) / len(logged),
        "changed_by_transition": dict(changed),
        "changed_examples": examples,
        "inputs": "the event, flow binding, OFP vector and posture DF logged with each decision",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fp_platform.rtdl.shadow", description=__doc__.splitlines()[0])
    parser.add_argument("job", choices=["score"])
    parser.add_argument("--run-id", required=True, help="platform_run_id whose decisions are replayed")
    parser.add_argument("--bundle-id", required=True, help="the candidate bundle")
    parser.add_argument("--bundle-version", required=True)
    parser.add_argument("--baseline-bundle-id", required=True, help="the bundle to compare with (active before)")
    parser.add_argument("--baseline-bundle-version", required=True)
    parser.add_argument("--from", dest="start", required=True, help="window start (ISO world time, inclusive)")
    parser.add_argument("--to", dest="end", required=True, help="window end (ISO world time, exclusive)")
    parser.add_argument("--review-budget", type=int, required=True, help="cards reviewed per day (precision@k)")
    args = parser.parse_args(argv)
    h = handles()
    store = S3ObjectStore(h)
    writer = run_evidence(h, args.run_id, store=store)
    with job_channel() as (log, report), db.connect(h, autocommit=True) as conn:
        try:
            result = shadow_score(
                h,
                conn,
                store,
                load_policy(h),
                args.run_id,
                (args.bundle_id, args.bundle_version),
                (args.baseline_bundle_id, args.baseline_bundle_version),
                (args.start, args.end),
                args.review_budget,
                log,
            )
        except ShadowRefused as exc:
            log(str(exc))
            report({"status": "REFUSED", "reason": str(exc)})
            return 0 if os.environ.get("DAGSTER_PIPES_CONTEXT") else 4  # under Pipes the asset judges
        writer.write_summary(h.get("MPR_SHADOW_EVAL_PATH_PATTERN"), result, phase_id=P15)
        report({"status": "DONE", **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())

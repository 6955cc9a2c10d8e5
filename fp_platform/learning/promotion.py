"""P15 MPR_PROMOTION_COMMITTED: the promotion corridor of a candidate bundle.

1. Compatibility (fails closed): the bundle is registered, its feature version is the one OFP serves,
   every feature it names is served online, its model document is the one P14 wrote and names the same
   features, and its thresholds are DF decisions in ascending order.
2. Shadow scoring is DF's (`rtdl.shadow`); this module judges it by the policy's promotion rule.
3. Promotion and the rollback drill: PROMOTED, then ROLLED_BACK to the baseline, then ROLLED_FORWARD,
   each an append-only row in `mpr_registry_events`, each followed by resolving the active bundle the
   way DF does (`bundle_registry.active_bundle`) and loading its model the way DF does (`bundle_models`),
   then published on the registry topic.
The baseline is the bundle active before this run promoted the candidate: the shadow compares with it
and the drill rolls back to it. Event ids derive from the run and the bundle, so a re-run appends nothing
twice (and its drill resolves the registry as it is then: after a complete earlier attempt the rolled-back
step no longer resolves, so the drill fails rather than claim what it did not see).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
from scipy.stats import t as student_t

from fp_platform.contracts import bundle_registry
from fp_platform.contracts.canonical import sha256_hex
from fp_platform.contracts.envelope import Envelope, record_headers, topic_key_for
from fp_platform.contracts.evidence import EvidenceWriter
from fp_platform.contracts.features import FEATURE_VERSION, SERVED_FIELDS
from fp_platform.contracts.payloads import DECISIONS
from fp_platform.contracts.phases import P15
from fp_platform.handles import Handles
from fp_platform.learning.policy import LearningPolicy, review_budget_for
from fp_platform.learning.step import Step
from fp_platform.substrate import bundle_models, bus
from fp_platform.substrate.evidence_store import pinned_scale
from fp_platform.substrate.object_store import S3ObjectStore


class PromotionRefused(RuntimeError):
    """The corridor cannot start: no eligible candidate, or the evidence it needs is missing."""


def candidate_of(h: Handles, writer: EvidenceWriter, override: str | None) -> dict[str, Any]:
    """The bundle to promote: `BUNDLE_ID:VERSION` when given, else the one P14 registered for the run."""
    if override:
        bundle_id, sep, version = override.partition(":")
        if not sep or not bundle_id or not version:
            raise PromotionRefused(f"--candidate {override!r} is not BUNDLE_ID:VERSION")
        return {"bundle_id": bundle_id, "bundle_version": version, "model_sha256": None, "source": "operator"}
    name = h.get("MF_CANDIDATE_BUNDLE_RECEIPT_PATH_PATTERN")
    if not writer.exists(name):
        raise PromotionRefused(f"no candidate bundle receipt {name}: P14 has not run for this run")
    receipt = writer.read(name)
    if not receipt["registered"]:
        raise PromotionRefused(
            f"candidate {receipt['bundle_id']} {receipt['bundle_version']} is not eligible:"
            " P14 did not register it (below a metric floor)"
        )
    return {
        "bundle_id": receipt["bundle_id"],
        "bundle_version": receipt["bundle_version"],
        "model_sha256": receipt["model_sha256"],
        "source": "P14 candidate bundle receipt",
    }


def _model_problems(store: S3ObjectStore, bundle: bundle_registry.Bundle, sha256: str | None) -> tuple[list[str], str]:
    """Why DF could not load the bundle's model as the bundle describes it; and the model's kind."""
    try:
        body = bundle_models.read_document(store, bundle.model_ref)
        model = bundle_models.parse_model(bundle.model_ref, body)
    except bundle_models.ModelUnavailable as exc:
        return [str(exc)], "unloadable"
    problems = []
    if sha256 and sha256_hex(body) != sha256:
        problems.append(f"model sha256 {sha256_hex(body)[:16]} is not the {sha256[:16]} P14 wrote")
    if model.features != bundle.feature_list:
        problems.append(f"model features {list(model.features)} differ from the bundle's {list(bundle.feature_list)}")
    return problems, type(model).__name__


def compatibility(conn: psycopg.Connection, store: S3ObjectStore, candidate: dict[str, Any]) -> dict[str, Any]:
    """Every reason DF could not serve the bundle as OFP serves features today (empty: compatible)."""
    bundle = bundle_registry.registered_bundle(conn, candidate["bundle_id"], candidate["bundle_version"])
    if bundle is None:
        return {
            "compatible": False,
            "reasons": [f"bundle {candidate['bundle_id']} {candidate['bundle_version']} is not registered"],
            "bundle": None,
        }
    reasons = []
    if bundle.feature_version != FEATURE_VERSION:
        reasons.append(f"feature_version {bundle.feature_version} is not the served {FEATURE_VERSION}")
    if unserved := [f for f in bundle.feature_list if f not in SERVED_FIELDS]:
        reasons.append(f"features {unserved} are not served by OFP (served: {list(SERVED_FIELDS)})")
    kind = None
    if bundle.model_ref:
        problems, kind = _model_problems(store, bundle, candidate["model_sha256"])
        reasons += problems
    order = [d for d in DECISIONS[1:] if d in bundle.thresholds]
    if set(bundle.thresholds) - set(order):
        reasons.append(f"thresholds name {sorted(set(bundle.thresholds) - set(order))}, not DF decisions")
    values = [bundle.thresholds[d] for d in order]
    if values != sorted(values) or not all(0.0 <= v <= 1.0 for v in values):
        reasons.append(f"thresholds {bundle.thresholds} are not ascending in [0, 1]")
    return {
        "compatible": not reasons,
        "reasons": reasons,
        "bundle": {
            "bundle_id": bundle.bundle_id,
            "bundle_version": bundle.bundle_version,
            "model_ref": bundle.model_ref,
            "feature_version": bundle.feature_version,
            "feature_list": list(bundle.feature_list),
            "thresholds": bundle.thresholds,
            "model_kind": kind,
        },
        "served": {"feature_version": FEATURE_VERSION, "fields": list(SERVED_FIELDS)},
    }


def _event_base(run_id: str, candidate: tuple[str, str]) -> str:
    return f"mpr:{run_id}:{candidate[0]}:{candidate[1]}"


def baseline_of(conn: psycopg.Connection, run_id: str, candidate: tuple[str, str]) -> tuple[str, str]:
    """The bundle active before this run's promotion of the candidate (before it: the active one)."""
    seq = conn.execute(
        "SELECT seq FROM mpr_registry_events WHERE event_id = %s", (f"{_event_base(run_id, candidate)}:promoted",)
    ).fetchone()
    active = bundle_registry.active_bundle(conn, before_seq=seq[0] if seq else None)
    if active is None:
        raise PromotionRefused("the registry has no active bundle to compare with (DF bootstraps one at start)")
    baseline = (active.bundle_id, active.bundle_version)
    if baseline == candidate:
        raise PromotionRefused(f"{candidate[0]} {candidate[1]} is already the active bundle: nothing to promote")
    return baseline


def check_compatibility(
    step: Step,
    override: str | None,
) -> dict[str, Any]:
    h, conn, store, writer, run_id, policy, _ = step.unpack()
    candidate = candidate_of(h, writer, override)
    baseline = baseline_of(conn, run_id, (candidate["bundle_id"], candidate["bundle_version"]))
    basis = writer.read(h.get("LEARNING_INPUT_BASIS_PATH_PATTERN"))
    result = {
        "candidate": candidate,
        **compatibility(conn, store, candidate),
        "baseline": {"bundle_id": baseline[0], "bundle_version": baseline[1]},
        "shadow_window": {"start": basis["windows"]["test_start"], "end": basis["windows"]["test_end"]},
        "review_budget": review_budget_for(policy, pinned_scale(h, writer)),
    }
    writer.write_summary(h.get("MPR_COMPATIBILITY_CHECK_PATH_PATTERN"), result, phase_id=P15)
    return result


def promotion_rule(policy: LearningPolicy, shadow: dict[str, Any]) -> dict[str, Any]:
    """The policy's shadow rule, over the days of the window. Each day both bundles score the same traffic
    and review their k cards (each leaves out the cards it found on earlier days, so the days are paired
    but not fully independent). The candidate is refused when
    - the days show it short of the active's precision plus `min_precision_gain`: the one-sided upper
      confidence bound (Student's t over the days, at `confidence`) of its mean daily gain is below it;
    - its mean daily gain is below `min_precision_gain - max_point_loss`, however wide the days spread
      (noisy days must not hide a real loss);
    - it changes more than `max_changed_share` of the decisions;
    - or the shadow covers fewer than `min_days` days, too few for the bound to mean anything.
    Why not the point comparison alone: a day reviews a handful of cards, so between equally good scorers
    the daily precision moves by a card or two. On the smoke world's test week (10 reviews a day) the
    gain's standard error is 0.04-0.06, and one card on one day of seven (-0.014) refused a candidate in CI."""
    rule = policy.promotion

    def refused(why: str) -> dict[str, Any]:
        """The same fields as a judged shadow, with no figures: nothing was judged."""
        unjudged = dict.fromkeys(("gain", "standard_error", "days", "upper_bound"))
        return {"passed": False, "detail": why, **unjudged, "confidence": rule["confidence"]}

    try:
        cand, act = (shadow[b]["precision_at_review_budget_daily"] for b in ("candidate", "active"))
    except KeyError:
        return refused("the shadow evaluation has no daily precision: score the shadow again")
    if len(cand) != len(act):
        return refused(f"the shadow's days do not pair: {len(cand)} vs {len(act)}")
    diff = np.asarray(cand, dtype=float) - np.asarray(act, dtype=float)
    if not np.isfinite(diff).all():
        return refused("the shadow's daily precision is not a number on every day: score the shadow again")
    days = len(diff)
    if days < rule["min_days"]:
        return refused(f"the shadow covers {days} days, fewer than the policy's {rule['min_days']:g}")
    gain = float(diff.mean())
    se = float(diff.std(ddof=1) / np.sqrt(days))
    upper = gain + float(student_t.ppf(rule["confidence"], days - 1)) * se
    floor = rule["min_precision_gain"] - rule["max_point_loss"]
    passed = (
        upper >= rule["min_precision_gain"] and gain >= floor and shadow["changed_share"] <= rule["max_changed_share"]
    )
    detail = (
        f"precision at the review budget {shadow['candidate']['precision_at_review_budget']:.3f} vs active"
        f" {shadow['active']['precision_at_review_budget']:.3f}: daily gain {gain:+.3f} (needs >= {floor:+.3f},"
        f" standard error {se:.3f} over {days} days), one-sided upper bound {upper:+.3f} at confidence"
        f" {rule['confidence']:g} (needs >= {rule['min_precision_gain']:+.3f}); changed"
        f" {shadow['changed_share']:.1%} of decisions (at most {rule['max_changed_share']:.0%})"
    )
    return {
        "passed": passed,
        "detail": detail,
        "gain": gain,
        "standard_error": se,
        "days": days,
        "upper_bound": upper,
        "confidence": rule["confidence"],
    }


def _step(
    conn: psycopg.Connection,
    store: S3ObjectStore,
    event_id: str,
    event_type: str,
    bundle: tuple[str, str],
    reason: str,
    actor: str,
) -> dict[str, Any]:
    """Append one registry event (a no-op when an earlier attempt appended it), then resolve the active
    bundle as DF does and load its model as DF would."""
    with conn.transaction():
        appended = bundle_registry.activate(
            conn,
            event_id=event_id,
            event_type=event_type,
            bundle_id=bundle[0],
            bundle_version=bundle[1],
            reason=reason,
            actor=actor,
        )
    seq = conn.execute("SELECT seq FROM mpr_registry_events WHERE event_id = %s", (event_id,)).fetchone()[0]
    active = bundle_registry.active_bundle(conn)
    resolved = (active.bundle_id, active.bundle_version) if active else None
    problems: list[str] = []
    if active is not None and active.model_ref:
        problems, _ = _model_problems(store, active, None)
    return {
        "event_id": event_id,
        "event_type": event_type,
        "bundle_id": bundle[0],
        "bundle_version": bundle[1],
        "seq": seq,
        "appended": appended,
        "resolved_active": list(resolved) if resolved else None,
        "model_problems": problems,
        "resolves": resolved == bundle and not problems,
    }


def publish(h: Handles, conn: psycopg.Connection, run_id: str, event_ids: list[str]) -> list[dict[str, Any]]:
    """Send the registry events (the Postgres rows are the truth; consumers dedupe a resend on event_id)."""
    topic_key = topic_key_for("learning.registry.event")
    topic, component = h.topic(topic_key).name, h.get("COMPONENT_ID_MPR")
    records, envelopes = [], []
    for e in bundle_registry.events_for(conn, event_ids):
        env = Envelope.build(
            event_id=e["event_id"],
            event_class="learning.registry.event",
            pins={"platform_run_id": run_id},
            producer=component,
            ts_utc=e["at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            payload={k: e[k] for k in ("seq", "event_type", "bundle_id", "bundle_version", "reason", "actor")},
        )
        headers = record_headers(run_id, env.event_class, env.event_id, env.payload_hash, component)
        records.append((topic, env.to_bytes(), e["bundle_id"].encode(), headers))
        envelopes.append(e)
    results = bus.deliver(bus.producer(h), records)
    return [
        {
            "event_id": e["event_id"],
            "event_type": e["event_type"],
            "seq": e["seq"],
            "topic": topic,
            **({"partition": r[0], "offset": r[1]} if isinstance(r, tuple) else {"error": r}),
        }
        for e, r in zip(envelopes, results, strict=True)
    ]


def promote(
    step: Step,
) -> dict[str, Any]:
    """Judge the shadow, then promote and drill the rollback; the receipts say what happened."""
    h, conn, store, writer, run_id, policy, log = step.unpack()
    compat = writer.read(h.get("MPR_COMPATIBILITY_CHECK_PATH_PATTERN"))
    if not compat["compatible"]:
        raise PromotionRefused("the candidate is not compatible: " + "; ".join(compat["reasons"]))
    shadow_name = h.get("MPR_SHADOW_EVAL_PATH_PATTERN")
    if not writer.exists(shadow_name):
        raise PromotionRefused(f"no shadow evaluation {shadow_name}: DF has not scored the candidate in shadow")
    shadow = writer.read(shadow_name)
    cand = (compat["candidate"]["bundle_id"], compat["candidate"]["bundle_version"])
    previous = (compat["baseline"]["bundle_id"], compat["baseline"]["bundle_version"])
    scored = (
        (shadow["candidate"]["bundle_id"], shadow["candidate"]["bundle_version"]),
        (shadow["active"]["bundle_id"], shadow["active"]["bundle_version"]),
    )
    if scored != (cand, previous):
        raise PromotionRefused(f"the shadow scored {scored}, not the candidate {cand} beside the baseline {previous}")
    verdict = promotion_rule(policy, shadow)
    passed, why = verdict["passed"], verdict["detail"]
    actor = h.get("COMPONENT_ID_MPR")
    base = _event_base(run_id, cand)
    receipt: dict[str, Any] = {
        "candidate": {"bundle_id": cand[0], "bundle_version": cand[1]},
        "previous": {"bundle_id": previous[0], "bundle_version": previous[1]},
        "promotion_rule": verdict,
        "policy_rev": policy.policy_rev,
    }
    if not passed:
        receipt["promoted"] = False
        writer.write_summary(h.get("MPR_PROMOTION_RECEIPT_PATH_PATTERN"), receipt, phase_id=P15)
        return {"promoted": False, "promotion_rule": receipt["promotion_rule"], "drill": None, "published": []}
    log(f"promoting {cand[0]} {cand[1]} (previous {previous[0]} {previous[1]}): {why}")
    steps = [
        _step(conn, store, f"{base}:promoted", "PROMOTED", cand, f"P15 promotion of run {run_id}: {why}", actor),
        _step(
            conn,
            store,
            f"{base}:rollback_drill",
            "ROLLED_BACK",
            previous,
            f"P15 rollback drill: back to {previous[0]} {previous[1]}",
            actor,
        ),
        _step(
            conn,
            store,
            f"{base}:roll_forward",
            "ROLLED_FORWARD",
            cand,
            f"P15 rollback drill: forward to {cand[0]} {cand[1]}",
            actor,
        ),
    ]
    published = publish(h, conn, run_id, [s["event_id"] for s in steps])
    active = bundle_registry.active_bundle(conn)
    active_now = [active.bundle_id, active.bundle_version] if active else None
    receipt |= {"promoted": True, "event": steps[0], "active_now": active_now, "published": published}
    drill = {
        "previous": receipt["previous"],
        "candidate": receipt["candidate"],
        "steps": steps,
        "resolver": "substrate.bundle_registry.active_bundle and substrate.bundle_models (what DF calls)",
        "passed": all(s["resolves"] for s in steps),
        "active_now": active_now,
        "published": published,
    }
    writer.write_summary(h.get("MPR_PROMOTION_RECEIPT_PATH_PATTERN"), receipt, phase_id=P15)
    writer.write_summary(h.get("MPR_ROLLBACK_DRILL_REPORT_PATH_PATTERN"), drill, phase_id=P15)
    return {
        "promoted": True,
        "promotion_rule": receipt["promotion_rule"],
        "drill": drill,
        "published": published,
        "active_now": active_now,
    }

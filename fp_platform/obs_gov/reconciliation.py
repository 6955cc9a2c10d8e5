"""Reconciliation: intended vs observed counts along the whole chain, from the phases' evidence.

WSP sent = IG receipts of WSP's events; IG receipts = ADMIT + DUPLICATE + QUARANTINE + ANOMALY
(+ PUBLISH_AMBIGUOUS); admitted records on the bus = ADMIT receipts; admitted traffic = feature vectors =
flow bindings = decisions = intents = outcomes = audit chains; case triggers = what the policy asks =
cases; label assertions = the work done = label events OFP holds. Each check names its mismatch.
"""

from __future__ import annotations

from typing import Any

Docs = dict[str, dict[str, Any]]


def _check(name: str, intended: dict[str, int], observed: dict[str, int], equal: bool | None = None) -> dict[str, Any]:
    values = {**intended, **observed}
    holds = equal if equal is not None else len(set(values.values())) == 1
    mismatch = None if holds else ", ".join(f"{k}={v}" for k, v in values.items())
    return {"name": name, "intended": intended, "observed": observed, "holds": holds, "mismatch": mismatch}


def reconcile(docs: Docs) -> dict[str, Any]:
    """`docs` holds the phases' summaries by role: wsp, receipts, offsets, caught_up, decisions, actions,
    audit, cases, labels; and `receipts_by_producer` (IG receipts per producer: WSP, and IG's own P4 smoke)."""
    wsp, receipts, offsets = docs["wsp"], docs["receipts"], docs["offsets"]
    caught, decisions, actions, audit = docs["caught_up"], docs["decisions"], docs["actions"], docs["audit"]
    cases, labels = docs["cases"], docs["labels"]
    counts = receipts["counts"]
    coverage = caught["derived_coverage"]
    # A request WSP timed out on may have been receipted before its retry was (the retry's receipts are
    # DUPLICATEs): IG holds every sent event's receipt, plus at most the retried requests' events again.
    sent, retried = wsp["totals"]["sent"], wsp["totals"].get("retried_events", 0)
    of_wsp = docs["receipts_by_producer"].get(docs["wsp_producer"], 0)
    checks = [
        _check(
            "wsp_sent_equals_ig_receipts",
            {"wsp_sent": sent, "wsp_retried_events": retried},
            {"ig_receipts_of_wsp": of_wsp},
            sent <= of_wsp <= sent + retried,
        ),
        _check(
            "ig_receipts_by_producer",
            {"ig_receipts": receipts["attempts"]},
            {f"ig_receipts_of_{p}": n for p, n in sorted(docs["receipts_by_producer"].items())},
            receipts["attempts"] == sum(docs["receipts_by_producer"].values()),
        ),
        _check(
            "ig_receipts_partition",
            {"ig_receipts": receipts["attempts"]},
            {"admit+duplicate+quarantine+anomaly+publish_ambiguous": sum(counts.values())},
        ),
        _check("admitted_on_bus_once", {"dedupe_drift_expected": 0}, {"dedupe_drift": offsets["dedupe_drift"]}),
        _check(
            "admitted_traffic_decided",
            {"admitted_traffic": decisions["admitted_traffic"]},
            {
                "feature_vectors": coverage["ofp_features"],
                "flow_bindings": coverage["csfb_flow_bindings"],
                "decisions": decisions["decisions"],
                "intents": actions["intents"],
                "outcomes": actions["outcomes"],
                "audit_chains": audit["chains"],
            },
        ),
        _check(
            "acted_once",
            {"decisions_acted_twice_expected": 0},
            {"decisions_acted_twice": actions["decisions_acted_twice"]},
        ),
        _check(
            "lineage_resolved",
            {"lineage_unresolved_expected": 0},
            {"lineage_unresolved_total": audit["lineage_unresolved_total"]},
        ),
        _check(
            "cases_opened",
            {"triggers_expected": cases["triggers_expected"]},
            {"triggers": cases["triggers"], "cases": cases["cases"]},
        ),
        _check(
            "labels_asserted",
            {"assertions_expected": labels["assertions_expected"]},
            {"assertions": labels["assertions"]},
        ),
        _check(
            "labels_delivered",
            {"assertions": labels["assertions"], "label_events_unsent_expected": 0},
            {"ofp_labels": labels["ofp_labels"], "label_events_unsent": labels["label_events_unsent"]},
            labels["ofp_labels"] >= labels["assertions"] and labels["label_events_unsent"] == 0,
        ),
    ]
    return {
        "holds": all(c["holds"] for c in checks),
        "checks": checks,
        "mismatches": [f"{c['name']}: {c['mismatch']}" for c in checks if not c["holds"]],
        "funnel": {
            "wsp_sent": wsp["totals"]["sent"],
            "ig_receipts": receipts["attempts"],
            **counts,
            "admitted_traffic": decisions["admitted_traffic"],
            "decisions": decisions["decisions"],
            "outcomes": actions["outcomes"],
            "audit_chains": audit["chains"],
            "cases": cases["cases"],
            "label_assertions": labels["assertions"],
        },
    }

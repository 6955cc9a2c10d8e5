"""The gates of P10 CASE_LABELS_COMMITTED, each declared once: name, meaning and predicate over the phase's
evidence document (`summary.case_summary` / `summary.label_summary` plus the wait and the workers' health).
Dagster-free: the assets turn them into blocking checks; the unit tests judge them on documents of their own."""

from __future__ import annotations

from typing import Any

from fp_platform.contracts.gates import Gate, Judgement, tables_append_only, workers_green

Doc = dict[str, Any]

CAUGHT_UP = Gate(
    "caught_up",
    "the plane took in every audited chain of the run: triggers and planned investigations match the "
    "policy, the simulation's clock reached the last decision, nothing due is undone, every label "
    "event reached OFP",
    lambda d: (d["plane_caught_up"], f"{d['caught_up']} after {d['waited_s']}s", {"waited_s": d["waited_s"]}),
)


def _timelines_appended(d: Doc) -> Judgement:
    due = d["investigations"].get("DUE", 0)
    return (
        d["cases"] == d["triggers"]
        and d["triggers_without_case"] == 0
        and d["cases_with_incomplete_evidence"] == 0
        and d["evidence_refs_unresolved"] == 0
        and due == 0,
        f"{d['cases']} cases for {d['triggers']} triggers, {d['timeline_events']} timeline events;"
        f" {d['cases_with_incomplete_evidence']} with incomplete evidence,"
        f" {d['evidence_refs_unresolved']} unresolved refs; {due} investigations due but not done",
        {"cases_by_status": d["cases_by_status"]},
    )


def _no_double_append(d: Doc) -> Judgement:
    deliveries = d["trigger_deliveries"]
    return (
        d["cases_opened_twice"] == 0 and deliveries.get("NEW", 0) == d["cases"] and deliveries.get("CONFLICT", 0) == 0,
        f"deliveries {deliveries}; {d['cases_opened_twice']} cases opened twice",
    )


CASE_SUMMARY = (
    CAUGHT_UP,
    Gate(
        "triggers_match_policy",
        "one case trigger per decision the policy names (REVIEW, DECLINE, the APPROVE "
        "sample) among the run's audited chains, none for anything else",
        lambda d: (
            d["chains"] > 0
            and d["triggers"] == d["triggers_expected"]
            and d["triggers_by_reason"] == d["triggers_expected_by_reason"],
            f"{d['triggers']} triggers for {d['triggers_expected']} expected over {d['chains']} chains",
            {"by_reason": d["triggers_by_reason"]},
        ),
    ),
    Gate(
        "timelines_appended",
        "every trigger opened exactly one case with its evidence attached by reference "
        "(resolving to audit chains and IG receipts); work due by the world clock is done",
        _timelines_appended,
    ),
    Gate(
        "duplicates_no_double_append",
        "re-delivered triggers were recorded as duplicates and appended nothing; no conflicting trigger",
        _no_double_append,
    ),
    Gate("append_only", "the database refuses UPDATE/DELETE on every case/labels truth table", tables_append_only),
    Gate(
        "case_workers_green",
        "CaseTrigger and CM run for this run with fresh GREEN heartbeats",
        workers_green("CaseTrigger and CM GREEN"),
    ),
)


def _work(d: Doc, state: str) -> int:
    return sum(n for k, n in d["simulated_work"].items() if k.endswith(f":{state}"))


def _assertions_appended(d: Doc) -> Judgement:
    due = _work(d, "DUE")
    return (
        d["assertions"] == d["assertions_expected"] and d["same_source_repeats"] == 0 and not due,
        f"{d['assertions']} assertions for {d['assertions_expected']} done work items, {due} due"
        f" but not done, {_work(d, 'BEYOND_WORLD_CLOCK')} planned beyond the world clock {d['world_clock']};"
        f" {d['same_source_repeats']} subjects asserted twice by one source",
        {"by_source_label": d["by_source_label"]},
    )


def _writer_boundary_held(d: Doc) -> Judgement:
    refused = _work(d, "REFUSED")
    own = f", {refused} of them the plane's own work (its grants are out of step with its writers)" if refused else ""
    return (
        d["ungranted_assertions"] == 0 and refused == 0,
        f"{d['ungranted_assertions']} assertions from ungranted writers; {d['refused_writes']} writes"
        f" refused and recorded{own}",
        {"refused_writes": d["refused_writes"]},
    )


LABEL_SUMMARY = (
    CAUGHT_UP,
    Gate(
        "assertions_appended",
        "every investigation and chargeback the world clock reached is one label "
        "assertion in LS (append-only, idempotent)",
        _assertions_appended,
    ),
    Gate(
        "writer_boundary_held",
        "only granted writers' assertions exist, the plane's own writers were never "
        "refused; refused writes are recorded as governance anomalies",
        _writer_boundary_held,
    ),
    Gate(
        "labels_published",
        "every assertion went out on the labels topic and OFP took it in",
        lambda d: (
            d["label_events_unsent"] == 0 and d["ofp_labels"] >= d["assertions"],
            f"{d['label_events_unsent']} label events unsent; OFP holds {d['ofp_labels']} of {d['assertions']}",
        ),
    ),
    Gate(
        "ls_green",
        "LS and the label simulation run for this run with fresh GREEN heartbeats",
        workers_green("LS and the label simulation GREEN"),
    ),
)

"""The reconciliation law on the WSP/IG boundary, as pure logic: IG holds a receipt for every event WSP
sent, and beyond them at most the events of the requests WSP retried (a timed-out request IG had already
receipted comes back as DUPLICATEs); anything else is a mismatch."""

import pytest

from fp_platform.obs_gov.reconciliation import reconcile


def docs(sent: int, retried: int, receipts_of_wsp: int) -> dict:
    n = 10
    return {
        "wsp": {"totals": {"sent": sent, "retried_events": retried}},
        "receipts": {
            "attempts": receipts_of_wsp + 1,  # + IG's own P4 smoke event
            "counts": {"ADMIT": sent + 1, "DUPLICATE": receipts_of_wsp - sent},
        },
        "receipts_by_producer": {"wsp": receipts_of_wsp, "ig": 1},
        "wsp_producer": "wsp",
        "offsets": {"dedupe_drift": 0},
        "caught_up": {"derived_coverage": {"ofp_features": n, "csfb_flow_bindings": n}},
        "decisions": {"admitted_traffic": n, "decisions": n},
        "actions": {"intents": n, "outcomes": n, "decisions_acted_twice": 0},
        "audit": {"chains": n, "lineage_unresolved_total": 0},
        "cases": {"triggers_expected": 1, "triggers": 1, "cases": 1},
        "labels": {"assertions_expected": 1, "assertions": 1, "ofp_labels": 1, "label_events_unsent": 0},
    }


@pytest.mark.parametrize(
    ("sent", "retried", "receipts", "holds"),
    [
        (1000, 0, 1000, True),  # no retries: equal
        (1000, 500, 1500, True),  # a 500-event request receipted, timed out at WSP, re-sent
        (1000, 500, 1200, True),  # part of the retried events were receipted twice
        (1000, 0, 1500, False),  # extra receipts without a retry: not ours
        (1000, 500, 1501, False),  # more than the retries can explain
        (1000, 500, 999, False),  # a sent event without a receipt
    ],
)
def test_ig_receipts_of_wsp_lie_between_sent_and_sent_plus_retried(sent, retried, receipts, holds):
    check = next(
        c for c in reconcile(docs(sent, retried, receipts))["checks"] if c["name"] == "wsp_sent_equals_ig_receipts"
    )
    assert check["holds"] is holds, check

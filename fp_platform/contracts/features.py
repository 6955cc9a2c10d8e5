"""The feature definition OFP serves online and OFS rebuilds offline: one contract, two engines
(Postgres in OFP, DuckDB in OFS), proven equal by P13's parity check.

Handbook features (Le Borgne et al., ch. 3.4): for the customer, the number of transactions and their
average amount over 1, 7 and 30 days up to and including the event; for the terminal, the number of
transactions and the fraud risk over 1, 7 and 30 days ending DELAY_DAYS before the event, counting as
fraud only labels observed by the event time; for the card, whether the flow's device and ip are new.
"""

from __future__ import annotations

FEATURE_VERSION = "ofp.v1"
WINDOW_DAYS = (1, 7, 30)
DELAY_DAYS = 7
FEATURE_NAMES: tuple[str, ...] = (
    *(f"customer_nb_tx_{w}d" for w in WINDOW_DAYS),
    *(f"customer_avg_amount_{w}d" for w in WINDOW_DAYS),
    *(f"terminal_nb_tx_{w}d" for w in WINDOW_DAYS),
    *(f"terminal_risk_{w}d" for w in WINDOW_DAYS),
    "card_new_device",
    "card_new_ip",
)
# Flags that say how much the vector could know: labels seen for the terminal windows (0 = risk is 0
# for want of labels, not because the terminal is clean) and whether the flow's context had arrived.
FLAG_NAMES = ("terminal_labels_visible", "context_complete")

# Where each window ends, in days before the event (0: the event itself). A window ending after its
# event would read the future; P12's leakage check reads this table.
WINDOW_END_DAYS_BEFORE_EVENT = {
    **{f"customer_{k}_{w}d": 0 for k in ("nb_tx", "avg_amount") for w in WINDOW_DAYS},
    **{f"terminal_{k}_{w}d": DELAY_DAYS for k in ("nb_tx", "risk") for w in WINDOW_DAYS},
    "card_new_device": 0,
    "card_new_ip": 0,
}

# The transaction's own fields DF hands a model beside the vector (a bundle may use them too).
EVENT_FIELDS = ("amount",)
SERVED_FIELDS = (*FEATURE_NAMES, *EVENT_FIELDS)

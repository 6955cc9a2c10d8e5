"""The feature definition OFP serves online and OFS rebuilds offline: one contract, two engines
(Postgres in OFP, DuckDB in OFS), proven equal by P13's parity check.

Handbook features (Le Borgne et al., ch. 3.4): for the customer, the number of transactions and their
average amount over 1, 7 and 30 days up to and including the event; for the terminal, the number of
transactions and the fraud risk over 1, 7 and 30 days ending DELAY_DAYS before the event, counting as
fraud only labels observed by the event time; for the card, whether the flow's device and ip are new.
Beside the vector a model sees the transaction's own fields: its amount and, as the handbook's
TX_DURING_WEEKEND and TX_DURING_NIGHT, whether it falls on a Saturday or Sunday and in the hours 0 to 6
(inclusive) of world time — computed by `event_values` in DF and shadow scoring, and by
`with_event_fields` (the same two functions, row by row) for MF's training frame. Derived from both, the
amount over the customer's average amount in each window (`amount_ratios`): fraud scenario 3 multiplies a
compromised customer's amounts by five, which the average alone, shifting slowly, hides.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

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
EVENT_FIELDS = ("amount", "is_weekend", "is_night")
# Derived from the vector and the event by `amount_ratios`, wherever a model is scored or trained.
RATIO_FIELDS = tuple(f"amount_to_customer_avg_{w}d" for w in WINDOW_DAYS)
SERVED_FIELDS = (*FEATURE_NAMES, *EVENT_FIELDS, *RATIO_FIELDS)


def is_weekend(ts: datetime) -> int:
    """1 on a Saturday or Sunday (the handbook's `weekday >= 5`)."""
    return int(ts.weekday() >= 5)


def is_night(ts: datetime) -> int:
    """1 from 00:00 to 06:59 (the handbook's `hour <= 6`)."""
    return int(ts.hour <= 6)


def event_values(payload: Mapping[str, Any], ts_utc: str | datetime) -> dict[str, Any]:
    """The event fields of a traffic event, from its payload and its world time (an ISO string or a datetime;
    an aware one is read in UTC, as the world's clock is)."""
    ts = ts_utc if isinstance(ts_utc, datetime) else datetime.fromisoformat(ts_utc)
    ts = ts.astimezone(UTC) if ts.tzinfo else ts
    return {"amount": payload["amount"], "is_weekend": is_weekend(ts), "is_night": is_night(ts)}


def amount_ratios(values: Mapping[str, Any]) -> dict[str, float | None]:
    """The amount over the customer's average amount of each window (which includes this transaction, so it is
    0 only when the amounts are); None where either is missing (a model then sees NaN)."""
    out: dict[str, float | None] = {}
    amount = values.get("amount")
    for w, name in zip(WINDOW_DAYS, RATIO_FIELDS, strict=True):
        avg = values.get(f"customer_avg_amount_{w}d")
        missing = amount is None or avg is None or avg != avg or amount != amount  # None or NaN
        out[name] = None if missing else (float(amount) / float(avg) if avg > 0 else 0.0)
    return out


def model_values(vector: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """What a bundle's model (and the rules) score: the OFP vector, the event's own fields and the ratios
    derived from both."""
    values = {**vector, **event}
    return {**values, **amount_ratios(values)}


def with_event_fields(frame: pd.DataFrame) -> pd.DataFrame:
    """A training frame (columns ts in UTC, amount, the vector) with the event fields and the ratios, computed
    row by row with the same functions DF uses."""
    ts = frame["ts"].dt.tz_convert("UTC") if frame["ts"].dt.tz is not None else frame["ts"]
    inputs = frame[["amount", *(f"customer_avg_amount_{w}d" for w in WINDOW_DAYS)]].to_dict("records")
    ratios = pd.DataFrame([amount_ratios(r) for r in inputs], index=frame.index, columns=list(RATIO_FIELDS))
    return frame.assign(is_weekend=ts.map(is_weekend), is_night=ts.map(is_night), **ratios.astype("float64"))

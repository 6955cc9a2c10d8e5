"""The event fields beside the OFP vector: the handbook's definitions, one implementation online and offline."""

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from fp_platform.contracts.features import (
    RATIO_FIELDS,
    SERVED_FIELDS,
    amount_ratios,
    event_values,
    model_values,
    with_event_fields,
)

pytestmark = pytest.mark.unit


def test_the_event_fields_follow_the_handbook_and_agree_online_and_offline():
    """Saturday/Sunday is the weekend and hours 0–6 the night (the handbook's `weekday >= 5`, `hour <= 6`);
    DF's per-event values equal the training frame's, whatever timezone the frame's times carry."""
    assert event_values({"amount": 5.0}, "2018-04-07T06:59:59.000Z") == {"amount": 5.0, "is_weekend": 1, "is_night": 1}
    assert event_values({"amount": 5.0}, "2018-04-09T07:00:00.000Z") == {"amount": 5.0, "is_weekend": 0, "is_night": 0}
    # an aware time in another zone is read in UTC: Monday 01:30 in Paris (CEST) is Sunday 23:30 UTC
    paris = datetime(2018, 4, 9, 1, 30, tzinfo=ZoneInfo("Europe/Paris"))
    assert event_values({"amount": 1.0}, paris) == {"amount": 1.0, "is_weekend": 1, "is_night": 0}
    times = pd.date_range("2018-04-01", periods=24 * 9, freq="h", tz="UTC")
    avgs = {f"customer_avg_amount_{w}d": 2.0 for w in (1, 7, 30)}
    frame = with_event_fields(pd.DataFrame({"ts": times.tz_convert("Europe/Paris"), "amount": 1.0, **avgs}))
    online = [event_values({"amount": 1.0}, t.isoformat()) for t in times]
    assert frame["is_weekend"].tolist() == [v["is_weekend"] for v in online]
    assert frame["is_night"].tolist() == [v["is_night"] for v in online]
    assert sum(frame["is_night"]) == 9 * 7 and sum(frame["is_weekend"]) == 3 * 24  # 2018-04-01 is a Sunday


def test_the_amount_ratios_are_the_amount_over_each_windows_average_and_agree_online_and_offline():
    """Fraud scenario 3 multiplies a compromised customer's amounts by five: the ratio shows it where the
    average, which includes the transaction, moves slowly. Missing inputs give None (NaN to a model), a zero
    average (only with zero amounts) 0; DF's values (model_values) equal the training frame's, bit for bit."""
    vector = {"customer_avg_amount_1d": 50.0, "customer_avg_amount_7d": 20.0, "customer_avg_amount_30d": None}
    assert amount_ratios({**vector, "amount": 100.0}) == {
        "amount_to_customer_avg_1d": 2.0,
        "amount_to_customer_avg_7d": 5.0,
        "amount_to_customer_avg_30d": None,
    }
    zero = amount_ratios({"amount": 0.0, **dict.fromkeys(vector, 0.0)})
    assert zero == dict.fromkeys(RATIO_FIELDS, 0.0)
    assert set(RATIO_FIELDS) <= set(SERVED_FIELDS)
    served = model_values(vector, event_values({"amount": 100.0}, "2018-04-07T01:00:00Z"))
    assert served["amount_to_customer_avg_7d"] == 5.0 and served["is_night"] == 1 and served["amount"] == 100.0

    rows = [
        {"amount": a, "customer_avg_amount_1d": a1, "customer_avg_amount_7d": a7, "customer_avg_amount_30d": a30}
        for a, a1, a7, a30 in [(13.37, 13.37, 7.1, 9.9), (250.0, 80.0, 33.3, float("nan")), (0.1, 0.3, 1e-3, 41.0)]
    ]
    ts = pd.Timestamp("2018-04-02T12:00:00Z")
    frame = with_event_fields(pd.DataFrame([{**r, "ts": ts} for r in rows]))
    for r, (_, f) in zip(rows, frame.iterrows(), strict=True):
        vector = {k: v for k, v in r.items() if k != "amount"}
        online = model_values(vector, event_values({"amount": r["amount"]}, ts.isoformat()))
        for name in RATIO_FIELDS:
            expected = online[name]
            assert (math.isnan(f[name]) and expected is None) or f[name] == expected, (name, f[name], expected)

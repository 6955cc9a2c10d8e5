"""The event fields beside the OFP vector: the handbook's definitions, one implementation online and offline."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from fp_platform.contracts.features import event_values, with_event_fields

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
    frame = with_event_fields(pd.DataFrame({"ts": times.tz_convert("Europe/Paris"), "amount": 1.0}))
    online = [event_values({"amount": 1.0}, t.isoformat()) for t in times]
    assert frame["is_weekend"].tolist() == [v["is_weekend"] for v in online]
    assert frame["is_night"].tolist() == [v["is_night"] for v in online]
    assert sum(frame["is_night"]) == 9 * 7 and sum(frame["is_weekend"]) == 3 * 24  # 2018-04-01 is a Sunday

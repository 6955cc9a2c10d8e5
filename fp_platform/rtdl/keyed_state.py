"""The decision processor's keyed state, in memory: CSFB's join frames and OFP's windows.

The Kafka Streams / Flink idea: the state is a pure function of the records applied (the input topics
are its changelog), kept in process as keyed structures, so a feature vector or a flow binding is a
dictionary lookup and a bisect, not a database round trip. The definition is the shared contract
(`contracts/features.py`, which OFS rebuilds in DuckDB); the structures only index it:

- per customer, its transactions sorted by (ts, transaction_id) with their amounts;
- per terminal, its transactions sorted by (ts, transaction_id);
- per transaction, its label assertions sorted by observation time;
- per (card, device) and (card, ip), the earliest sighting (ts, flow_id): a flow's device is new when
  its own sighting is that earliest one;
- per flow, its join frame (the three context parts) and the traffic events that wait on it.

Adding a record returns the stored events whose vector or binding it may change (a late record: another
partition, a late label), so the caller recomputes exactly those and the result does not depend on the
order the bus was read in. Times are integer microseconds since the epoch (UTC), as the day windows are.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fp_platform.contracts.features import DELAY_DAYS, FEATURE_NAMES, FLAG_NAMES, WINDOW_DAYS

DAY_US = 86_400_000_000
SPAN_US = max(WINDOW_DAYS) * DAY_US
DELAY_US = DELAY_DAYS * DAY_US
_INF = float("inf")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
VECTOR_KEYS = (*FEATURE_NAMES, *FLAG_NAMES)

READY, MISSING_CONTEXT, LATE_CONTEXT = "READY", "MISSING_CONTEXT", "LATE_CONTEXT"
# event class -> the frame columns it fills, from the envelope ("@event_id", "@ts") or its payload
PARTS: dict[str, dict[str, str]] = {
    "context.arrival_events": {"arrival_event_id": "@event_id", "arrival_ts": "@ts", "channel": "channel"},
    "context.arrival_entities": {
        "entities_event_id": "@event_id",
        "entities_ts": "@ts",
        "card_id": "card_id",
        "device_id": "device_id",
        "ip": "ip",
    },
    "context.flow_anchor.fraud": {
        "anchor_event_id": "@event_id",
        "anchor_ts": "@ts",
        "transaction_id": "transaction_id",
    },
}
_PART_NAMES = {
    "arrival_event_id": "arrival_event",
    "entities_event_id": "arrival_entities",
    "anchor_event_id": "flow_anchor",
}
_PART_TS = (("arrival_event", "arrival_ts"), ("arrival_entities", "entities_ts"), ("flow_anchor", "anchor_ts"))


def ts_us(iso: str) -> int:
    """Microseconds since the epoch of an envelope's UTC timestamp."""
    dt = datetime.fromisoformat(iso)
    return ((dt if dt.tzinfo else dt.replace(tzinfo=UTC)) - _EPOCH) // _MICROSECOND


def from_us(us: int) -> datetime:
    """The UTC datetime of `ts_us`'s microseconds (what Postgres stores)."""
    return _EPOCH + timedelta(microseconds=us)


def binding_status(frame: dict[str, Any] | None, transaction_id: int, event_ts: int) -> tuple[str, list[str]]:
    """READY (all parts, the anchor binds this transaction, none stamped after it), MISSING_CONTEXT (a part
    absent or the anchor binds another transaction) or LATE_CONTEXT (complete, a part stamped after), with
    the reasons. `frame` None: no part seen yet."""
    frame = frame or {}
    missing = [f"{name} missing" for col, name in _PART_NAMES.items() if frame.get(col) is None]
    if frame.get("anchor_event_id") is not None and frame.get("transaction_id") != transaction_id:
        missing.append(f"flow_anchor binds transaction {frame.get('transaction_id')}, not {transaction_id}")
    if missing:
        return MISSING_CONTEXT, missing
    late = [f"{name} stamped after the transaction" for name, col in _PART_TS if frame[col] > event_ts]
    return (LATE_CONTEXT, late) if late else (READY, [])


@dataclass(slots=True)
class Tx:
    """A traffic event as the state indexes it (origin: where it came from on the bus)."""

    event_id: str
    transaction_id: int
    flow_id: str
    customer_id: str
    terminal_id: int
    amount: float
    ts: int
    origin: tuple[str, int, int]


@dataclass
class KeyedState:
    """CSFB frames + OFP windows of one run; every method is deterministic in the records applied."""

    events: dict[str, Tx] = field(default_factory=dict)
    by_transaction: dict[int, str] = field(default_factory=dict)  # transaction_id -> event_id
    customers: dict[str, list[tuple[int, int, float, str]]] = field(default_factory=dict)
    terminals: dict[int, list[tuple[int, int, str]]] = field(default_factory=dict)
    labels: dict[int, list[tuple[int, bool]]] = field(default_factory=dict)  # observed_at, is_fraud
    sightings: dict[str, tuple[str, str, str, int]] = field(default_factory=dict)  # flow -> card, device, ip, ts
    first_device: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    first_ip: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    frames: dict[str, dict[str, Any]] = field(default_factory=dict)
    flow_events: dict[str, list[str]] = field(default_factory=dict)

    # --- applying records ---------------------------------------------------------------------------
    def add_traffic(self, tx: Tx) -> set[str]:
        """A traffic event; returns the events whose vector it may change (itself included)."""
        if tx.event_id in self.events:
            return set()
        self.events[tx.event_id] = tx
        self.by_transaction[tx.transaction_id] = tx.event_id
        self.flow_events.setdefault(tx.flow_id, []).append(tx.event_id)
        cust = self.customers.setdefault(tx.customer_id, [])
        insort(cust, (tx.ts, tx.transaction_id, tx.amount, tx.event_id))
        term = self.terminals.setdefault(tx.terminal_id, [])
        insort(term, (tx.ts, tx.transaction_id, tx.event_id))
        dirty = {tx.event_id}
        # customer windows that include it: later events of the customer within the span
        i = bisect_right(cust, (tx.ts, tx.transaction_id, _INF))
        for ts, _, _, e in cust[i:]:
            if ts >= tx.ts + SPAN_US:
                break
            dirty.add(e)
        dirty.update(self._terminal_events(tx.terminal_id, tx.ts + DELAY_US, tx.ts + DELAY_US + SPAN_US))
        return dirty

    def add_sighting(self, flow_id: str, card_id: str, device_id: str, ip: str, ts: int) -> set[str]:
        """A card sighting (arrival entities); the events of its flow and of the flow it displaces as the first
        to show the card's device (ip)."""
        if flow_id in self.sightings:
            return set()
        self.sightings[flow_id] = (card_id, device_id, ip, ts)
        dirty = set(self.flow_events.get(flow_id, ()))
        for firsts, key in ((self.first_device, (card_id, device_id)), (self.first_ip, (card_id, ip))):
            prev = firsts.get(key)
            if prev is None or (ts, flow_id) < prev:
                firsts[key] = (ts, flow_id)
                if prev is not None:
                    dirty.update(self.flow_events.get(prev[1], ()))
        return dirty

    def add_label(self, transaction_id: int, is_fraud: bool, observed_at: int) -> set[str]:
        """A label assertion; the events whose terminal windows see it (from its observation on)."""
        lst = self.labels.setdefault(transaction_id, [])
        i = bisect_left(lst, (observed_at,))
        if i < len(lst) and lst[i][0] == observed_at:
            return set()  # one assertion per transaction and observation time (the first one stays)
        lst.insert(i, (observed_at, is_fraud))
        event_id = self.by_transaction.get(transaction_id)
        if event_id is None:
            return set()  # its transaction, once applied, brings the windows it reaches
        x = self.events[event_id]
        return self._terminal_events(x.terminal_id, max(observed_at, x.ts + DELAY_US), x.ts + DELAY_US + SPAN_US)

    def add_part(self, event_class: str, flow_id: str, values: dict[str, Any]) -> list[str]:
        """A context part of a flow's join frame (the first value of each column stays); the traffic events
        of the flow, whose binding it may change."""
        frame = self.frames.setdefault(flow_id, {})
        for col, value in values.items():
            if frame.get(col) is None:
                frame[col] = value
        return self.flow_events.get(flow_id, [])

    def _terminal_events(self, terminal_id: int, lo: int, hi: int) -> list[str]:
        term = self.terminals.get(terminal_id, [])
        return [e for _, _, e in term[bisect_left(term, (lo,)) : bisect_left(term, (hi,))]]

    # --- reading --------------------------------------------------------------------------------------
    def binding(self, event_id: str) -> tuple[str, list[str]]:
        tx = self.events[event_id]
        return binding_status(self.frames.get(tx.flow_id), tx.transaction_id, tx.ts)

    def frame_complete(self, flow_id: str) -> bool:
        """Whether every context part of the flow has arrived (its binding is final)."""
        frame = self.frames.get(flow_id)
        return frame is not None and all(frame.get(c) is not None for c in _PART_NAMES)

    def vector(self, event_id: str) -> dict[str, Any]:
        """The feature vector of one applied traffic event over everything applied (contracts/features.py)."""
        t = self.events[event_id]
        out: dict[str, Any] = {}
        cust = self.customers[t.customer_id]
        hi = bisect_right(cust, (t.ts, t.transaction_id, _INF))
        for w in WINDOW_DAYS:
            lo = bisect_right(cust, (t.ts - w * DAY_US, _INF))
            n = hi - lo
            out[f"customer_nb_tx_{w}d"] = n
            out[f"customer_avg_amount_{w}d"] = sum(c[2] for c in cust[lo:hi]) / n if n else None
        term = self.terminals[t.terminal_id]
        end = bisect_right(term, (t.ts - DELAY_US, _INF))
        start = bisect_right(term, (t.ts - DELAY_US - SPAN_US, _INF))
        counts = {w: [0, 0] for w in WINDOW_DAYS}
        labelled = 0
        for x_ts, x_tx, _ in term[start:end]:
            fraud = self._fraud_as_of(x_tx, t.ts)
            labelled += fraud is not None
            for w in WINDOW_DAYS:
                if x_ts > t.ts - DELAY_US - w * DAY_US:
                    counts[w][0] += 1
                    counts[w][1] += bool(fraud)
        for w in WINDOW_DAYS:
            out[f"terminal_nb_tx_{w}d"] = counts[w][0]
        for w in WINDOW_DAYS:
            n, f = counts[w]
            out[f"terminal_risk_{w}d"] = f / n if n > 0 else 0.0
        sighting = self.sightings.get(t.flow_id)
        if sighting is None:
            out["card_new_device"] = out["card_new_ip"] = None
        else:
            card, device, ip, s_ts = sighting
            out["card_new_device"] = self.first_device[(card, device)] == (s_ts, t.flow_id)
            out["card_new_ip"] = self.first_ip[(card, ip)] == (s_ts, t.flow_id)
        out["terminal_labels_visible"] = labelled
        out["context_complete"] = sighting is not None
        return out

    def _fraud_as_of(self, transaction_id: int, at: int) -> bool | None:
        """The latest label of the transaction observed by `at` (None: none observed yet)."""
        lst = self.labels.get(transaction_id)
        if not lst:
            return None
        i = bisect_right(lst, (at, True))
        return lst[i - 1][1] if i else None

    # --- snapshots --------------------------------------------------------------------------------------
    def to_doc(self) -> dict[str, Any]:
        """A JSON-able document of the applied records (not of the indexes: they are rebuilt on load), sorted: two
        states of the same records give the same document whatever order they were applied in."""
        return {
            "traffic": sorted(
                [t.event_id, t.transaction_id, t.flow_id, t.customer_id, t.terminal_id, t.amount, t.ts, *t.origin]
                for t in self.events.values()
            ),
            "labels": sorted([tx, obs, fraud] for tx, lst in self.labels.items() for obs, fraud in lst),
            "sightings": sorted([flow, *s] for flow, s in self.sightings.items()),
            "frames": dict(sorted(self.frames.items())),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> KeyedState:
        state = cls()
        for flow, part in doc["frames"].items():
            state.frames[flow] = part
        for e, tx, flow, cust, term, amount, ts, topic, part, off in doc["traffic"]:
            state.add_traffic(Tx(e, tx, flow, cust, term, amount, ts, (topic, part, off)))
        for flow, card, device, ip, ts in doc["sightings"]:
            state.add_sighting(flow, card, device, ip, ts)
        for tx, obs, fraud in doc["labels"]:
            state.add_label(tx, fraud, obs)
        return state

"""The world engine: a deterministic, vectorised transaction simulator with flows and truth.

It implements the transaction model of *Reproducible Machine Learning for Credit Card Fraud
Detection* (Le Borgne et al.), chapter "Transaction data simulator": customers and terminals on a
100×100 grid, terminals within radius r of a customer, Poisson transactions per day, normal time
of day and amounts, and the three fraud scenarios. Everything is drawn as the book draws it: the
profiles with its seeds and draw order, each customer's transactions from its own per-customer
streams (scalar draws in the book's order), the compromised terminals and customers with its
per-day seeds. So the `handbook` scale with the default seeds is the book's dataset transaction for
transaction (an earlier vectorised draw made a world of the same law but not the book's: its random
forest anchor scored AP 0.633 where the book reports 0.658).

Every transaction belongs to a flow: an arrival event shortly before it, the entities seen at
arrival (customer, card, device, ip) and a flow anchor. Truth (fraud flag, scenario) is its own
output; nothing streamed carries it.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fp_platform.contracts.canonical import digest

ENGINE_VERSION = "world-engine/1.0.0"
GRID = 100.0
DAY_S = 86_400
STREAMED_OUTPUTS = ("traffic_fraud", "arrival_events", "arrival_entities", "flow_anchor_fraud")
BASELINE_OUTPUTS = ("traffic_baseline", "flow_anchor_baseline")
TRUTH_OUTPUT = "truth"
MANIFEST_NAME = "_engine_manifest.json"


@dataclass(frozen=True)
class WorldParams:
    n_customers: int
    n_terminals: int
    nb_days: int
    start_date: str = "2018-04-01"
    radius: float = 5.0
    seed: int = 42
    profile_seed_customers: int = 0  # the book's seeds for the profile tables
    profile_seed_terminals: int = 1
    compromised_terminals_per_day: int = 2
    terminal_compromise_days: int = 28
    compromised_customers_per_day: int = 3
    customer_compromise_days: int = 14
    context_signal_strength: float = 0.0  # 0 = handbook parity: fraud carries no context signal
    background_new_device_rate: float = 0.02
    include_baseline: bool = False
    customers_per_part: int = 1000

    @property
    def engine_run_id(self) -> str:
        return "engine_" + digest({"engine": ENGINE_VERSION, "params": asdict(self)})[:32]


SCALES: dict[str, WorldParams] = {
    "smoke": WorldParams(n_customers=200, n_terminals=400, nb_days=35, customers_per_part=50),
    "demo": WorldParams(n_customers=1000, n_terminals=2000, nb_days=42, customers_per_part=250),
    "handbook": WorldParams(n_customers=5000, n_terminals=10000, nb_days=183),
}


def params_for(scale: str, seed: int = 42, **overrides: object) -> WorldParams:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; scales are {', '.join(SCALES)}")
    return replace(SCALES[scale], seed=seed, **overrides)


# --- profiles (the book's tables, same seeds and draw order) -----------------------------------
def customer_profiles(p: WorldParams) -> dict[str, np.ndarray]:
    """x, y ~ U(0,100); mean_amount ~ U(5,100); std = mean/2; tx/day ~ U(0,4) — per customer, in
    the book's draw order (one customer's four uniforms after another)."""
    u = np.random.RandomState(p.profile_seed_customers).random_sample((p.n_customers, 4))
    mean_amount = 5 + 95 * u[:, 2]
    return {
        "x": GRID * u[:, 0],
        "y": GRID * u[:, 1],
        "mean_amount": mean_amount,
        "std_amount": mean_amount / 2,
        "mean_nb_tx_per_day": 4 * u[:, 3],
    }


def terminal_profiles(p: WorldParams) -> dict[str, np.ndarray]:
    u = np.random.RandomState(p.profile_seed_terminals).random_sample((p.n_terminals, 2))
    return {"x": GRID * u[:, 0], "y": GRID * u[:, 1]}


def available_terminals(
    cust: dict[str, np.ndarray], term: dict[str, np.ndarray], radius: float, chunk: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """CSR lists of the terminals within `radius` of each customer: (offsets, terminal ids)."""
    tx, ty = term["x"], term["y"]
    ids, counts = [], []
    for start in range(0, len(cust["x"]), chunk):
        cx = cust["x"][start : start + chunk, None]
        cy = cust["y"][start : start + chunk, None]
        within = (cx - tx) ** 2 + (cy - ty) ** 2 < radius**2
        rows, cols = np.nonzero(within)
        ids.append(cols)
        counts.append(np.bincount(rows, minlength=within.shape[0]))
    counts_all = np.concatenate(counts)
    offsets = np.concatenate([[0], np.cumsum(counts_all)])
    return offsets, np.concatenate(ids).astype(np.int64)


# --- transactions --------------------------------------------------------------------------------
BOOK_SEED = 42  # the default world seed stands for the book's own seeding (customer id, day)


def _stream_seeds(p: WorldParams, key: int) -> tuple[int | list[int], int]:
    """The (numpy legacy, Python `random`) seeds of one keyed stream (a customer's transactions, a day's
    compromises). The book seeds both with the key itself (`np.random.seed(CUSTOMER_ID)`,
    `random.seed(CUSTOMER_ID)`, `sample(random_state=day)`, `random.seed(day)`), so the book's world is drawn
    only when the keys are its keys: any other world seed mixes itself in and draws another world."""
    if p.seed == BOOK_SEED:
        return key, key
    return [p.seed, key], (p.seed << 32) + key


def _customer_transactions(
    p: WorldParams, customer: int, profile: tuple[float, float, float], terminals: list[int]
) -> list[tuple[int, int, int, float]]:
    """One customer's transactions (day, time of day, terminal, unrounded amount) drawn exactly as the book's
    `generate_transactions_table` draws them: one legacy numpy stream and one Python `random` stream seeded
    per customer, scalar draws in its order (a Poisson count a day; per transaction a normal time of day,
    truncated by int(), kept when inside the day; then a normal amount, redrawn uniformly when negative; then
    the terminal). The draws are interleaved and data-dependent, so only this order reproduces the book."""
    np_seed, py_seed = _stream_seeds(p, customer)
    rs, py = np.random.RandomState(np_seed), random.Random(py_seed)
    poisson, normal, uniform, choice = rs.poisson, rs.normal, rs.uniform, py.choice
    mean_amount, std_amount, mean_nb_tx = profile
    out = []
    for day in range(p.nb_days):
        for _ in range(poisson(mean_nb_tx)):
            time_of_day = int(normal(DAY_S / 2, 20_000))
            if 0 < time_of_day < DAY_S:
                amount = normal(mean_amount, std_amount)
                if amount < 0:
                    amount = uniform(0, mean_amount * 2)
                if terminals:
                    out.append((day, time_of_day, choice(terminals), amount))
    return out


def simulate_transactions(p: WorldParams) -> dict[str, np.ndarray]:
    """All transactions, in generation order (customer, then day): the raw, unsorted world. With the book's
    seeds (`BOOK_SEED`, profile seeds 0/1) at the handbook scale it is the book's dataset, transaction for
    transaction (1,754,155 of them)."""
    cust, term = customer_profiles(p), terminal_profiles(p)
    offsets, term_ids = available_terminals(cust, term, p.radius)
    rows: list[tuple[int, int, int, float]] = []
    counts = np.zeros(p.n_customers, dtype=np.int64)
    for c in range(p.n_customers):
        profile = (float(cust["mean_amount"][c]), float(cust["std_amount"][c]), float(cust["mean_nb_tx_per_day"][c]))
        drawn = _customer_transactions(p, c, profile, term_ids[offsets[c] : offsets[c + 1]].tolist())
        counts[c] = len(drawn)
        rows.extend(drawn)
    day, time_of_day, terminal, amount = (
        np.array(col) if rows else np.zeros(0) for col in (zip(*rows, strict=True) if rows else ([],) * 4)
    )
    day = day.astype(np.int64)
    return {
        "customer_id": np.repeat(np.arange(p.n_customers), counts),
        "terminal_id": terminal.astype(np.int64),
        "tx_time_days": day,
        "tx_time_seconds": day * DAY_S + time_of_day.astype(np.int64),
        "amount": np.round(amount.astype(np.float64), 2),
    }


def add_frauds(p: WorldParams, tx: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The book's three scenarios (`add_frauds`), applied in its order with its draws (a later scenario
    overwrites an earlier): (1) amount > 220; (2) each day, 2 terminals compromised for 28 days
    (`TERMINAL_ID.sample(n=2, random_state=day)`, i.e. the first of a legacy permutation); (3) each day, 3
    customers compromised for 14 days, a third of their transactions in that window ×5, drawn by
    `random.seed(day); random.sample(...)` over those transactions in time order (the book's index is the
    time-sorted one)."""
    n = len(tx["amount"])
    fraud = np.zeros(n, dtype=np.int8)
    scenario = np.zeros(n, dtype=np.int8)
    amount = tx["amount"].copy()
    s1 = amount > 220
    fraud[s1], scenario[s1] = 1, 1

    days, terminals, customers = tx["tx_time_days"], tx["terminal_id"], tx["customer_id"]
    seconds = tx["tx_time_seconds"]
    last_day = int(days.max()) if n else 0
    for d in range(last_day):
        np_seed, _ = _stream_seeds(p, d)
        compromised = np.random.RandomState(np_seed).permutation(p.n_terminals)[: p.compromised_terminals_per_day]
        hit = (days >= d) & (days < d + p.terminal_compromise_days) & np.isin(terminals, compromised)
        fraud[hit], scenario[hit] = 1, 2
    for d in range(last_day):
        np_seed, py_seed = _stream_seeds(p, d)
        compromised = np.random.RandomState(np_seed).permutation(p.n_customers)[: p.compromised_customers_per_day]
        candidates = np.flatnonzero(
            (days >= d) & (days < d + p.customer_compromise_days) & np.isin(customers, compromised)
        )
        candidates = candidates[np.argsort(seconds[candidates], kind="stable")]  # the book's index order
        # random.sample picks positions from the population's length alone: sampling a range is sampling the list
        picked = random.Random(py_seed).sample(range(len(candidates)), k=len(candidates) // 3)
        chosen = candidates[np.asarray(picked, dtype=np.int64)]
        amount[chosen] = np.round(amount[chosen] * 5, 2)
        fraud[chosen], scenario[chosen] = 1, 3
    return {"amount_fraud": amount, "tx_fraud": fraud, "tx_fraud_scenario": scenario}


# --- flows and outputs ---------------------------------------------------------------------------
def _event_ids(output_id: str, engine_run_id: str, keys: np.ndarray) -> pa.Array:
    prefix = f"{output_id}|{engine_run_id}|".encode()
    return pa.array(["evt_" + hashlib.sha256(prefix + str(k).encode()).hexdigest()[:32] for k in keys.tolist()])


def build_outputs(p: WorldParams) -> dict[str, pa.Table]:
    """Every output table, rows in generation order (the stream sort orders them later)."""
    tx = simulate_transactions(p)
    frauds = add_frauds(p, tx)
    n = len(tx["amount"])
    rng = np.random.Generator(np.random.PCG64([p.seed, 4]))
    run_id = p.engine_run_id
    start = np.datetime64(datetime.strptime(p.start_date, "%Y-%m-%d").replace(tzinfo=None), "ms")

    transaction_id = np.arange(n, dtype=np.int64)
    flow_id = pa.array([f"flow_{i:09d}" for i in range(n)])
    tx_ts = start + (tx["tx_time_seconds"] * 1000).astype("timedelta64[ms]")
    lead_ms = rng.integers(2_000, 60_000, size=n)
    arrival_ts = tx_ts - lead_ms.astype("timedelta64[ms]")
    entities_ts = arrival_ts + np.timedelta64(500, "ms")
    anchor_ts = tx_ts - np.timedelta64(1, "ms")

    customer, terminal = tx["customer_id"], tx["terminal_id"]
    new_context = rng.random(n) < p.background_new_device_rate
    new_context |= (frauds["tx_fraud"] == 1) & (rng.random(n) < p.context_signal_strength)
    device = np.where(new_context, "dev_x" + transaction_id.astype(str), "dev_" + customer.astype(str))
    ip = np.where(new_context, "ip_x" + transaction_id.astype(str), "ip_" + customer.astype(str))

    ts_type = pa.timestamp("ms", tz="UTC")
    common = {
        "flow_id": flow_id,
        "merchant_id": pa.array(np.char.add("merchant_", terminal.astype(str))),
        "customer_id": pa.array(np.char.add("cust_", customer.astype(str))),
    }
    card = pa.array(np.char.add("card_", customer.astype(str)))

    def traffic(amount: np.ndarray, output_id: str) -> pa.Table:
        return pa.table(
            {
                "event_id": _event_ids(output_id, run_id, transaction_id),
                "ts_utc": pa.array(tx_ts, ts_type),
                "transaction_id": transaction_id,
                **common,
                "card_id": card,
                "terminal_id": terminal,
                "amount": amount,
                "tx_time_seconds": tx["tx_time_seconds"],
                "tx_time_days": tx["tx_time_days"],
            }
        )

    def anchor(output_id: str) -> pa.Table:
        return pa.table(
            {
                "event_id": _event_ids(output_id, run_id, transaction_id),
                "ts_utc": pa.array(anchor_ts, ts_type),
                **common,
                "transaction_id": transaction_id,
            }
        )

    outputs = {
        "traffic_fraud": traffic(frauds["amount_fraud"], "traffic_fraud"),
        "arrival_events": pa.table(
            {
                "event_id": _event_ids("arrival_events", run_id, transaction_id),
                "ts_utc": pa.array(arrival_ts, ts_type),
                **common,
                "channel": pa.array(np.where(rng.random(n) < 0.3, "ecom", "card_present")),
            }
        ),
        "arrival_entities": pa.table(
            {
                "event_id": _event_ids("arrival_entities", run_id, transaction_id),
                "ts_utc": pa.array(entities_ts, ts_type),
                **common,
                "card_id": card,
                "device_id": pa.array(device),
                "ip": pa.array(ip),
            }
        ),
        "flow_anchor_fraud": anchor("flow_anchor_fraud"),
        TRUTH_OUTPUT: pa.table(
            {
                "transaction_id": transaction_id,
                "flow_id": flow_id,
                "ts_utc": pa.array(tx_ts, ts_type),
                "tx_fraud": frauds["tx_fraud"],
                "tx_fraud_scenario": frauds["tx_fraud_scenario"],
            }
        ),
    }
    if p.include_baseline:
        outputs["traffic_baseline"] = traffic(tx["amount"], "traffic_baseline")
        outputs["flow_anchor_baseline"] = anchor("flow_anchor_baseline")
    return outputs


def write_outputs(p: WorldParams, out_dir: Path) -> dict:
    """Write parquet parts per output (split by customer ranges) and the engine manifest."""
    outputs = build_outputs(p)
    customer_idx = np.char.replace(
        outputs["traffic_fraud"]["customer_id"].to_numpy(zero_copy_only=False).astype(str), "cust_", ""
    ).astype(np.int64)
    part_of = customer_idx // p.customers_per_part  # every output row i belongs to transaction i
    manifest_outputs = {}
    for output_id, table in outputs.items():
        target = out_dir / f"output_id={output_id}"
        target.mkdir(parents=True, exist_ok=True)
        files = []
        for part in range(int(part_of.max()) + 1 if len(part_of) else 0):
            rows = np.flatnonzero(part_of == part)
            name = f"part-{part:05d}.parquet"
            pq.write_table(table.take(rows), target / name, compression="zstd")
            files.append({"file": name, "rows": len(rows)})
        manifest_outputs[output_id] = {
            "rows": table.num_rows,
            "files": files,
            "streamed": output_id in STREAMED_OUTPUTS + BASELINE_OUTPUTS,
        }
    manifest = {
        "engine_version": ENGINE_VERSION,
        "engine_run_id": p.engine_run_id,
        "params": asdict(p),
        "outputs": manifest_outputs,
    }
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest

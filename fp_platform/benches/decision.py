"""`fp-platform bench decision`: how long the decision lane takes from admission to a published decision,
and how many transactions per second it sustains end to end (DESIGN.md §9).

Why this shape: the figure that matters to a merchant is "event admitted → decision on the bus", across
process boundaries, so the bench runs the production topology — the real IG service and the real core
and decision-lane workers as supervised processes of their packs for a fresh run — and offers a world's
stream to IG over HTTP in WSP order. Latency per traffic event = Kafka timestamp of its
`rtdl.decision_response` (producer create time ≈ publish after the processor's commit) − its IG receipt's
`received_at` (IG's clock when the request arrived), broken into hops: receipt → on the bus (IG's
produce) → processor intake → decided → published. Phase A paces traffic at `rate`/s (context
interleaved as it comes); phase B offers the next slice as fast as IG takes it and measures decisions/s
from the first to the last decision of that slice. A warm-up slice first lets the workers pass older
runs' records and load their state, so neither phase measures start-up. Each phase ends when the lane
has caught up (every admitted traffic event decided, featurised and bound), so the next starts clean;
latencies carry the share of degraded decisions, since a decision made without context is quicker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from confluent_kafka import TopicPartition

from fp_platform.benches.ingest import through_ig
from fp_platform.benches.rtdl import world_envelopes
from fp_platform.contracts.bench_line import bench_line
from fp_platform.contracts.envelope import record_identity
from fp_platform.contracts.ids import new_platform_run_id
from fp_platform.control.settings import WspSettings
from fp_platform.control.world_streamer import IgClient
from fp_platform.handles import Handles
from fp_platform.operate import readiness, supervisor
from fp_platform.operate.packs import SPINE_PACKS, Pack
from fp_platform.rtdl.decision_lane import admitted_traffic
from fp_platform.rtdl.policy import load_policy
from fp_platform.substrate import bus, db

Log = Callable[[str], None]
Items = list[tuple[str, dict]]
PACK_KEYS = ("PACK_ID_CONTROL_INGRESS", "PACK_ID_RTDL_CORE", "PACK_ID_RTDL_DECISION_LANE")
TRAFFIC = "traffic.fraud"
P99_GOAL_MS, SUSTAINED_GOAL_TX_S = 50.0, 2000.0


def _packs() -> tuple[Pack, ...]:
    return tuple(p for p in SPINE_PACKS if p.pack_key in PACK_KEYS)


def start_packs(h: Handles, conn: psycopg.Connection, run_id: str, log: Log, timeout_s: float = 120.0) -> None:
    """Start the packs for the run and wait until each worker confirms the run scope (as P2 does)."""
    statuses = readiness.start_and_wait(h, conn, run_id, timeout_s, log, _packs())
    pending = [
        f"{st.component} {st.state} {st.detail}".strip() for st in statuses if not readiness.confirmed(h, st, run_id)
    ]
    if pending:
        raise RuntimeError(f"packs not up within {timeout_s:.0f}s: {pending}")


def fresh_run_id(conn: psycopg.Connection) -> str:
    """A run id no process has used: ids have second resolution and tests running alongside take `now`'s,
    so take the latest past second that has nothing admitted, decided or featurised under it."""
    now = datetime.now(UTC)
    for back in range(1, 600):
        run_id = new_platform_run_id(now - timedelta(seconds=back))
        if not conn.execute(
            "SELECT EXISTS (SELECT 1 FROM ig_receipts WHERE platform_run_id = %(r)s)"
            " OR EXISTS (SELECT 1 FROM df_decisions WHERE platform_run_id = %(r)s)"
            " OR EXISTS (SELECT 1 FROM ofp_features WHERE platform_run_id = %(r)s)",
            {"r": run_id},
        ).fetchone()[0]:
            return run_id
    raise RuntimeError("no unused run id in the last 10 minutes")


def split(items: Items, traffic: int) -> tuple[Items, Items]:
    """The items up to and including the `traffic`-th traffic event, and the rest."""
    seen = 0
    for i, (_, env) in enumerate(items):
        seen += env["event_class"] == TRAFFIC
        if seen == traffic:
            return items[: i + 1], items[i + 1 :]
    return items, []


def send_paced(client: IgClient, items: Items, rate: float, batch_max: int, inflight: int) -> float:
    """Offer `items` in order, each traffic event at its slot (k / rate s), its context with it or before;
    each request holds everything due, up to `inflight` at once (as WSP), so a slow answer makes the next
    request bigger rather than the events late. Returns the wall seconds."""
    due, k = [], 0
    for _, env in items:
        due.append(k / rate)
        k += env["event_class"] == TRAFFIC

    def send(chunk: Items) -> None:
        receipts, _ = client.send([env for _, env in chunk])
        if bad := [r for r in receipts if r["decision"] != "ADMIT"]:
            raise RuntimeError(f"IG did not admit {len(bad)} events, e.g. {bad[0]}")

    i, pending, t0 = 0, set(), time.monotonic()
    with ThreadPoolExecutor(max_workers=inflight) as pool:
        while i < len(items) or pending:
            for f in [f for f in pending if f.done()]:
                pending.discard(f)
                f.result()
            now = time.monotonic() - t0
            j = i
            while j < len(items) and due[j] <= now and j - i < batch_max:
                j += 1
            if j > i and len(pending) < inflight:
                pending.add(pool.submit(send, items[i:j]))
                i = j
            else:
                time.sleep(max(0.0005, min(0.002, due[i] - now)) if i < len(items) else 0.002)
    return time.monotonic() - t0


def catch_up(h: Handles, conn: psycopg.Connection, run_id: str, timeout_s: float, log: Log) -> None:
    """Wait until DF has decided every admitted traffic event of the run and OFP and CSFB have a vector and a
    binding for each (DF may decide without them once they stall; the next phase must not start behind
    them), supervising the packs meanwhile."""

    def done() -> tuple[bool, str]:
        admitted = admitted_traffic(conn, run_id)
        vectors, bindings, decided = conn.execute(
            "SELECT (SELECT count(*) FROM ofp_features WHERE platform_run_id = %(r)s),"
            " (SELECT count(*) FROM csfb_flow_bindings WHERE platform_run_id = %(r)s),"
            " (SELECT count(*) FROM df_decisions WHERE platform_run_id = %(r)s)",
            {"r": run_id},
        ).fetchone()
        progress = (
            f"{decided:,} of {admitted:,} admitted traffic events decided (OFP vectors {vectors:,}, CSFB"
            f" bindings {bindings:,})"
        )
        return min(decided, vectors, bindings) >= admitted, progress

    def tick() -> None:
        for st in supervisor.reconcile(h, conn, run_id, _packs(), log=log):
            if st.state != supervisor.RUNNING:
                log(f"worker {st.component} is {st.state} {st.detail} (restarts {st.restarts}); see {st.log}")

    ok, waited = supervisor.wait_until(done, timeout_s, tick, log)
    if not ok:
        raise RuntimeError(f"decision lane not caught up within {timeout_s:.0f}s: {done()[1]}")
    log(f"caught up in {waited}s: {done()[1]}")


def rtdl_ends(h: Handles) -> dict[int, int]:
    """Where the rtdl topic ends now (reported; may lag the real end, never lead it)."""
    topic, c = h.topic("FP_BUS_RTDL_V1").name, bus.scan_consumer(h)
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in bus.partitions(c, topic)}
    finally:
        c.close()


def published_ms(
    h: Handles, run_id: str, starts: dict[int, int], want: set[str], log: Log, timeout_s: float = 60.0
) -> dict[str, float]:
    """decision_id -> Kafka timestamp (ms) of its first `rtdl.decision_response`; the outbox sends after
    DF's commit, so re-read to the end until every wanted decision is there (or the timeout)."""
    topic, c, nxt = h.topic("FP_BUS_RTDL_V1").name, bus.scan_consumer(h), dict(starts)
    out: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            for p in bus.partitions(c, topic):
                for m in bus.read_partition(c, topic, p, nxt.get(p, 0)):
                    nxt[p] = m.offset() + 1
                    ident = record_identity(m.headers())
                    if ident.get("platform_run_id") == run_id and ident.get("event_class") == "rtdl.decision_response":
                        out[ident["event_id"]] = min(out.get(ident["event_id"], np.inf), m.timestamp()[1])
            missing = want - out.keys()
            if not missing or time.monotonic() > deadline:
                if missing:
                    log(f"{len(missing)} decisions never seen on {topic}, e.g. {next(iter(missing))}")
                return out
            time.sleep(1.0)
    finally:
        c.close()


def timings(conn: psycopg.Connection, run_id: str) -> dict[str, tuple[str, float, float, float, float, bool, bool]]:
    """traffic event_id -> (decision_id, IG receipt, on the bus, processor intake, DF decided (epoch ms), degraded,
    parked). The receipt is IG's clock when the request arrived; on the bus the traffic record's Kafka timestamp
    (IG's produce); intake the processor's clock when its micro-batch was taken from the bus; decided when DF
    decided it (before the batch's commit)."""
    rows = conn.execute(
        "SELECT r.event_id, d.decision_id, extract(epoch FROM r.received_at) * 1000,"
        " extract(epoch FROM coalesce(d.bus_at, d.intake_at, d.decided_at)) * 1000,"
        " extract(epoch FROM coalesce(d.intake_at, d.decided_at)) * 1000, extract(epoch FROM d.decided_at) * 1000,"
        " cardinality(d.degrade_reasons) > 0, coalesce(d.parked_ms, 0) > 0 FROM ig_receipts r"
        " JOIN df_decisions d ON d.platform_run_id = r.platform_run_id AND d.event_id = r.event_id"
        " WHERE r.platform_run_id = %s AND r.decision = 'ADMIT' AND r.event_class = %s",
        (run_id, TRAFFIC),
    )
    return {e: (d, float(rc), float(bs), float(it), float(dc), g, pk) for e, d, rc, bs, it, dc, g, pk in rows}


# hop -> (from, to) as indexes into (receipt, on the bus, intake, decided, published)
HOPS = {"receipt_to_bus": (0, 1), "bus_to_intake": (1, 2), "intake_to_decided": (2, 3), "decided_to_published": (3, 4)}


def hop_breakdown(rows: list[tuple[float, float, float, float, float]]) -> dict[str, dict[str, float]]:
    """p50/p99 of each hop (receipt → on the bus → intake → decided → published) over (receipt, bus, intake,
    decided, published)."""
    out = {}
    for hop, (a, b) in HOPS.items():
        vals = np.array([r[b] - r[a] for r in rows])
        out[hop] = {f"p{q}_ms": round(float(np.percentile(vals, q)), 1) for q in (50, 99)}
    return out


def phase_lines(name: str, ids: list[str], t: dict, pub: dict[str, float], params: dict, log: Log) -> list[dict]:
    rows = [(t[e], pub[t[e][0]]) for e in ids if e in t and t[e][0] in pub]
    lat = np.array([p - rc for (_, rc, *_), p in rows])
    q = {p: round(float(np.percentile(lat, p)), 1) for p in (50, 95, 99)}
    label = "" if name == "paced" else f"{name}_"
    degraded = round(sum(t_[5] for t_, _ in rows) / len(rows), 4)
    parked = round(sum(t_[6] for t_, _ in rows) / len(rows), 4)
    params = {**params, "phase": name, "decisions_timed": len(rows), "degraded_share": degraded, "parked_share": parked}
    log(
        f"{name}: {len(rows):,} decisions ({degraded:.1%} degraded, {parked:.1%} parked), latency p50 {q[50]} ms,"
        f" p95 {q[95]} ms, p99 {q[99]} ms, max {lat.max():.0f} ms"
    )
    lines = [
        bench_line(
            "decision",
            f"decision_latency_{label}p{p}_ms",
            v,
            "ms",
            params,
            higher_is_better=False,
            **(
                {"baseline": "goal: p99 <= 50 ms (Tazama targets 35 ms at 3,000 tx/s)", "baseline_value": P99_GOAL_MS}
                if p == 99
                else {}
            ),
        )
        for p, v in q.items()
    ]
    hops = hop_breakdown([(rc, bs, it, dc, p) for (_, rc, bs, it, dc, *_), p in rows])
    for hop, qs in hops.items():
        log(f"{name}: {hop} p50 {qs['p50_ms']} ms, p99 {qs['p99_ms']} ms")
        for k, v in qs.items():
            lines.append(bench_line("decision", f"decision_{label}{hop}_{k}", v, "ms", params, higher_is_better=False))
    if name != "paced":
        ts = sorted(p for _, p in rows)
        rate = round((len(ts) - 1) / ((ts[-1] - ts[0]) / 1000), 1) if len(ts) > 1 and ts[-1] > ts[0] else 0.0
        log(f"{name}: {rate:,.0f} decisions/s from first to last decision")
        lines.append(
            bench_line(
                "decision",
                "decision_sustained_tx_per_s",
                rate,
                "tx/s",
                {**params, "decision_span_s": round((ts[-1] - ts[0]) / 1000, 2)},
                "goal: >= 2,000 tx/s sustained",
                SUSTAINED_GOAL_TX_S,
            )
        )
    return lines


def run(
    h: Handles,
    scale: str,
    rate: float,
    seconds: float,
    sustained_traffic: int,
    warmup_traffic: int,
    timeout_s: float,
    log: Log,
) -> list[dict]:
    from fp_platform.world.engine import build_outputs, params_for

    with db.connect(h, autocommit=True) as conn:
        busy = [f"{s.component} ({s.platform_run_id})" for s in supervisor.status(h, conn, _packs()) if s.pid]
        if busy:  # never take over someone else's run
            raise RuntimeError(f"pack workers already running: {busy}; stop them first (fp-platform operate down)")
        run_id = fresh_run_id(conn)
        items = world_envelopes(h, run_id, build_outputs(params_for(scale)))
        total = sum(env["event_class"] == TRAFFIC for _, env in items)
        paced_n = min(int(rate * seconds), int((total - warmup_traffic) * 0.6))
        warm, rest = split(items, warmup_traffic)
        paced, rest = split(rest, paced_n)
        fast, _ = split(rest, sustained_traffic)
        ids = {
            name: [env["event_id"] for _, env in part if env["event_class"] == TRAFFIC]
            for name, part in (("paced", paced), ("max_rate", fast))
        }
        log(
            f"world {scale}: {len(items):,} records ({total:,} traffic); run {run_id}: warm-up {warmup_traffic:,},"
            f" paced {len(ids['paced']):,} at {rate:g}/s, max-rate {len(ids['max_rate']):,} traffic events"
        )
        starts = rtdl_ends(h)
        knobs = WspSettings.load(h)
        client, batch, inflight = IgClient(h), knobs.batch_size, knobs.max_inflight
        try:
            start_packs(h, conn, run_id, log)
            log("packs up; warm-up")
            send_paced(client, warm, rate, batch, inflight)
            catch_up(h, conn, run_id, timeout_s, log)
            wall = send_paced(client, paced, rate, batch, inflight)
            offered = {
                "offered_tx_per_s": rate,
                "achieved_offered_tx_per_s": round(len(ids["paced"]) / wall, 1),
                "events": len(paced),
            }
            log(f"paced: {len(paced):,} events in {wall:.1f}s ({offered['achieved_offered_tx_per_s']:,.0f} traffic/s)")
            catch_up(h, conn, run_id, timeout_s, log)
            wall, _, admitted = through_ig(client, [env for _, env in fast], batch, inflight)
            if admitted != len(fast):
                raise RuntimeError(f"max-rate: IG admitted {admitted} of {len(fast)}")
            ig_rate = round(len(ids["max_rate"]) / wall, 1)
            log(f"max-rate: {len(fast):,} events in {wall:.1f}s ({ig_rate:,.0f} traffic/s admitted by IG)")
            catch_up(h, conn, run_id, timeout_s, log)
            t = timings(conn, run_id)
            if (foreign := admitted_traffic(conn, run_id) - sum(map(len, ids.values())) - warmup_traffic) > 0:
                raise RuntimeError(f"{foreign} traffic events of another process share run id {run_id}; run again")
            for at, posture, reasons in conn.execute(
                "SELECT at, posture, reasons FROM dl_posture_events WHERE platform_run_id = %s ORDER BY seq", (run_id,)
            ):
                log(f"DL posture at {at:%H:%M:%S.%f}: {posture} ({'; '.join(reasons)})")
            pub = published_ms(h, run_id, starts, {t[e][0] for n in ids.values() for e in n if e in t}, log)
        finally:
            client.close()
            log(f"stopping the packs: {', '.join(supervisor.down(h, conn, _packs()))}")
        bounds = load_policy(h).processor
        base = {
            "scale": scale,
            "platform_run_id": run_id,
            "batch_linger_ms": bounds["batch_linger_ms"],
            "batch_max_records": int(bounds["batch_max_records"]),
            "park_max_ms": bounds["park_max_ms"],
            "context_slack_ms": bounds["context_slack_ms"],
            "context_grace_ms": bounds["context_grace_ms"],
        }
        return phase_lines("paced", ids["paced"], t, pub, {**base, **offered}, log) + phase_lines(
            "max_rate", ids["max_rate"], t, pub, {**base, "events": len(fast), "ig_admitted_tx_per_s": ig_rate}, log
        )

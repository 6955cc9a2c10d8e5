"""IG fuzzed (issue 20): hypothesis-generated envelopes and schemathesis against IG's own OpenAPI document.
Whatever arrives, IG answers with receipts or a receipted 4xx, never a 5xx, and what it admitted is
exactly what is on the bus for the run."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fp_platform.contracts.payloads import PAYLOAD_MODELS
from fp_platform.substrate import bus, db
from fp_platform_tests.control.test_ig_service import traffic
from fp_platform_tests.support import IgProcess, start_ig, unique_run_id

OUTCOMES = {"ADMIT", "DUPLICATE", "ANOMALY", "QUARANTINE"}  # PUBLISH_AMBIGUOUS would be a failure here


@pytest.fixture(scope="module")
def fuzzed(h, stack) -> Iterator[IgProcess]:
    proc = start_ig(h, unique_run_id())
    yield proc
    proc.proc.terminate()
    proc.proc.wait(20)


hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=250, max_size=300),
    st.sampled_from(["..", ".", "a/b:c", "a_b_c", "x" * 8000, "evt\x00", "'; DROP TABLE ig_receipts; --", ""]),
)
scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    scalars | hostile_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(hostile_text, children, max_size=3),
    max_leaves=12,
)


@st.composite
def envelopes(draw, run_id: str) -> object:
    env = traffic(run_id, "evt_fuzz")
    env.pop("payload_hash", None)  # IG computes it; the fields below change the payload
    env["event_id"] = draw(hostile_text | st.text(alphabet="abcdef0123456789", min_size=8, max_size=16))
    env["payload"]["merchant_id"] = draw(hostile_text)
    env["payload"]["amount"] = draw(st.floats(0, 500))
    for field in draw(st.sets(st.sampled_from(["event_class", "producer", "pins", "payload", "extra", "ts_utc"]))):
        if field == "event_class":
            env[field] = draw(st.sampled_from([*PAYLOAD_MODELS, "unknown"]) | hostile_text)
        elif field == "pins":
            env[field] = draw(st.dictionaries(hostile_text, hostile_text, max_size=3) | json_values)
        elif field == "payload":
            env[field] = draw(json_values)
        else:
            env[field] = draw(json_values)
    return draw(st.sampled_from([env, env, env, draw(json_values)]))


def admitted_equals_bus(h, run_id: str) -> None:
    with db.connect(h) as conn:
        admitted = sorted(
            (t, e)
            for t, e in conn.execute(
                "SELECT topic, event_id FROM ig_receipts WHERE platform_run_id = %s AND decision = 'ADMIT'", (run_id,)
            )
        )
        in_doubt = conn.execute(
            "SELECT count(*) FROM ig_admission_state WHERE platform_run_id = %s AND state = 'IN_DOUBT'", (run_id,)
        ).fetchone()[0]
    c = bus.scan_consumer(h)
    try:
        on_bus = sorted(
            (topic, dict(m.headers())["event_id"].decode())
            for topic in {t for t, _ in admitted}
            for p in bus.partitions(c, topic)
            for m in bus.read_partition(c, topic, p)
            if dict(m.headers() or []).get("platform_run_id") == run_id.encode()
        )
    finally:
        c.close()
    assert in_doubt == 0 and admitted == on_bus


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hypothesis_envelopes_get_receipts_never_a_5xx(h, fuzzed, data):
    batch = data.draw(st.lists(envelopes(fuzzed.run_id), min_size=1, max_size=4))
    resp = httpx.post(
        fuzzed.url + "/v1/ingest/push",
        content=orjson.dumps(batch),
        headers={"content-type": "application/json", "X-IG-Api-Key": fuzzed.key},
        timeout=30,
    )
    assert resp.status_code in (200, 400), (resp.status_code, resp.text[:300])
    if resp.status_code == 200:
        got = resp.json()["receipts"]
        assert len(got) == len(batch) and {r["decision"] for r in got} <= OUTCOMES, got
    else:
        assert resp.json()["error"] == "TOO_DEEP"


def test_zz_after_fuzzing_ig_is_green_and_admitted_equals_the_bus(h, fuzzed):
    health = httpx.get(fuzzed.url + "/v1/ops/health", headers={"X-IG-Api-Key": fuzzed.key}, timeout=10).json()
    assert health["state"] == "GREEN" and health["counters"]["PUBLISH_AMBIGUOUS"] == 0, health
    admitted_equals_bus(h, fuzzed.run_id)


def test_schemathesis_finds_no_server_error(h, stack, tmp_path: Path):
    """schemathesis (coverage + fuzzing phases) against the live gate's /openapi.json: 0 server errors."""
    gate = start_ig(h, unique_run_id())
    try:
        out = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                gate.url + "/openapi.json",
                "--checks",
                "not_a_server_error",
                "--header",
                f"X-IG-Api-Key: {gate.key}",
                "--max-examples",
                "60",
                "--seed",
                "20",
                "--generation-allow-x00",
                "true",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
        health = httpx.get(gate.url + "/v1/ops/health", headers={"X-IG-Api-Key": gate.key}, timeout=10).json()
    finally:
        gate.proc.terminate()
        gate.proc.wait(20)
    assert out.returncode == 0, out.stdout[-4000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", out.stdout)
    assert generated and int(generated[1]) == int(generated[2]) > 200, out.stdout[-2000:]
    assert health["state"] == "GREEN", health
    admitted_equals_bus(h, gate.run_id)

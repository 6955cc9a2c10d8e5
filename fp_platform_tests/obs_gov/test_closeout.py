"""P11's spine close-out judges DF, AL and DLA by a heartbeat taken after the closure began, never by a health
file a worker wrote up to `HEALTH_FILE_INTERVAL_S` earlier (a file written while DLA still had open chains
once failed a fresh clone's `make run`)."""

from __future__ import annotations

import threading
import time

import orjson

from fp_platform.obs_gov import reporter
from fp_platform.substrate import db
from fp_platform_tests.support import unique_run_id

GREEN_COUNTERS = {"run_parity": {"intents": 5, "outcomes": 5}, "lineage_unresolved_total": 0}


def _docs(h, beats: dict) -> dict:
    names = {k: h.get(k) for k in reporter.CLOSEOUT_HEALTH}
    return {
        "heartbeats": {"since_utc": "2026-11-30T00:00:00+00:00", "beats": {names[k]: b for k, b in beats.items()}},
        "wsp": {"options": {}, "outputs": {}},
        "wsp_start": {"stream_view": {}},
    }


def _green() -> dict:
    return {"health_state": "GREEN", "counters": GREEN_COUNTERS, "beat_at_utc": "2026-11-30T00:00:01+00:00"}


def _closeout(h, **changed) -> dict:
    beats = {k: _green() for k in reporter.CLOSEOUT_HEALTH} | changed
    return reporter.spine_closeout(h, _docs(h, beats), {"status": "PASS", "failed": []})


def test_green_beats_with_parity_and_no_open_chain_hold(h):
    assert _closeout(h)["holds"]


def test_a_component_without_a_beat_since_the_closure_began_fails_closed(h):
    out = _closeout(h, COMPONENT_ID_DLA=None)
    assert not out["holds"]
    assert out["problems"] == [f"{h.get('COMPONENT_ID_DLA')}: no heartbeat for the run since 2026-11-30T00:00:00+00:00"]


def test_open_chains_in_dlas_beat_and_al_parity_and_state_each_fail(h):
    dla = _green() | {"counters": {"lineage_unresolved_total": 2}}
    assert _closeout(h, COMPONENT_ID_DLA=dla)["problems"] == ["DLA lineage_unresolved_total = 2"]
    al = _green() | {"counters": {"run_parity": {"intents": 5, "outcomes": 4}}}
    assert _closeout(h, COMPONENT_ID_AL=al)["problems"][0].startswith("AL intake/outcome parity")
    df = _green() | {"health_state": "AMBER"}
    assert _closeout(h, COMPONENT_ID_DF=df)["problems"] == [f"{h.get('COMPONENT_ID_DF')} AMBER"]
    missing = _green() | {"counters": {}}  # a GREEN beat without DLA's counter cannot prove its chains closed
    assert _closeout(h, COMPONENT_ID_DLA=missing)["problems"] == ["DLA lineage_unresolved_total = None"]


def _beat(conn, component: str, run_id: str, counters: dict) -> None:
    """A heartbeat row as `heartbeat.write_beats` writes it, from a host no platform process runs on (so the
    conformance pid scan never picks the test's row up)."""
    conn.execute(
        "INSERT INTO worker_heartbeats (component, pack_id, platform_run_id, consumer_group, pid, host,"
        " health_state, counters, started_at, beat_at) VALUES (%s, 'test', %s, 'test', 0, 'closeout-test', 'GREEN',"
        " %s, now(), now()) ON CONFLICT (component) DO UPDATE SET platform_run_id = EXCLUDED.platform_run_id,"
        " counters = EXCLUDED.counters, beat_at = now()",
        (component, run_id, orjson.dumps(counters).decode()),
    )


def test_only_beats_written_after_the_closure_began_are_judged(h, stack):
    run_id, other_run = unique_run_id(), unique_run_id()
    df, al, dla = (f"closeout_test.{c}.{run_id}" for c in ("df", "al", "dla"))
    with db.connect(h, autocommit=True) as conn, db.connect(h, autocommit=True) as late:
        for c in (df, al, dla):
            _beat(conn, c, run_id, {"lineage_unresolved_total": 3})  # before the closure: stale

        def beat_after_start() -> None:
            _beat(late, df, run_id, {"lineage_unresolved_total": 0})
            _beat(late, al, run_id, {"lineage_unresolved_total": 0})
            _beat(late, dla, other_run, {"lineage_unresolved_total": 0})  # another run's worker took the name

        timer = threading.Timer(1.0, beat_after_start)
        began = time.monotonic()
        timer.start()
        got = reporter.closeout_heartbeats(conn, run_id, [df, al, dla], wait_s=3.0, poll_s=0.1)
        timer.join()
    assert time.monotonic() - began >= 3.0  # it waited for DLA's beat until the limit
    assert got["beats"][df]["counters"] == {"lineage_unresolved_total": 0}
    assert got["beats"][al]["counters"] == {"lineage_unresolved_total": 0}
    assert got["beats"][dla] is None

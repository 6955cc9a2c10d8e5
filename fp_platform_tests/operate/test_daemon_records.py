"""A daemon's record is the only handle on its process: starting over a live one must not orphan it."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from fp_platform.handles import Handles
from fp_platform.operate import daemons
from fp_platform.operate.packs import spec_for


def test_starting_a_worker_whose_recorded_process_lives_is_refused(h: Handles, tmp_path, monkeypatch):
    monkeypatch.setenv("FP_STATE_DIR", str(tmp_path))
    spec = spec_for(h, "COMPONENT_ID_CASE_TRIGGER")
    live = daemons.DaemonRecord(spec.component, spec.pack_id, "platform_A", os.getpid(), [], "x.log", "now")
    path = tmp_path / "operate" / "daemons" / f"{spec.component}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(live.__dict__))
    spawned = []
    monkeypatch.setattr(daemons.subprocess, "Popen", lambda *a, **k: spawned.append(a))
    with pytest.raises(daemons.DaemonError, match=f"already runs as pid {os.getpid()} for platform_A"):
        daemons.start(h, spec, "platform_B")
    assert spawned == []
    assert json.loads(path.read_text())["platform_run_id"] == "platform_A"


def test_two_starts_at_once_spawn_one_process(h: Handles, tmp_path, monkeypatch):
    """The sensor's tick and P2 can start the same worker at the same moment: the check, the spawn and the
    record are one step under the component's lock, so the second start is refused, not a second consumer."""
    monkeypatch.setenv("FP_STATE_DIR", str(tmp_path))
    spec = spec_for(h, "COMPONENT_ID_CASE_TRIGGER")
    spawned = []

    class Spawned:
        pid = os.getpid()  # alive for as long as the test

        def poll(self) -> None:
            return None

    def popen(*a, **k):
        spawned.append(a)
        time.sleep(0.3)  # the window in which a second start used to pass the check too
        return Spawned()

    monkeypatch.setattr(daemons.subprocess, "Popen", popen)
    monkeypatch.setattr(daemons, "ready", lambda _spec: True)
    outcomes: list[str] = []

    def start() -> None:
        try:
            daemons.start(h, spec, "platform_A")
            outcomes.append("started")
        except daemons.DaemonError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(spawned) == 1 and sorted(outcomes)[0].startswith(f"{spec.component} already runs"), outcomes

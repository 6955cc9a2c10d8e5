"""A daemon's record is the only handle on its process: starting over a live one must not orphan it."""

from __future__ import annotations

import json
import os

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

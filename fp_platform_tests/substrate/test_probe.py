"""The worker base's probe surface (the Kubernetes exec probe on the heartbeat file), without a stack."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from fp_platform.substrate import probe
from fp_platform.substrate.heartbeat import Beat
from fp_platform.substrate.worker import Worker

RUN = "platform_20250101T000000Z"


def test_liveness_needs_a_fresh_heartbeat(tmp_path):
    assert "no heartbeat yet" in probe.check("ieg", 30, root=tmp_path)
    path = probe.write_probe("ieg", RUN, "GREEN", root=tmp_path)
    assert probe.check("ieg", 30, root=tmp_path) is None
    mtime = path.stat().st_mtime
    assert probe.check("ieg", 30, root=tmp_path, now=mtime + 29) is None
    assert "stuck" in probe.check("ieg", 30, root=tmp_path, now=mtime + 31)
    assert "no heartbeat yet" in probe.check("archive_writer", 30, root=tmp_path)  # per component


def test_readiness_needs_this_runs_scope_and_a_serving_state(tmp_path):
    probe.write_probe("dla", RUN, "AMBER", root=tmp_path)
    assert probe.check("dla", 30, run_id=RUN, root=tmp_path) is None
    assert "serving run" in probe.check("dla", 30, run_id="platform_20250102T000000Z", root=tmp_path)
    for state in ("RED", "STOPPED"):
        probe.write_probe("dla", RUN, state, root=tmp_path)
        assert probe.check("dla", 30, root=tmp_path) is None  # alive: the process is still there
        assert "not serving" in probe.check("dla", 30, run_id=RUN, root=tmp_path)


def test_a_torn_file_fails_instead_of_passing(tmp_path):
    path = probe.probe_path("cm", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('{"component": "cm", "platform_')
    assert "unreadable" in probe.check("cm", 30, root=tmp_path)


def test_main_exit_codes_follow_the_check(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FP_STATE_DIR", str(tmp_path))
    assert probe.main(["ls", "--max-age-s", "30"]) == 1
    assert "no heartbeat yet" in capsys.readouterr().err
    probe.write_probe("ls", RUN, "GREEN")
    assert probe.main(["ls", "--max-age-s", "30", "--run-id", RUN]) == 0
    old = probe.probe_path("ls").stat().st_mtime - 120
    os.utime(probe.probe_path("ls"), (old, old))
    assert probe.main(["ls", "--max-age-s", "30"]) == 1


@pytest.mark.parametrize(("own_state", "expected"), [("AMBER", "AMBER"), (None, "GREEN")])
def test_a_workers_beat_writes_its_own_components_state(tmp_path, monkeypatch, own_state, expected):
    """The process's component's beat decides (a chaining worker beats for hosted components too); without
    one, the base's own health."""
    monkeypatch.setenv("FP_STATE_DIR", str(tmp_path))
    beats = [Beat("ofp", "rtdl_core", "P8", RUN, "g", "RED", {}, "t")]
    if own_state:
        beats.append(Beat("decision_processor", "rtdl_core", "P8", RUN, "g", own_state, {}, "t"))
    worker = SimpleNamespace(component="decision_processor", run_id=RUN, _health="GREEN")
    Worker._write_probe(worker, beats)
    assert probe.check("decision_processor", 30, run_id=RUN) is None
    assert probe.probe_path("decision_processor").read_text().count(expected) == 1

"""`fp-platform smoke`, the image's start-up check: Definitions load, handles resolve, entrypoints exist, and it needs
no secret. In-process here (cheap: the Definitions are imported once per session); the `slow` test runs it as P(-1)
does on cloud profiles, in a child process whose environment holds no credentials and no state directory."""

from __future__ import annotations

import json

import pytest

from fp_platform.cli import main as cli
from fp_platform.operate import packaging


def test_smoke_reports_the_definitions_and_exits_zero(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FP_STATE_DIR", str(tmp_path))  # no .fp/secrets in reach
    assert cli(["smoke", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["ok"] and not report["problems"]
    assert report["definitions"]["assets"] >= 20 and report["definitions"]["checks"] >= 50
    assert "fp_platform.cli" in report["entrypoints"] and "fp_platform.rtdl" in report["entrypoints"]
    assert list(tmp_path.iterdir()) == []  # it wrote no secret, no state


def test_smoke_names_a_missing_entrypoint(monkeypatch):
    monkeypatch.setattr(packaging, "JOB_MODULES", (*packaging.JOB_MODULES, "fp_platform.nowhere.jobs"))
    from fp_platform.handles import handles

    report = packaging.smoke_report(handles("local"))
    assert not report["ok"] and report["problems"] == ["entrypoint fp_platform.nowhere.jobs is not in the package"]


@pytest.mark.slow
def test_smoke_runs_in_a_child_without_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASHOULDNOTREACH00")
    monkeypatch.setenv("FP_PG_DSN", "postgresql://nobody@127.0.0.1:1/none")
    report = packaging.smoke_subprocess()
    assert report["ok"], report
    assert report["exit_code"] == 0 and report["definitions"]["assets"] >= 20

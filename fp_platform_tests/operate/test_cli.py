"""Every entrypoint is reachable from `fp-platform`: the one-shot jobs (`fp-platform job ...`), the workers
(`fp-platform worker ...`) and the IG service (`fp-platform ig serve`), each in `--help`."""

from __future__ import annotations

import importlib

import pytest

from fp_platform.cli import JOB_MODULES, build_parser, main, worker_planes
from fp_platform.handles import handles


def test_help_lists_jobs_workers_and_the_ingestion_gate(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--help"])
    assert exit_.value.code == 0
    listed = capsys.readouterr().out
    for command in ("job", "worker", "ig", "run", "bench", "operate", "ui"):
        assert f"    {command} " in listed, command


@pytest.mark.parametrize("plane", sorted(JOB_MODULES))
def test_each_job_module_answers_through_the_cli(plane, capsys):
    assert callable(importlib.import_module(JOB_MODULES[plane]).main)
    with pytest.raises(SystemExit) as exit_:
        main(["job", plane, "--help"])
    assert exit_.value.code == 0
    assert "--run-id" in capsys.readouterr().out


def test_every_worker_is_reachable_and_an_unknown_one_is_refused(capsys):
    h = handles()
    components = {h.get(w.component_key) for workers in worker_planes() for w in workers}
    assert {"decision_processor", "archive_writer", "label_store", "environment_conformance"} <= components
    assert main(["worker", "no_such_worker"]) == 2
    err = capsys.readouterr().err
    assert "unknown worker 'no_such_worker'" in err and "decision_processor" in err

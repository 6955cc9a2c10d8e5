"""Every entrypoint is reachable from `fp-platform`: the one-shot jobs (`fp-platform job ...`), the workers
(`fp-platform worker ...`) and the IG service (`fp-platform ig serve`), each in `--help`."""

from __future__ import annotations

import importlib

import pytest

from fp_platform.cli import build_parser, main
from fp_platform.cli.jobs import JOB_MODULES, worker_planes
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
    components = {h.get(w.identity.component_key) for workers in worker_planes() for w in workers}
    assert {"decision_processor", "archive_writer", "label_store", "environment_conformance"} <= components
    assert main(["worker", "no_such_worker"]) == 2
    err = capsys.readouterr().err
    assert "unknown worker 'no_such_worker'" in err and "decision_processor" in err


def test_each_command_group_registers_its_own_parser_next_to_its_handler():
    """One module per group: every subcommand's handler lives in the module that registered it."""
    import argparse

    from fp_platform.cli import GROUPS

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    modules = {g.__name__ for g in GROUPS}
    for name, command in sub.choices.items():
        handler = command.get_default("func")
        if handler is None:  # a group of subcommands (bench): each of them names its handler
            inner = next(a for a in command._actions if isinstance(a, argparse._SubParsersAction))
            handler = next(iter(inner.choices.values())).get_default("func")
        assert handler.__module__ in modules, (name, handler.__module__)


def test_refusals_are_typed_errors_with_their_exit_code(capsys):
    assert main(["run", "--asset", "stream_view/traffic_fraud"]) == 2
    assert "give --run-id too" in capsys.readouterr().err
    assert main(["handles", "NO_SUCH_HANDLE"]) == 1
    assert "NO_SUCH_HANDLE is not in fp_platform/handles/base.yaml" in capsys.readouterr().err
    assert main(["labels", "some_run", "--at", "yesterday"]) == 2
    assert "is not an ISO time" in capsys.readouterr().err
    assert main(["evidence", "ls", "platform_x"]) == 2
    assert "not a platform_run_id: 'platform_x'" in capsys.readouterr().err


def test_a_substrate_that_is_down_is_named_not_traced():
    import psycopg
    from botocore.exceptions import EndpointConnectionError

    from fp_platform.cli import _unreachable

    assert _unreachable(EndpointConnectionError(endpoint_url="http://127.0.0.1:8333")) == "the object store"
    assert _unreachable(psycopg.OperationalError("connection refused")) == "Postgres"
    assert _unreachable(KeyError("a bug stays a traceback")) is None

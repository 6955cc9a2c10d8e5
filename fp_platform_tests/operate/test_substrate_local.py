"""P0 and P17 on the local stack (SeaweedFS, Tansu, embedded Postgres): P0 probes it as it would the cloud and
stays fast; teardown stops a closed run's workers and leaves another run's alone."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from fp_platform.contracts.gates import judge
from fp_platform.handles import Handles
from fp_platform.operate import daemons, gates, teardown
from fp_platform.operate.packs import spec_for
from fp_platform.operate.substrate_ready import substrate_facts
from fp_platform.substrate import db, residuals
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform_tests.support import unique_run_id


def _verdicts(gate_set, doc) -> dict[str, tuple[bool, str]]:
    return {r.name: (r.passed, r.detail) for r in judge(gate_set, doc)}


def test_p0_passes_on_the_local_stack_within_a_couple_of_seconds(h: Handles, stack):
    started = time.monotonic()
    facts = substrate_facts(h, S3ObjectStore(h), unique_run_id(), lambda: db.connect(h))
    elapsed = time.monotonic() - started
    v = _verdicts(gates.SUBSTRATE_READY, facts)
    assert all(passed for passed, _ in v.values()), v
    assert elapsed < 3.0, f"P0 took {elapsed:.1f}s locally"
    assert facts["database"]["role"]["user"] == db.conninfo(h)["user"]  # the application role, not the owner
    assert facts["forbidden_infrastructure"]["applicable"] is False


def test_p0_names_a_topic_whose_partitions_differ_from_the_pin(h: Handles, stack):
    spec = dict(h.values["FP_BUS_CONTROL_V1"])
    skewed = replace(h, values={**h.values, "FP_BUS_CONTROL_V1": {**spec, "partitions": spec["partitions"] + 5}})
    v = _verdicts(
        gates.SUBSTRATE_READY, substrate_facts(skewed, S3ObjectStore(h), unique_run_id(), lambda: db.connect(h))
    )
    assert not v["topics_pinned"][0] and spec["name"] in v["topics_pinned"][1]


def test_p0_as_the_owner_fails_least_privilege(h: Handles, stack):
    """The owner role owns every table: connected as it, P0 says so (the runtime must use the app role)."""
    facts = substrate_facts(h, S3ObjectStore(h), unique_run_id(), lambda: db.connect(h, role=db.OWNER))
    passed, detail = _verdicts(gates.SUBSTRATE_READY, facts)["app_role_least_privilege"]
    assert not passed and "owns" in detail


def test_a_live_sessions_temporary_table_is_no_ownership(h: Handles, stack):
    """A running IG holds a temporary staging table as the app role: P0 started beside it still passes."""
    with db.connect(h, autocommit=True) as live:
        live.execute("CREATE TEMP TABLE p0_probe_staging (x int)")
        facts = substrate_facts(h, S3ObjectStore(h), unique_run_id(), lambda: db.connect(h))
    passed, detail = _verdicts(gates.SUBSTRATE_READY, facts)["app_role_least_privilege"]
    assert passed, detail


@pytest.fixture
def two_runs_workers(h: Handles, stack):
    """A closed run's worker and another run's, each a real supervised process."""
    closed, other = unique_run_id(), unique_run_id()
    mine = spec_for(h, "COMPONENT_ID_ENV_CONFORMANCE")
    theirs = spec_for(h, "COMPONENT_ID_CASE_TRIGGER")
    started = [daemons.ensure(h, spec, run)[0] for spec, run in ((mine, closed), (theirs, other))]
    yield closed, other, started
    for rec in started:
        daemons.stop(rec.component)


def test_teardown_stops_the_closed_runs_workers_only(h: Handles, two_runs_workers):
    closed, other, (mine, theirs) = two_runs_workers
    writer = run_evidence(h, closed)
    writer.write_summary("operate/marker.json", {"note": "the run's evidence"}, phase_id="P2")
    facts = teardown.teardown_facts(h, writer, lambda: db.connect(h))
    v = _verdicts(gates.TEARDOWN, facts)
    assert all(passed for passed, _ in v.values()), v
    assert mine.component in facts["daemons"]["stopped"]
    assert daemons.running(mine.component) is None
    assert daemons.running(theirs.component) is not None  # another run's worker keeps serving it
    assert residuals.local_run_processes(h, [mine.pid], closed) == []
    assert [r.ident for r in residuals.local_run_processes(h, [theirs.pid], other)] == [str(theirs.pid)]

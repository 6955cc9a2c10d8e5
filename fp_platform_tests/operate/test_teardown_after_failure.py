"""P17 still runs when an earlier phase fails: in-process Dagster runs (no stack) of a two-asset stand-in of the
graph's tail — `run_closure` (P11) that fails and `teardown_proof` (P17) downstream of it — show that the
`teardown_after_failure` sensor requests `platform_teardown` for the failed run's partition, that the request
runs P17 alone, and that `fp-platform run`'s in-process path (`runner.close_out_failed`) does the same."""

import pytest
from dagster import (
    AssetExecutionContext,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    Failure,
    RunRequest,
    SkipReason,
    asset,
    build_run_status_sensor_context,
    define_asset_job,
)

from fp_platform import runner
from fp_platform.operate import sensors
from fp_platform.resources import platform_run_partitions

pytestmark = pytest.mark.unit

RUN = "platform_20250101T000000Z"


def _graph(closure_fails: bool = True, teardown_fails: bool = False) -> tuple[Definitions, list[str]]:
    """The stand-in graph tail, the real teardown job and sensor; the list records each teardown's partition."""
    torn_down: list[str] = []

    @asset(name="run_closure", partitions_def=platform_run_partitions)
    def run_closure() -> None:
        if closure_fails:
            raise Failure("P11 obs_gov_closed: a gate failed")

    @asset(name=sensors.TEARDOWN_ASSET, partitions_def=platform_run_partitions, deps=[run_closure])
    def teardown_proof(context: AssetExecutionContext) -> None:
        torn_down.append(context.partition_key)
        if teardown_fails:
            raise Failure("P17: a residual is left")

    platform_run = define_asset_job("platform_run")
    defs = Definitions(
        assets=[run_closure, teardown_proof],
        jobs=[platform_run, sensors.teardown_job],
        sensors=[sensors.teardown_after_failure],
    )
    return defs, torn_down


def _failed_run(defs: Definitions, instance: DagsterInstance, selection: list[str] | None = None):
    instance.add_dynamic_partitions(platform_run_partitions.name, [RUN])
    job = defs.resolve_job_def("platform_run")
    kwargs = {"asset_selection": [AssetKey(name) for name in selection]} if selection else {}
    result = job.execute_in_process(instance=instance, partition_key=RUN, raise_on_error=False, **kwargs)
    assert not result.success
    return result


def _sensor_answer(defs: Definitions, instance: DagsterInstance, dagster_run_id: str):
    run = instance.get_run_by_id(dagster_run_id)
    (failure,) = [
        e.dagster_event
        for e in instance.all_logs(dagster_run_id, of_type=DagsterEventType.RUN_FAILURE)
        if e.dagster_event is not None
    ]
    context = build_run_status_sensor_context(
        sensor_name="teardown_after_failure", dagster_event=failure, dagster_instance=instance, dagster_run=run
    ).for_run_failure()
    return sensors.teardown_after_failure(context)


def test_a_run_failing_before_p17_gets_its_teardown_from_the_failure_sensor():
    defs, torn_down = _graph()
    with DagsterInstance.ephemeral() as instance:
        result = _failed_run(defs, instance)
        assert torn_down == []  # P11 failed: P17 was skipped inside the run
        request = _sensor_answer(defs, instance, result.run_id)
        assert isinstance(request, RunRequest) and request.partition_key == RUN
        assert request.run_key == f"teardown-after-{result.run_id}"
        teardown = defs.resolve_job_def(sensors.TEARDOWN_JOB).execute_in_process(
            instance=instance, partition_key=request.partition_key, tags=request.tags
        )
        assert teardown.success and torn_down == [RUN]
        plan = instance.get_execution_plan_snapshot(instance.get_run_by_id(teardown.run_id).execution_plan_snapshot_id)
        assert plan.step_keys_to_execute == [sensors.TEARDOWN_ASSET]  # P17 alone, not the failed phases again


def test_no_teardown_is_requested_when_p17_ran_or_was_not_selected():
    defs, torn_down = _graph(closure_fails=False, teardown_fails=True)
    with DagsterInstance.ephemeral() as instance:
        result = _failed_run(defs, instance)  # the teardown itself failed: its verdict stands, no loop
        assert torn_down == [RUN]
        assert isinstance(_sensor_answer(defs, instance, result.run_id), SkipReason)
    defs, torn_down = _graph()
    with DagsterInstance.ephemeral() as instance:
        result = _failed_run(defs, instance, selection=["run_closure"])  # a run that was not to end with P17
        assert isinstance(_sensor_answer(defs, instance, result.run_id), SkipReason)
        assert not runner.close_out_failed(defs, instance, result.run_id) and torn_down == []


def test_the_cli_path_runs_p17_alone_after_a_failed_in_process_run():
    defs, torn_down = _graph()
    with DagsterInstance.ephemeral() as instance:
        result = _failed_run(defs, instance)
        assert runner.close_out_failed(defs, instance, result.run_id)
        assert torn_down == [RUN]


def test_the_platform_definitions_hold_the_sensor_and_the_teardown_job():
    from fp_platform.definitions import defs

    Definitions.validate_loadable(defs)  # what `dagster definitions validate` checks, without the instance
    job = defs.resolve_job_def(sensors.TEARDOWN_JOB)
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {sensors.TEARDOWN_ASSET}
    assert "teardown_after_failure" in {s.name for s in defs.sensors}


def test_a_failed_teardown_run_owes_no_teardown_even_before_its_step_started():
    """A teardown run that failed (or was never started: launch failure, run monitor) must not request another
    teardown, which would fail the same way and loop."""
    defs, torn_down = _graph(teardown_fails=True)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(platform_run_partitions.name, [RUN])
        teardown = defs.resolve_job_def(sensors.TEARDOWN_JOB).execute_in_process(
            instance=instance, partition_key=RUN, raise_on_error=False, tags={sensors.TEARDOWN_AFTER_TAG: "x"}
        )
        assert not teardown.success and torn_down == [RUN]
        answer = _sensor_answer(defs, instance, teardown.run_id)
        assert isinstance(answer, SkipReason) and "owes no teardown" in answer.skip_message


def test_a_failed_run_gets_its_teardown_whichever_run_is_active_now(monkeypatch):
    """The sensor reads no active-run record (an unreadable one would have dropped the teardown for good: a
    run-failure sensor's cursor moves on even when it raises); P17 itself is run-scoped (test_cloud_substrate:
    dev_min's stack is destroyed only by the run it serves)."""

    def unreadable(*_a, **_k):
        raise AssertionError("the failure sensor must not depend on the active-run record")

    monkeypatch.setattr(sensors, "read_active_run", unreadable)
    defs, torn_down = _graph()
    with DagsterInstance.ephemeral() as instance:
        result = _failed_run(defs, instance)
        answer = _sensor_answer(defs, instance, result.run_id)
        assert isinstance(answer, RunRequest) and answer.partition_key == RUN

"""dev_min against moto (in process): P0's probes and gates, teardown's residual scan, the ECS supervisor, the
profile's Pipes client and the cloud client paths (Confluent SASL PLAIN, RDS TLS, S3 virtual-host)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import PipesSubprocessClient

from fp_platform.contracts.gates import judge
from fp_platform.handles import Handles, load
from fp_platform.operate import active_run, daemons, ecs_services, gates, readiness, supervisor, teardown
from fp_platform.operate.active_run import active_run_location, read_active_run, record_active_run
from fp_platform.operate.packs import daemon_specs
from fp_platform.operate.substrate_ready import substrate_facts
from fp_platform.resources import ecs_task_params, resources_for_profile
from fp_platform.substrate import bus, db, residuals
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform_tests.operate.cloud import (
    ACCOUNT,
    RUN,
    UNREACHABLE_DB,
    nat_gateway,
    seed_substrate,
    tagged_rds,
)

REPO = Path(__file__).resolve().parents[2]


def _verdicts(gate_set, doc) -> dict[str, tuple[bool, str]]:
    return {r.name: (r.passed, r.detail) for r in judge(gate_set, doc)}


def _no_db():
    raise OSError("no database in this test")


def test_p0_on_dev_min_resolves_buckets_and_secrets_and_names_what_fails(dev_min: Handles):
    h = dev_min
    net = seed_substrate(h)
    assert h.get("S3_EVIDENCE_BUCKET").endswith(f"-{ACCOUNT}-eu-west-2")  # D10: the rendered name
    v = _verdicts(gates.SUBSTRATE_READY, substrate_facts(h, S3ObjectStore(h), RUN, _no_db))
    assert v["buckets_writable"][0], v["buckets_writable"]
    assert v["secrets_present"][0], v["secrets_present"]
    assert v["no_forbidden_infrastructure"] == (True, "no NAT gateway, load balancer or MSK in aws eu-west-2")
    assert not v["topics_pinned"][0] and "broker unreachable" in v["topics_pinned"][1]
    assert not v["database_reachable_tls"][0] and "no database" in v["database_reachable_tls"][1]
    assert not v["app_role_least_privilege"][0]  # not judged without a database: never a pass
    assert not any(S3ObjectStore(h).list_keys(b, "_fp_probe/") for b in h.buckets().values())  # markers removed

    nat = nat_gateway(h, net["subnet"])
    residuals.aws_client(h, "ssm").delete_parameter(Name=h.get("SSM_IG_API_KEY_PATH"))
    residuals.aws_client(h, "s3").delete_bucket(Bucket=h.get("S3_QUARANTINE_BUCKET"))
    v = _verdicts(gates.SUBSTRATE_READY, substrate_facts(h, S3ObjectStore(h), RUN, _no_db))
    assert not v["no_forbidden_infrastructure"][0] and nat in v["no_forbidden_infrastructure"][1]
    assert not v["secrets_present"][0] and h.get("SSM_IG_API_KEY_PATH") in v["secrets_present"][1]
    assert not v["buckets_writable"][0] and h.get("S3_QUARANTINE_BUCKET") in v["buckets_writable"][1]


def _db_doc(**over) -> dict:
    base = {
        "error": None,
        "ssl_mode": "require",
        "tls_required": True,
        "ssl": True,
        "ssl_version": "TLSv1.3",
        "role": {"user": "fp_app", "superuser": False, "createrole": False, "createdb": False, "bypassrls": False},
        "owns": {"tables": 0, "schemas": 0, "databases": 0, "functions": 0},
    }
    return {"database": base | over}


def test_p0_database_gates_want_tls_where_required_and_an_app_role_that_owns_nothing():
    db_gate = next(g for g in gates.SUBSTRATE_READY if g.name == "database_reachable_tls")
    role_gate = next(g for g in gates.SUBSTRATE_READY if g.name == "app_role_least_privilege")
    assert db_gate.judge(_db_doc()).passed
    plain = db_gate.judge(_db_doc(ssl=False, ssl_version=None))
    assert not plain.passed and "not encrypted" in plain.detail
    assert db_gate.judge(_db_doc(ssl=False, ssl_version=None, tls_required=False, ssl_mode="prefer")).passed
    assert role_gate.judge(_db_doc()).passed
    superuser = _db_doc(role={**_db_doc()["database"]["role"], "superuser": True})
    assert "superuser" in role_gate.judge(superuser).detail and not role_gate.judge(superuser).passed
    owner = role_gate.judge(_db_doc(owns={"tables": 3, "schemas": 0, "databases": 0, "functions": 0}))
    assert not owner.passed and "'tables': 3" in owner.detail


def test_teardown_on_dev_min_stops_services_and_names_a_leftover_rds_instance(dev_min: Handles):
    h = dev_min
    seed_substrate(h)
    writer = run_evidence(h, RUN)
    writer.write_summary("operate/marker.json", {"note": "evidence that must survive teardown"}, phase_id="P2")
    destroyed = []

    def destroy(hh: Handles) -> dict:  # what terraform destroy of demo removes (the slow test runs the real one)
        ssm = residuals.aws_client(hh, "ssm")
        names = sorted({hh.get(k) for k in teardown.secret_path_keys(hh)})
        for i in range(0, len(names), 10):  # gone already on a second destroy: deleting nothing is fine
            ssm.delete_parameters(Names=names[i : i + 10])
        ecs = residuals.aws_client(hh, "ecs")
        for arn in ecs.list_services(cluster=hh.get("ECS_CLUSTER_NAME"))["serviceArns"]:
            ecs.delete_service(cluster=hh.get("ECS_CLUSTER_NAME"), service=arn, force=True)
        destroyed.append(hh.profile)
        return {"succeeded": True, "returncode": 0, "tail": []}

    rds = tagged_rds(h)
    facts = teardown.teardown_facts(h, writer, _no_db, destroy=destroy)
    v = _verdicts(gates.TEARDOWN, facts)
    assert destroyed == ["dev_min"]
    assert all(s["desired"] == 0 for s in ecs_services.describe(h).values())
    assert v["daemons_stopped"][0], v["daemons_stopped"]
    assert v["demo_stack_destroyed"][0] and v["demo_credentials_removed"][0]
    assert v["evidence_readable"] == (True, "1 evidence files, unreadable []")
    assert not v["no_cost_bearing_residuals"][0] and rds in v["no_cost_bearing_residuals"][1]
    assert teardown.proof_doc(facts, {})["present"]["db"] is True

    residuals.aws_client(h, "rds").delete_db_instance(DBInstanceIdentifier=rds, SkipFinalSnapshot=True)
    facts = teardown.teardown_facts(h, writer, _no_db, destroy=destroy)
    assert all(passed for passed, _ in _verdicts(gates.TEARDOWN, facts).values()), _verdicts(gates.TEARDOWN, facts)


def test_teardown_fails_when_a_credential_or_a_service_survives(dev_min: Handles):
    h = dev_min
    seed_substrate(h)
    writer = run_evidence(h, RUN)
    writer.write_summary("operate/marker.json", {"note": "x"}, phase_id="P2")
    facts = teardown.teardown_facts(h, writer, _no_db, destroy=lambda _: {"succeeded": False, "tail": ["Error: x"]})
    v = _verdicts(gates.TEARDOWN, facts)
    assert not v["demo_stack_destroyed"][0] and "Error: x" in v["demo_stack_destroyed"][1]
    assert (
        not v["demo_credentials_removed"][0] and h.get("SSM_DB_APP_PASSWORD_PATH") in v["demo_credentials_removed"][1]
    )
    component = daemon_specs(h)[0].component
    residuals.aws_client(h, "ecs").update_service(
        cluster=h.get("ECS_CLUSTER_NAME"), service=residuals.ecs_service_name(h, component), desiredCount=1
    )
    alive = residuals.run_daemons_alive(h, RUN, [component], [])
    assert [r.ident for r in alive] == [residuals.ecs_service_name(h, component)]


def test_teardown_without_a_destroy_function_fails_closed_on_cloud(dev_min: Handles):
    h = dev_min
    seed_substrate(h)
    writer = run_evidence(h, RUN)
    facts = teardown.teardown_facts(h, writer, _no_db, destroy=None)
    v = _verdicts(gates.TEARDOWN, facts)
    assert not v["demo_stack_destroyed"][0] and not v["evidence_readable"][0]  # no evidence: nothing proven


def test_dev_min_supervisor_acts_through_ecs_and_never_starts_a_local_process(dev_min: Handles, monkeypatch):
    h = dev_min
    seed_substrate(h, services_desired=0)
    spawned = []
    monkeypatch.setattr(daemons.subprocess, "Popen", lambda *a, **k: spawned.append(a))
    with pytest.raises(daemons.LocalProcessRefused, match="never as local processes"):
        daemons.start(h, daemon_specs(h)[0], RUN)
    statuses = supervisor.reconcile(h, None, RUN)
    assert {s.state for s in statuses} <= {supervisor.STARTED, supervisor.RUNNING}
    assert all(s["desired"] == 1 for s in ecs_services.describe(h).values())
    assert sorted(supervisor.down(h, None)) == sorted(s.component for s in daemon_specs(h))
    assert all(s["desired"] == 0 for s in ecs_services.describe(h).values())
    assert spawned == []


def test_dev_min_services_of_another_run_are_neither_started_nor_stopped_for_this_one(dev_min: Handles):
    h = dev_min
    seed_substrate(h, services_desired=0, run_id=RUN)
    other = "platform_20261130T020304Z"
    statuses = supervisor.reconcile(h, None, other)
    assert {s.state for s in statuses} == {supervisor.FAILED}, statuses
    assert all(f"serves run {RUN}" in s.detail and "apply the demo stack" in s.detail for s in statuses)
    assert all(s["desired"] == 0 for s in ecs_services.describe(h).values())  # nothing started for the wrong run

    supervisor.reconcile(h, None, RUN)
    assert supervisor.down(h, None, only_run=other) == []  # a closed run's teardown leaves RUN's services
    assert all(s["desired"] == 1 for s in ecs_services.describe(h).values())
    assert sorted(supervisor.down(h, None, only_run=RUN)) == sorted(s.component for s in daemon_specs(h))


def test_pipes_client_is_chosen_by_profile(dev_min: Handles):
    from dagster_aws.pipes import PipesECSClient  # imported where used, as resources.py does (~1 s)

    h = dev_min
    seed = seed_substrate(h)
    assert isinstance(resources_for_profile("local")["pipes"], PipesSubprocessClient)
    assert isinstance(resources_for_profile("dev_min")["pipes"], PipesECSClient)
    params = ecs_task_params(h, "fp_platform.obs_gov.jobs", "report", ["python", "-m", "x"], {"FP_PROFILE": "dev_min"})
    assert params["taskDefinition"] == h.get("TD_REPORTER") and params["launchType"] == "FARGATE"
    assert params["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == [seed["subnet"]]
    assert params["overrides"]["containerOverrides"][0]["command"] == ["python", "-m", "x"]
    assert ecs_task_params(h, "fp_platform.learning.jobs", "ofs", [], {})["taskDefinition"] == h.get("TD_LEARNING_JOB")


def test_confluent_client_config_is_sasl_plain_from_ssm(dev_min: Handles):
    h = dev_min
    seed_substrate(h)
    conf = bus.client_config(h)
    assert conf["security.protocol"] == "SASL_SSL" and conf["sasl.mechanism"] == "PLAIN"
    assert (conf["sasl.username"], conf["sasl.password"]) == ("CONFLUENTKEY", "confluent-secret")
    assert conf["bootstrap.servers"] == "127.0.0.1:9"


def test_rds_connections_require_tls_even_under_an_operator_dsn(dev_min: Handles, monkeypatch):
    h = dev_min
    seed_substrate(h)
    info = db.conninfo(h)
    assert (info["host"], info["sslmode"], info["user"]) == (UNREACHABLE_DB, "require", "fp_app")
    # the runtime is the app role (issue 20); the RDS master (SSM_DB_USER_PATH) only migrates and creates it
    assert db.conninfo(h, role=db.OWNER)["user"] == "value-of-ssm_db_user_path" != info["user"]
    assert "sslmode=require" in db.dsn(h) and "sslmode=require" in db.url(h, role=db.OWNER)
    monkeypatch.setenv("FP_PG_DSN", "postgresql://fp_admin:pw@example.org:5432/postgres?sslmode=disable")
    assert db.conninfo(h, role=db.OWNER)["sslmode"] == "require"  # a cloud DSN cannot weaken TLS


def test_s3_uses_virtual_host_addressing_on_aws_and_path_style_locally(dev_min: Handles, monkeypatch):
    h = dev_min
    seed_substrate(h)
    store = S3ObjectStore(h)
    hosts = []
    store.client.meta.events.register("before-send.s3.PutObject", lambda request, **_: hosts.append(request.url))
    store.put(h.get("S3_EVIDENCE_BUCKET"), "k.json", b"{}", write_once=True)
    assert hosts[0].startswith(f"https://{h.get('S3_EVIDENCE_BUCKET')}.s3.")
    from fp_platform.handles import handles
    from fp_platform.substrate import object_store

    monkeypatch.setattr(object_store, "get_secret", lambda _h, key: f"local-{key}")  # SeaweedFS's keys
    assert S3ObjectStore(handles("local")).client.meta.config.s3["addressing_style"] == "path"


def test_run_until_p0_on_dev_min_starts_no_local_process(dev_min: Handles, monkeypatch, tmp_path):
    """`FP_PROFILE=dev_min fp-platform run --until P0` against moto: P0 probes the cloud substrate and
    records its verdict in the (moto) evidence bucket, and no runtime process is spawned on this machine. It
    fails: moto has no Confluent broker and no RDS endpoint, and P0 names both."""
    import importlib
    import subprocess

    import yaml

    import fp_platform.definitions
    from fp_platform import cli, runner
    from fp_platform.operate import dagster_home

    h = dev_min
    seed_substrate(h)
    monkeypatch.setenv("FP_PROFILE", "dev_min")
    home = tmp_path / "dagster_home"
    home.mkdir()
    instance = yaml.safe_load((REPO / h.get("DAGSTER_INSTANCE_YAML")).read_text())
    # dev_min's instance without its RDS storage and its ECS run launcher (in-process here: sqlite, no launch)
    kept = {k: v for k, v in instance.items() if k not in ("storage", "run_launcher", "run_coordinator")}
    (home / "dagster.yaml").write_text(yaml.safe_dump(kept))

    def prepare(_h: Handles) -> dict[str, str]:
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        return {"DAGSTER_HOME": str(home)}

    monkeypatch.setattr(dagster_home, "prepare", prepare)
    monkeypatch.setattr(runner, "record_active_run", lambda *_: None)
    spawned: list = []

    def refuse(self, args, *a, **k):
        spawned.append(args)
        raise AssertionError(f"a local process was started on dev_min: {args}")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    importlib.reload(fp_platform.definitions)  # the Definitions' resources follow FP_PROFILE
    try:
        code = cli.main(["run", "--until", "P0", "--no-drills"])
    finally:
        monkeypatch.undo()
        importlib.reload(fp_platform.definitions)
    # P(-1) upstream checks the code it packages (git, `uv lock --check`, the smoke entrypoint) where the
    # orchestrator runs; refused here, it fails on its own, and P0 (independent of it) still runs. Nothing of
    # the platform's runtime (a worker, a one-shot job, a service) may be spawned.
    runtime = [a for a in spawned if Path(str(a[0])).name not in ("git", "uv") and "smoke" not in map(str, a)]
    assert runtime == [], runtime
    assert code == 1  # P0 failed: its gates say why
    store = S3ObjectStore(h)
    snapshots = store.list_keys(h.get("S3_EVIDENCE_BUCKET"), "evidence/dev_min/substrate/")
    assert len(snapshots) == 2, snapshots  # substrate_snapshot.json + handle_conformance.json
    run_id = snapshots[0].split("/")[3]
    verdict = run_evidence(h, run_id).read("gates/P0/substrate_snapshot.json")
    gates_seen = {g["name"]: (g["passed"], g["detail"]) for g in verdict["gates"]}
    assert verdict["verdict"] == "FAIL"
    assert gates_seen["buckets_writable"][0] and gates_seen["secrets_present"][0]
    assert gates_seen["no_forbidden_infrastructure"][0]
    assert "broker unreachable" in gates_seen["topics_pinned"][1]
    assert (
        UNREACHABLE_DB in gates_seen["database_reachable_tls"][1]
        or "database" in gates_seen["database_reachable_tls"][1]
    )
    assert not run_evidence(h, run_id).exists("run.json")  # P1 never ran: the blocking gate stopped it


def _p2_duplicates(h: Handles) -> tuple[bool, str]:
    """P2's no_duplicate_consumers verdict on what ECS runs now (statuses as the supervisor reports them)."""
    doc = readiness.readiness_doc(h, supervisor.status(h, None), RUN)  # type: ignore[arg-type]
    return _verdicts(gates.DAEMONS_READY, doc)["no_duplicate_consumers"]


def _worker_task(h: Handles, family: str, command: list[str] | None = None) -> str:
    """A Fargate task in the cluster running `command` (as its task definition's command, or as a run's override)."""
    ecs = residuals.aws_client(h, "ecs")
    container = {"name": h.get("ECS_CONTAINER_NAME"), "image": "platform@sha256:" + "ab" * 32, "memory": 1024}
    if command and family.endswith("-worker"):
        container["command"] = command
    ecs.register_task_definition(family=family, containerDefinitions=[container])
    overrides = {} if family.endswith("-worker") else {"containerOverrides": [{"name": "main", "command": command}]}
    (task,) = ecs.run_task(
        cluster=h.get("ECS_CLUSTER_NAME"), taskDefinition=family, launchType="FARGATE", overrides=overrides
    )["tasks"]
    return task["taskArn"].rsplit("/", 1)[-1]


def test_p2_sees_a_second_ecs_task_or_replica_of_a_worker_and_names_it(dev_min: Handles):
    """On dev_min there is no process list: a duplicate consumer is a second task running the worker's command
    (whatever started it) or a service that wants or runs two tasks; P2 fails naming the service and the tasks."""
    h = dev_min
    seed_substrate(h)
    archive, ieg = daemon_specs(h)[1:3]
    command = ["python", "-m", archive.module, *archive.args]
    first = _worker_task(h, "fp-archive-writer-worker", command)
    assert _p2_duplicates(h) == (True, "one process (or ECS task) per worker")

    second = _worker_task(h, "fp-by-hand", command)  # another family, the command given at launch
    passed, detail = _p2_duplicates(h)
    service = residuals.ecs_service_name(h, archive.component)
    assert not passed and service in detail and first in detail and second in detail, detail
    assert ecs_services.worker_tasks(h)[ieg.component] == []  # matched by command, not by being in the cluster

    ecs = residuals.aws_client(h, "ecs")
    ecs.stop_task(cluster=h.get("ECS_CLUSTER_NAME"), task=second)
    assert _p2_duplicates(h)[0]  # a stopped task consumes nothing
    ecs.update_service(
        cluster=h.get("ECS_CLUSTER_NAME"), service=residuals.ecs_service_name(h, ieg.component), desiredCount=2
    )
    passed, detail = _p2_duplicates(h)
    assert not passed and f"{residuals.ecs_service_name(h, ieg.component)} desired 2" in detail, detail
    assert service not in detail


def test_the_active_run_is_an_object_on_cloud_profiles_and_a_file_locally(dev_min: Handles, tmp_path, monkeypatch):
    """The Dagster daemon runs on ECS/EKS and the operator elsewhere: on the cloud profiles the record both
    read is an object in the evidence bucket; locally it stays a file under the checkout."""
    h = dev_min
    seed_substrate(h)
    assert read_active_run(h) is None
    record_active_run(h, RUN)
    bucket, _, key = active_run_location(h).removeprefix("s3://").partition("/")
    assert bucket == h.get("S3_EVIDENCE_BUCKET") and key == "evidence/dev_min/run_control/ACTIVE_RUN_ID"
    assert S3ObjectStore(h).get(bucket, key) == (RUN + "\n").encode() and read_active_run(h) == RUN
    record_active_run(h, "platform_20261130T020304Z")  # the next run replaces it
    assert read_active_run(h) == "platform_20261130T020304Z"

    local = load("local")
    monkeypatch.setattr(active_run, "project_root", lambda: tmp_path)
    assert read_active_run(local) is None
    record_active_run(local, RUN)
    assert (tmp_path / ".fp" / "ACTIVE_RUN_ID").read_text() == RUN + "\n" and read_active_run(local) == RUN


def test_dev_min_teardown_destroys_the_demo_stack_only_for_the_run_it_serves(dev_min: Handles):
    """The demo stack holds the cluster, the database and the orchestrator of the run it was applied for: a
    late teardown of another run (a failed one, the first of two) must not destroy it, nor count its services
    as its own."""
    h = dev_min
    seed_substrate(h, run_id=RUN)
    other = "platform_20261130T020304Z"
    writer = run_evidence(h, other)
    writer.write_summary("operate/marker.json", {"note": "x"}, phase_id="P2")
    destroyed: list[str] = []
    facts = teardown.teardown_facts(h, writer, _no_db, destroy=lambda hh: destroyed.append(hh.profile) or {})
    v = _verdicts(gates.TEARDOWN, facts)
    assert destroyed == [] and not v["demo_stack_destroyed"][0]
    assert f"serves run {RUN}, not {other}" in v["demo_stack_destroyed"][1]
    assert v["daemons_stopped"][0], v["daemons_stopped"]  # RUN's running services are not this run's residue
    assert all(s["desired"] == 1 for s in ecs_services.describe(h).values())  # and were left running


def test_a_dev_min_service_that_names_no_run_is_never_started(dev_min: Handles):
    h = dev_min
    seed_substrate(h, services_desired=0)
    ecs = residuals.aws_client(h, "ecs")
    bare = ecs.register_task_definition(
        family="fp-bare",
        containerDefinitions=[{"name": "main", "image": "platform@sha256:" + "cd" * 32, "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    first = daemon_specs(h)[0].component
    ecs.update_service(
        cluster=h.get("ECS_CLUSTER_NAME"), service=residuals.ecs_service_name(h, first), taskDefinition=bare
    )
    states = {s.component: s for s in supervisor.reconcile(h, None, RUN)}
    assert states[first].state == supervisor.FAILED and "serves no run" in states[first].detail
    assert {s.state for c, s in states.items() if c != first} <= {supervisor.STARTED, supervisor.RUNNING}
    assert ecs_services.describe(h)[first]["desired"] == 0


def test_run_full_is_refused_on_dev_min_before_anything_starts(dev_min: Handles, monkeypatch):
    """dev_min's demo stack is applied for one run id; `--full` would start a second run no stack serves (and
    the learning lane and P16 are dev_full's): refused with the reason, exit 2, nothing executed."""
    from rich.console import Console

    from fp_platform import runner

    monkeypatch.setenv("FP_PROFILE", "dev_min")
    monkeypatch.setattr(runner, "execute", lambda *a, **k: pytest.fail("nothing may execute"))
    out = Console(record=True, width=200)
    assert runner.main(runner.RunRequest(full=True), out) == 2
    assert "applied for one run" in out.export_text()

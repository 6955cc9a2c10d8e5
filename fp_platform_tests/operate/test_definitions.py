"""The Dagster code location: validates, lists the P1 asset, and runs on Postgres storage."""

import os
import subprocess
import sys
from pathlib import Path

from fp_platform.definitions import defs

ROOT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).parent / "dagster")


def test_definitions_validate(dagster_env):
    out = subprocess.run(
        [DAGSTER, "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env={**os.environ, **dagster_env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "passed validation" in out.stderr + out.stdout


def test_asset_list_shows_p1(dagster_env):
    out = subprocess.run(
        [DAGSTER, "asset", "list", "-m", "fp_platform.definitions"],
        cwd=ROOT,
        env={**os.environ, **dagster_env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "run_header" in out.stdout.split()


def test_every_gate_is_a_blocking_check():
    graph = defs.resolve_asset_graph()
    node = next(graph.get(k) for k in graph.materializable_asset_keys if k.to_user_string() == "run_header")
    assert node.group_name == "P1_RUN_PINNED"
    checks = {k.name for k in graph.asset_check_keys if k.asset_key == node.key}
    assert checks == {"evidence_root_exists", "run_json_complete", "config_digest_recomputes"}
    advisory = {k.name for k in graph.asset_check_keys if not graph.get_check_spec(k).blocking}
    assert advisory == {"tree_committed"}  # every gate blocks but P(-1)'s warning about uncommitted changes
    closure = {k.name for k in graph.asset_check_keys if k.asset_key.to_user_string() == "run_closure"}
    assert {"single_writer", "evidence_complete", "run_completed"} <= closure


def test_p_minus_1_is_upstream_of_p1():
    graph = defs.resolve_asset_graph()
    image = next(graph.get(k) for k in graph.materializable_asset_keys if k.to_user_string() == "platform_image")
    header = next(graph.get(k) for k in graph.materializable_asset_keys if k.to_user_string() == "run_header")
    assert image.group_name == "PM1_PACKAGING_READY" and image.key in header.parent_keys
    checks = {k.name for k in graph.asset_check_keys if k.asset_key == image.key}
    assert checks == {
        "immutable_tag",
        "lock_matches_pyproject",
        "image_in_registry",
        "smoke_without_secrets",
        "tree_committed",
    }


def test_instance_storage_is_postgres(dagster_env):
    from dagster import DagsterInstance
    from dagster_postgres import PostgresRunStorage

    instance = DagsterInstance.get()
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert instance.root_directory == dagster_env["DAGSTER_HOME"]
    instance.add_dynamic_partitions("platform_run", ["platform_19990101T000001Z"])
    assert instance.has_dynamic_partition("platform_run", "platform_19990101T000001Z")

"""The operator's UI in a real browser: `fp-platform ui` serves Dagster on the platform instance; headless
Chromium (Playwright) opens it; the test adds a run partition, launches a bounded run (P1 + P3, smoke
world) through the webserver, waits for it, and finds the gates passed as asset checks. Screenshots are
kept in test-artifacts/."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fp_platform.runner import allocate_run_id
from fp_platform.substrate.paths import project_root

pytestmark = pytest.mark.ui

PORT = 3317
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = project_root() / "test-artifacts"
GROUPS = ("PM1_PACKAGING_READY", "P1_RUN_PINNED", "P3_ORACLE_READY")  # P1 pins what P(-1) recorded

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}"""
RUN_STATUS = "query S($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
CHECKS = """
query C($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode { assetChecksOrError { ... on AssetChecks { checks { name
      executionForLatestMaterialization { status } } } } }
  }
}"""


def _gql(page, query: str, variables: dict) -> dict:
    """POST to the UI's GraphQL endpoint from inside the page, as the UI itself does."""
    return page.evaluate(
        """async ([q, v]) => {
        const r = await fetch('/graphql', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                           body: JSON.stringify({query: q, variables: v})});
        return await r.json(); }""",
        [query, variables],
    )


@pytest.fixture(scope="module")
def ui(h, dagster_env):
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"{CHROMIUM} is missing: `make setup` installs Debian's chromium package when run as root"
            " with apt-get; otherwise install it yourself (e.g. `sudo apt-get install chromium`)"
        )
    env = {**os.environ, **dagster_env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fp_platform.cli", "ui", "--port", str(PORT)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{PORT}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/server_info", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(1)
    else:
        proc.kill()
        pytest.fail("the Dagster UI did not come up in 180 s")
    yield base
    os.killpg(proc.pid, 2)
    proc.wait(timeout=60)


def test_operator_launches_a_bounded_run_in_the_ui_and_sees_the_gates_pass(h, ui):
    from dagster import DagsterInstance
    from playwright.sync_api import sync_playwright

    from fp_platform.definitions import PLATFORM_RUN_JOB, defs

    graph = defs.resolve_asset_graph()
    assets = [k for k in graph.materializable_asset_keys if graph.get(k).group_name in GROUPS]
    run_id = allocate_run_id(DagsterInstance.get(), h.get("PLATFORM_RUN_PARTITIONS"))
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(f"{ui}/assets", wait_until="networkidle")
        locations = _gql(page, "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }", {})
        location = locations["data"]["workspaceOrError"]["locationEntries"][0]["name"]
        selector = {"repositoryLocationName": location, "repositoryName": "__repository__"}
        DagsterInstance.get().add_dynamic_partitions(h.get("PLATFORM_RUN_PARTITIONS"), [run_id])
        launched = _gql(
            page,
            LAUNCH,
            {
                "params": {
                    "selector": {
                        **selector,
                        "jobName": PLATFORM_RUN_JOB,
                        "assetSelection": [{"path": k.path} for k in assets],
                    },
                    "runConfigData": {"ops": {"run_header": {"config": {"scale": "smoke"}}}},
                    "executionMetadata": {"tags": [{"key": "dagster/partition", "value": run_id}]},
                    "mode": "default",
                }
            },
        )
        assert launched["data"]["launchRun"]["__typename"] == "LaunchRunSuccess", launched
        dagster_run = launched["data"]["launchRun"]["run"]["runId"]
        deadline, status = time.monotonic() + 600, None
        while time.monotonic() < deadline:
            status = _gql(page, RUN_STATUS, {"id": dagster_run})["data"]["runOrError"]["status"]
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                break
            time.sleep(3)
        assert status == "SUCCESS", f"run {dagster_run} ended {status}"
        checks = _gql(page, CHECKS, {"key": {"path": ["run_header"]}})
        statuses = {
            c["name"]: (c["executionForLatestMaterialization"] or {}).get("status")
            for c in checks["data"]["assetNodeOrError"]["assetChecksOrError"]["checks"]
        }
        assert statuses == dict.fromkeys(
            ("evidence_root_exists", "run_json_complete", "config_digest_recomputes"), "SUCCEEDED"
        ), statuses
        page.goto(f"{ui}/assets/run_header?view=checks", wait_until="networkidle")
        page.get_by_text("config_digest_recomputes").first.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "ui_run_header_checks.png"), full_page=True)
        page.goto(f"{ui}/runs/{dagster_run}", wait_until="networkidle")
        page.get_by_text("oracle_checker").first.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "ui_bounded_run.png"), full_page=True)
        body = page.inner_text("body")
        browser.close()
    assert "Success" in body or "SUCCESS" in body

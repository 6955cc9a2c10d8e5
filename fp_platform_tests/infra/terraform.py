"""Running Terraform offline for the infra tests: where the binary and the AWS provider mirror are, and a
stack copied into a scratch folder, initialised once from the mirror and planned with fake credentials.

Nothing here reaches the network: `terraform init` reads only the plugin mirror, the provider skips its
STS/metadata calls (`aws_offline`), and every HTTP(S) client is pointed at a dead proxy so an accidental
call fails instead of hanging.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO / "infra" / "terraform"
STACKS = {"core": TERRAFORM_DIR / "dev_min" / "core", "demo": TERRAFORM_DIR / "dev_min" / "demo"}
PROVIDER_GLOB = "terraform-provider-aws_*"
KNOWN_MIRROR = Path("/opt/tf-plugins")
# The demo files only the Confluent provider can read (absent here): left out of validate and plan.
CONFLUENT_ONLY = ("confluent.tf", "confluent.auto.tfvars.json")
BACKEND_OVERRIDE = 'terraform {\n  backend "local" {}\n}\n'
DEAD_PROXY = "http://127.0.0.1:9"

FAKE_ACCOUNT = "123456789012"
OPERATOR_VARS = {  # what an operator sets; fake values shaped like the real ones
    "core": {
        "aws_account_id": FAKE_ACCOUNT,
        "expires_at": "2026-12-31",
        "budget_alert_emails": '["ops@example.com"]',
        "github_owner": "example-org",
        "github_repository": "fp_platform",
    },
    "demo": {
        "aws_account_id": FAKE_ACCOUNT,
        "expires_at": "2026-12-31",
        "image_digest": "sha256:" + "ab" * 32,
        "platform_run_id": "platform_20261130T000000Z",
        "db_password": "not-a-real-password",
        "db_app_password": "not-a-real-app-password",
        "ig_api_key": "not-a-real-key",
    },
}


def terraform_binary() -> str | None:
    return shutil.which("terraform")


@cache
def plugin_mirror() -> Path | None:
    """The plugin-dir root above `registry.terraform.io/hashicorp/aws/<version>/<os_arch>/terraform-provider-aws_*`,
    found the way `find / -maxdepth 8 -name 'terraform-provider-aws_*'` would (the known mirror first)."""
    roots = [Path(os.environ["FP_TF_PLUGIN_DIR"])] if os.environ.get("FP_TF_PLUGIN_DIR") else []
    for root in [*roots, KNOWN_MIRROR]:
        if any(root.glob(f"registry.terraform.io/hashicorp/aws/*/*/{PROVIDER_GLOB}")):
            return root
    try:
        out = subprocess.run(
            ["find", "/", "-maxdepth", "8", "-name", PROVIDER_GLOB, "-not", "-path", "/proc/*"],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        binary = Path(line)
        if len(binary.parents) > 5 and binary.parents[4].name == "registry.terraform.io":
            return binary.parents[5]
    return None


def offline_env(base: Path, endpoint: str | None = None) -> dict[str, str]:
    """Environment for terraform: fake credentials, no checkpoint call, no CLI config, a dead proxy."""
    cli_config = base / "terraformrc"
    cli_config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    env |= {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_CLI_CONFIG_FILE": str(cli_config),
        "HTTP_PROXY": DEAD_PROXY,
        "HTTPS_PROXY": DEAD_PROXY,
        "NO_PROXY": "127.0.0.1,localhost" if endpoint else "",
    }
    return env


@dataclass
class Workdir:
    """One stack copied to a scratch folder and initialised from the mirror (local backend)."""

    stack: str
    path: Path
    env: dict[str, str]
    mirror: Path

    def init(self, *flags: str) -> None:
        """`terraform init` from the plugin mirror only (a registry call would hit the dead proxy)."""
        self.run("init", "-input=false", f"-plugin-dir={self.mirror}", "-no-color", *flags)

    def run(self, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["terraform", *args], cwd=self.path, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert proc.returncode == 0, f"terraform {' '.join(args)} failed in {self.stack}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def var_args(self, extra: dict[str, str] | None = None) -> list[str]:
        values = OPERATOR_VARS[self.stack] | (extra or {})
        return [a for k, v in values.items() for a in ("-var", f"{k}={v}")]

    def plan_json(self, *flags: str, extra: dict[str, str] | None = None, name: str = "plan") -> dict[str, Any]:
        """`plan -out` then `show -json` of the saved plan."""
        out = f"{name}.bin"
        self.run("plan", "-input=false", "-lock=false", "-refresh=false", f"-out={out}", *flags, *self.var_args(extra))
        return json.loads(self.run("show", "-json", out).stdout)


def prepare(stack: str, base: Path, mirror: Path, endpoint: str | None = None) -> Workdir:
    """Copy `stack` (minus the Confluent-only files) to base/<stack>, add a local backend, init from the mirror."""
    dest = base / stack
    shutil.copytree(STACKS[stack], dest, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", *CONFLUENT_ONLY))
    (dest / "backend_override.tf").write_text(BACKEND_OVERRIDE)
    wd = Workdir(stack, dest, offline_env(base, endpoint), mirror)
    wd.init()
    return wd


def resources(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Managed resources a plan creates or changes (data sources and no-ops left out)."""
    return [
        r for r in plan.get("resource_changes", []) if r["mode"] == "managed" and r["change"]["actions"] != ["no-op"]
    ]


@cache
def dev_min_pins() -> dict[str, Any]:
    """The cloud-only pins the dev_min stacks are rendered from (infra/handles/dev_min.yaml)."""
    return yaml.safe_load((REPO / "infra" / "handles" / "dev_min.yaml").read_text())["handles"]

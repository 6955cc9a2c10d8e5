"""Reading the Terraform sources with checkov's HCL parser (the python-hcl2 fork, `hcl2`), which wraps
most values in one-element lists; helpers here unwrap them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2

from fp_platform_tests.infra.terraform import TERRAFORM_DIR


def tf_files() -> list[Path]:
    return sorted(p for p in TERRAFORM_DIR.rglob("*.tf") if ".terraform" not in p.parts)


def parse(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return hcl2.load(f)


def unwrap(value: Any) -> Any:
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)


def allowed_actions(doc: Any) -> Iterator[str]:
    """Every IAM action string under an `actions` key whose statement is not a Deny (policy documents and
    the locals that feed them); a Deny may name `s3:*` (refusing everything is not a grant)."""
    if isinstance(doc, dict):
        effect = str(unwrap(doc.get("effect", "Allow")))
        for key, value in doc.items():
            if key in ("actions", "Action") and effect != "Deny":
                yield from strings(value)
            else:
                yield from allowed_actions(value)
    elif isinstance(doc, list):
        for v in doc:
            yield from allowed_actions(v)


def outputs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: body for block in doc.get("output", []) for name, body in block.items()}

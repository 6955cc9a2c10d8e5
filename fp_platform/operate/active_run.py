"""The active run: the platform_run_id `fp-platform run` recorded last, which the pack supervisor sensor keeps
the spine packs serving (and `fp-platform operate up` uses when no --run-id is given).

Where it lives is the handle ACTIVE_RUN_ID_SOURCE: a file under the checkout locally, where the operator, the
runner and the Dagster daemon share one machine; an `s3://` object on the cloud profiles, where the daemon runs
in the cloud (an EKS pod, an ECS task) and the operator on their own machine — both reach the evidence bucket,
neither reaches the other's disk.
"""

from __future__ import annotations

from pathlib import Path

from fp_platform.contracts.ids import check_platform_run_id
from fp_platform.handles import Handles
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.substrate.paths import project_root

S3 = "s3://"


def active_run_location(h: Handles) -> str:
    """The file path or `s3://bucket/key` of the record, for messages."""
    source = str(h.get("ACTIVE_RUN_ID_SOURCE"))
    return source if source.startswith(S3) else str(project_root() / source)


def _object(h: Handles) -> tuple[str, str] | None:
    """(bucket, key) where the record is an object; None where it is a file."""
    source = str(h.get("ACTIVE_RUN_ID_SOURCE"))
    if not source.startswith(S3):
        return None
    bucket, _, key = source.removeprefix(S3).partition("/")
    return bucket, key


def record_active_run(h: Handles, platform_run_id: str) -> None:
    where = _object(h)
    if where is not None:
        S3ObjectStore(h).put(*where, (platform_run_id + "\n").encode(), write_once=False)
        return
    path = Path(active_run_location(h))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(platform_run_id + "\n")


def read_active_run(h: Handles) -> str | None:
    """The active run, or None when no run was recorded; a record that names no run is refused (ValueError),
    not taken as a run to start workers for."""
    where = _object(h)
    if where is not None:
        try:
            text = S3ObjectStore(h).get(*where).decode()
        except FileNotFoundError:
            return None
    else:
        path = Path(active_run_location(h))
        text = path.read_text() if path.exists() else ""
    return check_platform_run_id(text.strip()) if text.strip() else None

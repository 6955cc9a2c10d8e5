"""The one way to reach a run's evidence bundle: the registry's bucket and run-root pattern."""

from __future__ import annotations

from fp_platform.contracts.evidence import EvidenceWriter, ObjectStore
from fp_platform.contracts.ids import check_platform_run_id
from fp_platform.handles import Handles
from fp_platform.substrate.object_store import S3ObjectStore


def run_evidence(h: Handles, platform_run_id: str, store: ObjectStore | None = None) -> EvidenceWriter:
    check_platform_run_id(platform_run_id)
    return EvidenceWriter(
        store=store or S3ObjectStore(h),
        bucket=h.get("S3_EVIDENCE_BUCKET"),
        run_root=h.pattern("S3_EVIDENCE_RUN_ROOT_PATTERN", platform_run_id=platform_run_id),
        platform_run_id=platform_run_id,
    )


def pinned_scale(h: Handles, writer: EvidenceWriter) -> str | None:
    """The world scale the run was pinned with at P1 (None before P1)."""
    name = h.get("EVIDENCE_RUN_JSON_KEY")
    return writer.read(name)["config"]["params"]["scale"] if writer.exists(name) else None

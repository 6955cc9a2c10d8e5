"""The oracle's truth output of a run (which transactions are fraud): read only by the label simulation
and by model evaluation, never by the decision path."""

from __future__ import annotations

import io

import pyarrow.compute as pc
import pyarrow.parquet as pq

from fp_platform.handles import Handles
from fp_platform.substrate.object_store import S3ObjectStore


class TruthMissing(LookupError):
    """The run has no sealed truth output (P3 seals it before any traffic)."""


def oracle_frauds(h: Handles, store: S3ObjectStore, run_id: str) -> set[int]:
    """The transaction ids the run's oracle truth marks as fraud."""
    bucket = h.get("S3_ORACLE_BUCKET")
    prefix = (
        h.pattern("S3_ORACLE_ENGINE_RUN_ROOT_PATTERN", platform_run_id=run_id)
        + f"output_id={h.get('ORACLE_TRUTH_OUTPUT_ID')}/"
    )
    keys = [k for k in store.list_keys(bucket, prefix) if k.endswith(".parquet")]
    if not keys:
        raise TruthMissing(f"no oracle truth for {run_id} at s3://{bucket}/{prefix} (P3 seals it before traffic)")
    frauds: set[int] = set()
    for key in keys:
        t = pq.read_table(io.BytesIO(store.get(bucket, key)), columns=["transaction_id", "tx_fraud"])
        frauds.update(t.filter(pc.equal(t["tx_fraud"], 1))["transaction_id"].to_pylist())
    return frauds

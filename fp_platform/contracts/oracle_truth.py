"""The oracle's truth output of a run (which transactions are fraud): the read contract of the world
plane's sealed truth, for the label simulation, model evaluation and shadow scoring — never the decision
path. It lives in `contracts` because three planes read it and planes never import each other.
"""

from __future__ import annotations

import io
from typing import Protocol

import pyarrow.compute as pc
import pyarrow.parquet as pq

from fp_platform.handles import Handles


class ObjectReader(Protocol):
    """What reading the truth needs of an object store (`substrate.object_store.S3ObjectStore` is one)."""

    def list_keys(self, bucket: str, prefix: str) -> list[str]: ...

    def get(self, bucket: str, key: str) -> bytes: ...


class TruthMissing(LookupError):
    """The run has no sealed truth output (P3 seals it before any traffic)."""


def oracle_frauds(h: Handles, store: ObjectReader, run_id: str) -> set[int]:
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

"""The rules-only bootstrap bundle that is active before any promotion (the registry itself is
`contracts/bundle_registry.py`, the models bundles name `substrate/bundle_models.py`)."""

from __future__ import annotations

import psycopg

from fp_platform.contracts import bundle_registry
from fp_platform.contracts.features import FEATURE_NAMES, FEATURE_VERSION
from fp_platform.handles import Handles
from fp_platform.rtdl.policy import Policy


def ensure_bootstrap(conn: psycopg.Connection, h: Handles, policy: Policy) -> None:
    """Register and activate the rules-only bootstrap bundle once, ever (a no-op afterwards)."""
    bundle_id, version = h.get("MPR_BOOTSTRAP_BUNDLE_ID"), str(policy.bootstrap["bundle_version"])
    with conn.transaction():
        bundle_registry.register(
            conn,
            bundle_id=bundle_id,
            bundle_version=version,
            policy_rev=policy.policy_rev,
            model_ref=None,
            feature_version=FEATURE_VERSION,
            feature_list=list(FEATURE_NAMES),
            thresholds=policy.bootstrap["thresholds"],
            provenance={"source": "decision policy bootstrap"},
        )
        if conn.execute("SELECT 1 FROM mpr_registry_events LIMIT 1").fetchone() is None:
            bundle_registry.activate(
                conn,
                event_id=f"bootstrap:{bundle_id}:{version}",
                event_type="BOOTSTRAP",
                bundle_id=bundle_id,
                bundle_version=version,
                reason="no bundle promoted yet",
                actor="decision_fabric",
            )

"""Dagster resources and the run partitioning shared by every plane's assets.

Resources are chosen per profile (FP_PROFILE): the same classes configured with that profile's
handles registry, the way Dagster's reference projects pick resources per deployment.
"""

from __future__ import annotations

from functools import cached_property

import psycopg
from dagster import ConfigurableResource, DynamicPartitionsDefinition, PipesSubprocessClient

from fp_platform.contracts.evidence import EvidenceWriter
from fp_platform.handles import Handles, current_profile, handles
from fp_platform.substrate import db
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.object_store import S3ObjectStore

platform_run_partitions = DynamicPartitionsDefinition(name=handles().get("PLATFORM_RUN_PARTITIONS"))


class PlatformResource(ConfigurableResource):
    """Handles, object store, evidence and database of one profile."""

    profile: str

    @property
    def handles(self) -> Handles:
        return handles(self.profile)

    @cached_property
    def store(self) -> S3ObjectStore:
        return S3ObjectStore(self.handles)

    def evidence(self, platform_run_id: str) -> EvidenceWriter:
        return run_evidence(self.handles, platform_run_id, store=self.store)

    def connect(self) -> psycopg.Connection:
        return db.connect(self.handles)


class GateCatalog(ConfigurableResource):
    """The gate verdict files the run's closure requires (one per gated asset of P1..P10 in the Definitions), and
    how many assets and checks the Definitions hold (P(-1)'s in-process smoke). `definitions.py` fills it from the
    assets it holds (so an asset needs no import of the graph that contains it)."""

    spine_verdicts: list[str]
    assets: int = 0
    checks: int = 0


def resources_for_profile(profile: str | None = None) -> dict[str, object]:
    """One-shot jobs run as local subprocesses through Pipes; the same entrypoints are what a
    PipesK8sClient would launch on EKS (not wired yet: no cluster here)."""
    return {"platform": PlatformResource(profile=profile or current_profile()), "pipes": PipesSubprocessClient()}

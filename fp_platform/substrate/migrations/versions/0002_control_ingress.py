"""Control & ingress: IG dedupe ledger, receipts, quarantine index, SR leases + READY, WSP checkpoints.

Revision ID: 0002_control_ingress
Revises: 0001_foundation
"""

from fp_platform.substrate.db import sql_migration

revision = "0002_control_ingress"
down_revision = "0001_foundation"
upgrade, downgrade = sql_migration(__file__)

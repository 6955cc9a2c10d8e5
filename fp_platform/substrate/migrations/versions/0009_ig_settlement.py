"""IG: a claim reconcile proves can never be published is settled by a terminal receipt (state SETTLED).

Revision ID: 0009_ig_settlement
Revises: 0008_decision_processor
"""

from fp_platform.substrate.db import sql_migration

revision = "0009_ig_settlement"
down_revision = "0008_decision_processor"
upgrade, downgrade = sql_migration(__file__)

"""Decision lane: outbox, degrade ladder postures, bundle registry, decisions, actions, audit.

Revision ID: 0004_decision_lane
Revises: 0003_rtdl_core
"""

from fp_platform.substrate.db import sql_migration

revision = "0004_decision_lane"
down_revision = "0003_rtdl_core"
upgrade, downgrade = sql_migration(__file__)

"""The decision processor: when each decision's event was taken in and how long it waited for its context.

Revision ID: 0008_decision_processor
Revises: 0007_learning
"""

from fp_platform.substrate.db import sql_migration

revision = "0008_decision_processor"
down_revision = "0007_learning"
upgrade, downgrade = sql_migration(__file__)

"""Case and labels plane: case triggers, case timeline, label store and its writers, label simulation.

Revision ID: 0005_case_labels
Revises: 0004_decision_lane
"""

from fp_platform.substrate.db import sql_migration

revision = "0005_case_labels"
down_revision = "0004_decision_lane"
upgrade, downgrade = sql_migration(__file__)

"""Least privilege (issue 20): derived facts that are never rewritten become append-only; the application
role's grants are applied after every upgrade by `db.grant_app`.

Revision ID: 0010_app_role
Revises: 0009_ig_settlement
"""

from fp_platform.substrate.db import sql_migration

revision = "0010_app_role"
down_revision = "0009_ig_settlement"
upgrade, downgrade = sql_migration(__file__)

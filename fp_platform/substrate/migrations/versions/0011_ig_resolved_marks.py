"""IG: resolved marks, so reconcile reads only the claims after the latest one (O(recent), not O(run)).

Revision ID: 0011_ig_resolved_marks
Revises: 0010_app_role
"""

from fp_platform.substrate.db import sql_migration

revision = "0011_ig_resolved_marks"
down_revision = "0010_app_role"
upgrade, downgrade = sql_migration(__file__)

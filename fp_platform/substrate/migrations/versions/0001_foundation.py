"""Foundation: the append-only guard and the run registry.

Revision ID: 0001_foundation
Revises:
"""

from fp_platform.substrate.db import sql_migration

revision = "0001_foundation"
down_revision = None
upgrade, downgrade = sql_migration(__file__)

"""Obs/Gov (P11): the append-only governance log.

Revision ID: 0006_obs_gov
Revises: 0005_case_labels
"""

from fp_platform.substrate.db import sql_migration

revision = "0006_obs_gov"
down_revision = "0005_case_labels"
upgrade, downgrade = sql_migration(__file__)

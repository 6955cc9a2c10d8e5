"""Learning (P12..P16): the decisions' feature watermark, for OFS's online/offline parity.

Revision ID: 0007_learning
Revises: 0006_obs_gov
"""

from fp_platform.substrate.db import sql_migration

revision = "0007_learning"
down_revision = "0006_obs_gov"
upgrade, downgrade = sql_migration(__file__)

"""RTDL core and operate: worker checkpoints, heartbeats, supervision, archive manifest, IEG, OFP, CSFB.

Revision ID: 0003_rtdl_core
Revises: 0002_control_ingress
"""

from fp_platform.substrate.db import sql_migration

revision = "0003_rtdl_core"
down_revision = "0002_control_ingress"
upgrade, downgrade = sql_migration(__file__)

"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
"""

from fp_platform.substrate.db import sql_migration

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
upgrade, downgrade = sql_migration(__file__)

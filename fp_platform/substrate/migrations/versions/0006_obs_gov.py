"""Obs/Gov (P11): the append-only governance log.

Revision ID: 0006_obs_gov
Revises: 0005_case_labels
"""

from pathlib import Path

from alembic import op

revision = "0006_obs_gov"
down_revision = "0005_case_labels"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(Path(__file__).with_suffix(".sql").read_text())


def downgrade() -> None:
    raise RuntimeError("platform migrations are forward-only")

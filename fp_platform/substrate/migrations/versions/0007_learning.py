"""Learning (P12..P16): the decisions' feature watermark, for OFS's online/offline parity.

Revision ID: 0007_learning
Revises: 0006_obs_gov
"""

from pathlib import Path

from alembic import op

revision = "0007_learning"
down_revision = "0006_obs_gov"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(Path(__file__).with_suffix(".sql").read_text())


def downgrade() -> None:
    raise RuntimeError("platform migrations are forward-only")

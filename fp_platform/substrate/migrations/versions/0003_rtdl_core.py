"""RTDL core and operate: worker checkpoints, heartbeats, supervision, archive manifest, IEG, OFP, CSFB.

Revision ID: 0003_rtdl_core
Revises: 0002_control_ingress
"""

from pathlib import Path

from alembic import op

revision = "0003_rtdl_core"
down_revision = "0002_control_ingress"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(Path(__file__).with_suffix(".sql").read_text())


def downgrade() -> None:
    raise RuntimeError("platform migrations are forward-only")

"""Decision lane: outbox, degrade ladder postures, bundle registry, decisions, actions, audit.

Revision ID: 0004_decision_lane
Revises: 0003_rtdl_core
"""

from pathlib import Path

from alembic import op

revision = "0004_decision_lane"
down_revision = "0003_rtdl_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(Path(__file__).with_suffix(".sql").read_text())


def downgrade() -> None:
    raise RuntimeError("platform migrations are forward-only")

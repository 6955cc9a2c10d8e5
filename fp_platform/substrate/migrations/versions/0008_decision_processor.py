"""The decision processor: when each decision's event was taken in and how long it waited for its context.

Revision ID: 0008_decision_processor
Revises: 0007_learning
"""

from pathlib import Path

from alembic import op

revision = "0008_decision_processor"
down_revision = "0007_learning"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(Path(__file__).with_suffix(".sql").read_text())


def downgrade() -> None:
    raise RuntimeError("platform migrations are forward-only")

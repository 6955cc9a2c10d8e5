"""Case and labels plane: case triggers, case timeline, label store and its writers, label simulation.

Revision ID: 0005_case_labels
Revises: 0004_decision_lane
"""

from pathlib import Path

from alembic import op

revision = "0005_case_labels"
down_revision = "0004_decision_lane"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(Path(__file__).with_suffix(".sql").read_text())


def downgrade() -> None:
    raise RuntimeError("platform migrations are forward-only")

"""Foundation: the append-only guard and the run registry.

Revision ID: 0001_foundation
Revises:
"""

from pathlib import Path

from alembic import op

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(Path(__file__).with_suffix(".sql").read_text())


def downgrade() -> None:
    raise RuntimeError("platform migrations are forward-only")

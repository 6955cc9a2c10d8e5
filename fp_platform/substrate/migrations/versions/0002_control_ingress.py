"""Control & ingress: IG dedupe ledger, receipts, quarantine index, SR leases + READY, WSP checkpoints.

Revision ID: 0002_control_ingress
Revises: 0001_foundation
"""

from pathlib import Path

from alembic import op

revision = "0002_control_ingress"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(Path(__file__).with_suffix(".sql").read_text())


def downgrade() -> None:
    raise RuntimeError("platform migrations are forward-only")

"""disclosure budgets: ε spent per caller, dataset and budget window

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 23:55:00

Charged by one conditional UPDATE per released aggregate, so that the budget holds
across restarts and across the workers sharing the database.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "disclosure_budgets",
        sa.Column("identity", sa.String(length=512), nullable=False),
        sa.Column("dataset_id", sa.String(length=255), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("spent", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("identity", "dataset_id", "window_start"),
    )


def downgrade() -> None:
    op.drop_table("disclosure_budgets")

"""dataset generation: one counter every change of the published datasets bumps

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 09:00:00

Server processes compare it with the generation their published-dataset cache was
read at, so an unpublish, an access change or a removal shows on the next request.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "dataset_generation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(table, [{"id": 1, "generation": 0}])


def downgrade() -> None:
    op.drop_table("dataset_generation")

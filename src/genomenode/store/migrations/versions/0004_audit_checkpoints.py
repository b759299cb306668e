"""audit checkpoints: signed statements of the audit log's head

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:00:00

Entries already in ``audit_log`` are left as they are: their SHA-256 chain is
anchored by the audit key file, written on first use after this upgrade (see
docs/audit.md, "Logs written before the key").
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_audit_checkpoints_entry_id"), "audit_checkpoints", ["entry_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_checkpoints_entry_id"), table_name="audit_checkpoints")
    op.drop_table("audit_checkpoints")

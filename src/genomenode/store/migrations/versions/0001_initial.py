"""initial schema: datasets and clinical metadata

Revision ID: 0001
Revises:
Create Date: 2026-11-28 22:27:20.054609
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("contact_name", sa.Text(), nullable=False),
        sa.Column("contact_email", sa.Text(), nullable=False),
        sa.Column("security_level", sa.String(length=16), nullable=False),
        sa.Column("assembly", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("num_individuals", sa.Integer(), nullable=False),
        sa.Column("num_samples", sa.Integer(), nullable=False),
        sa.Column("num_variants", sa.BigInteger(), nullable=False),
        sa.Column("description_document", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_datasets_status"), "datasets", ["status"], unique=False)
    op.create_table(
        "biosamples",
        sa.Column("dataset_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("individual_id", sa.String(length=128), nullable=False),
        sa.Column("sample_index", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dataset_id", "id"),
    )
    op.create_table(
        "data_use_terms",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dataset_id", sa.String(length=64), nullable=False),
        sa.Column("term_id", sa.String(length=32), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("disease_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_data_use_terms_dataset_id"),
        "data_use_terms",
        ["dataset_id"],
        unique=False,
    )
    op.create_table(
        "diseases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dataset_id", sa.String(length=64), nullable=False),
        sa.Column("individual_id", sa.String(length=128), nullable=False),
        sa.Column("term_id", sa.String(length=64), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_diseases_dataset_id"), "diseases", ["dataset_id"], unique=False
    )
    op.create_index(
        "ix_diseases_term", "diseases", ["dataset_id", "term_id"], unique=False
    )
    op.create_table(
        "files",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("dataset_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("original_name", sa.Text(), nullable=False),
        sa.Column("stored_path", sa.Text(), nullable=False),
        sa.Column("file_format", sa.String(length=32), nullable=False),
        sa.Column("size_plain", sa.BigInteger(), nullable=False),
        sa.Column("size_encrypted", sa.BigInteger(), nullable=False),
        sa.Column("sha256_plain", sa.String(length=64), nullable=False),
        sa.Column("sha256_encrypted", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_files_dataset_id"), "files", ["dataset_id"], unique=False)
    op.create_table(
        "individuals",
        sa.Column("dataset_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("sex_id", sa.String(length=32), nullable=False),
        sa.Column("sex_label", sa.String(length=32), nullable=False),
        sa.Column("age_years", sa.Float(), nullable=True),
        sa.Column("country_of_birth", sa.String(length=2), nullable=True),
        sa.Column("ethnicity_id", sa.String(length=64), nullable=True),
        sa.Column("ethnicity_label", sa.Text(), nullable=True),
        sa.Column("geographic_origin_id", sa.String(length=64), nullable=True),
        sa.Column("geographic_origin_label", sa.Text(), nullable=True),
        sa.Column("sample_index", sa.Integer(), nullable=True),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dataset_id", "id"),
    )
    op.create_table(
        "measures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dataset_id", sa.String(length=64), nullable=False),
        sa.Column("individual_id", sa.String(length=128), nullable=False),
        sa.Column("assay_id", sa.String(length=64), nullable=False),
        sa.Column("assay_label", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit_id", sa.String(length=64), nullable=True),
        sa.Column("unit_label", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_measures_assay", "measures", ["dataset_id", "assay_id"], unique=False
    )
    op.create_index(
        op.f("ix_measures_dataset_id"), "measures", ["dataset_id"], unique=False
    )
    op.create_table(
        "phenotypic_features",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dataset_id", sa.String(length=64), nullable=False),
        sa.Column("individual_id", sa.String(length=128), nullable=False),
        sa.Column("term_id", sa.String(length=64), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("excluded", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_phenotypic_features_dataset_id"),
        "phenotypic_features",
        ["dataset_id"],
        unique=False,
    )
    op.create_index(
        "ix_phenotypic_features_term",
        "phenotypic_features",
        ["dataset_id", "term_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_phenotypic_features_term", table_name="phenotypic_features")
    op.drop_index(
        op.f("ix_phenotypic_features_dataset_id"), table_name="phenotypic_features"
    )
    op.drop_table("phenotypic_features")
    op.drop_index(op.f("ix_measures_dataset_id"), table_name="measures")
    op.drop_index("ix_measures_assay", table_name="measures")
    op.drop_table("measures")
    op.drop_table("individuals")
    op.drop_index(op.f("ix_files_dataset_id"), table_name="files")
    op.drop_table("files")
    op.drop_index("ix_diseases_term", table_name="diseases")
    op.drop_index(op.f("ix_diseases_dataset_id"), table_name="diseases")
    op.drop_table("diseases")
    op.drop_index(op.f("ix_data_use_terms_dataset_id"), table_name="data_use_terms")
    op.drop_table("data_use_terms")
    op.drop_table("biosamples")
    op.drop_index(op.f("ix_datasets_status"), table_name="datasets")
    op.drop_table("datasets")

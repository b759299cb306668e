"""Metadata tables of a node (SQLAlchemy 2). The schema is created by Alembic.

A dataset's rows are written while its ``status`` is ``staging`` and become visible
only when one transaction flips it to ``published``; every query for users goes
through :func:`published_datasets` or joins on it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AuditEntry",
    "Base",
    "Biosample",
    "DataUseTerm",
    "Dataset",
    "Disease",
    "Individual",
    "Measure",
    "PhenotypicFeature",
    "StoredFile",
    "published_datasets",
]

STATUS_STAGING = "staging"
STATUS_PUBLISHED = "published"


class Base(DeclarativeBase):
    pass


def _dataset_fk() -> Mapped[str]:
    return mapped_column(
        String(64), ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    country: Mapped[str] = mapped_column(String(2))
    contact_name: Mapped[str] = mapped_column(Text)
    contact_email: Mapped[str] = mapped_column(Text)
    security_level: Mapped[str] = mapped_column(String(16))
    assembly: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    num_individuals: Mapped[int] = mapped_column(Integer)
    num_samples: Mapped[int] = mapped_column(Integer)
    num_variants: Mapped[int] = mapped_column(BigInteger)
    description_document: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )


class DataUseTerm(Base):
    __tablename__ = "data_use_terms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = _dataset_fk()
    term_id: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(Text)
    disease_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Individual(Base):
    __tablename__ = "individuals"

    dataset_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    sex_id: Mapped[str] = mapped_column(String(32))
    sex_label: Mapped[str] = mapped_column(String(32))
    age_years: Mapped[float | None] = mapped_column(Float, nullable=True)
    country_of_birth: Mapped[str | None] = mapped_column(String(2), nullable=True)
    ethnicity_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ethnicity_label: Mapped[str | None] = mapped_column(Text, nullable=True)
    geographic_origin_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    geographic_origin_label: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Column of this individual in the genotype arrays; None if not genotyped.
    sample_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    record: Mapped[dict] = mapped_column(JSON)


class Biosample(Base):
    __tablename__ = "biosamples"

    dataset_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    individual_id: Mapped[str] = mapped_column(String(128))
    sample_index: Mapped[int] = mapped_column(Integer)


class PhenotypicFeature(Base):
    __tablename__ = "phenotypic_features"
    __table_args__ = (Index("ix_phenotypic_features_term", "dataset_id", "term_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = _dataset_fk()
    individual_id: Mapped[str] = mapped_column(String(128))
    term_id: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(Text)
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)


class Disease(Base):
    __tablename__ = "diseases"
    __table_args__ = (Index("ix_diseases_term", "dataset_id", "term_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = _dataset_fk()
    individual_id: Mapped[str] = mapped_column(String(128))
    term_id: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(Text)


class Measure(Base):
    __tablename__ = "measures"
    __table_args__ = (Index("ix_measures_assay", "dataset_id", "assay_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = _dataset_fk()
    individual_id: Mapped[str] = mapped_column(String(128))
    assay_id: Mapped[str] = mapped_column(String(64))
    assay_label: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    unit_label: Mapped[str | None] = mapped_column(Text, nullable=True)


class StoredFile(Base):
    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    dataset_id: Mapped[str] = _dataset_fk()
    role: Mapped[str] = mapped_column(String(32))
    original_name: Mapped[str] = mapped_column(Text)
    stored_path: Mapped[str] = mapped_column(Text)
    file_format: Mapped[str] = mapped_column(String(32))
    size_plain: Mapped[int] = mapped_column(BigInteger)
    size_encrypted: Mapped[int] = mapped_column(BigInteger)
    sha256_plain: Mapped[str] = mapped_column(String(64))
    sha256_encrypted: Mapped[str] = mapped_column(String(64))


class AuditEntry(Base):
    """One entry of the hash-chained audit log (see :mod:`genomenode.access.audit`).

    ``at`` is an ISO 8601 string, not a DateTime, so that the hashed text is
    exactly what the database returns on every backend.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_dataset", "dataset_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64))
    dataset_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSON)
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


def published_datasets():
    """A select of the datasets users may see: those fully published."""
    return select(Dataset).where(Dataset.status == STATUS_PUBLISHED)

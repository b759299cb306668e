"""Metadata tables of a node (SQLAlchemy 2). The schema is created by Alembic.

A dataset's rows are written while its ``status`` is ``staging`` and become visible
only when one transaction flips it to ``published``; every query for users goes
through :func:`published_datasets` or joins on it. An operator may later set it
``unpublished`` (kept, invisible; it can be published again) or ``removing`` (its
files and rows are being deleted, see :mod:`genomenode.access.lifecycle`). Every
change of what is published, or of how, bumps the one row of
:class:`DatasetGeneration` in the same transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
from typing import Any

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
    TypeDecorator,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AUDIT_FILES_OPTION",
    "AccessApplication",
    "AccessApplicationEvent",
    "AuditCheckpoint",
    "AuditEntry",
    "AuditFiles",
    "Base",
    "Biosample",
    "DacMember",
    "DataUseTerm",
    "Dataset",
    "DatasetGeneration",
    "DisclosureBudget",
    "Disease",
    "Entitlement",
    "Individual",
    "Measure",
    "PhenotypicFeature",
    "StoredFile",
    "UTCDateTime",
    "published_datasets",
]

STATUS_STAGING = "staging"
STATUS_PUBLISHED = "published"
STATUS_UNPUBLISHED = "unpublished"
STATUS_REMOVING = "removing"


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


class DatasetGeneration(Base):
    """One row (``id`` 1) whose ``generation`` grows with every change of what is
    published or how: a publish, an unpublish, an access change, a removal.

    Every server process compares it with the generation its published-dataset
    cache was read at, on every request (one primary-key read), so a change made by
    a command shows in the very next answer of every worker.
    """

    __tablename__ = "dataset_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)


class DisclosureBudget(Base):
    """What one caller spent on one dataset in one budget window (privacy loss ε).

    Charged by one conditional UPDATE (:mod:`genomenode.disclosure.budgets`), so
    workers sharing the database cannot overspend; rows of past windows are
    deleted as new windows begin.
    """

    __tablename__ = "disclosure_budgets"

    identity: Mapped[str] = mapped_column(String(512), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    spent: Mapped[float] = mapped_column(Float, nullable=False)


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
    """One entry of the keyed, chained audit log (see :mod:`genomenode.access.audit`).

    ``at`` is an ISO 8601 string, not a DateTime, so that the authenticated text is
    exactly what the database returns on every backend. ``hash`` holds the entry's
    HMAC-SHA256 (SHA-256 for entries written before the log had a key), and
    ``previous_hash`` that of the entry before it.
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


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware ``DateTime`` that is UTC on every backend.

    SQLite keeps no offset, so values are stored as UTC and read back with it: SQL
    comparisons (``ends_at > :now``) and Python ones then agree on both databases.
    A naive datetime is refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give a timezone")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class AuditCheckpoint(Base):
    """A signed statement that the audit log held ``entry_id`` with ``mac``.

    ``token`` is the statement itself (a compact JWS signed with a key kept outside
    the database); the other columns repeat what it says, for queries. Copies kept
    outside the database are what detect a shortened or rewritten log.
    """

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    entry_id: Mapped[int] = mapped_column(BigInteger, index=True)
    mac: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    token: Mapped[str] = mapped_column(Text)


#: The engine execution option that carries an audit log's :class:`AuditFiles`.
AUDIT_FILES_OPTION = "genomenode_audit_files"


@dataclasses.dataclass(frozen=True)
class AuditFiles:
    """The part of an audit log that is not in its database: where its keys live.

    Whoever opens the database says where (a node: ``NODE_DIR/keys``), by setting
    ``engine.update_execution_options(**{AUDIT_FILES_OPTION: files})``;
    :mod:`genomenode.access.audit` refuses to write or verify a log without it.

    Attributes
    ----------
    key_file
        The HMAC key of the entry chain (created 0600 on first use).
    checkpoint_keys
        Directory of the ES256 keys that sign checkpoints (created 0700).
    log_id
        Who keeps the log (a node id, a network id): the ``iss`` of checkpoints.
    checkpoint_every_entries
        Sign a checkpoint when an append passes a multiple of this id (0: never).
    checkpoint_every_seconds
        ... or when this long has passed since this process last signed one (0:
        never).
    """

    key_file: pathlib.Path
    checkpoint_keys: pathlib.Path
    log_id: str
    checkpoint_every_entries: int = 1000
    checkpoint_every_seconds: float = 600.0


class DacMember(Base):
    """A member of a dataset's data access committee, added by an operator.

    The subjects listed under ``dac.members`` in dataset.yaml are members too; the
    committee is the union (:func:`genomenode.access.workflow.dac_members`).
    """

    __tablename__ = "dac_members"

    dataset_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    added_by: Mapped[str] = mapped_column(Text)
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AccessApplication(Base):
    """An application for access to one dataset (see docs/access.md, DAC workflow).

    ``version`` grows by one with every change: a transition updates the row only
    where both ``version`` and ``state`` are still what it read.
    """

    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # No cascade: a dataset with applications is not deleted by accident.
    dataset_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("datasets.id"), index=True
    )
    applicant: Mapped[str] = mapped_column(String(255), index=True)
    members: Mapped[list[str]] = mapped_column(JSON)
    project_title: Mapped[str] = mapped_column(Text)
    purpose: Mapped[dict[str, Any]] = mapped_column(JSON)
    purpose_text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AccessApplicationEvent(Base):
    """One step in the life of an application: who did what, from which state."""

    __tablename__ = "application_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("applications.id"), index=True
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)


class Entitlement(Base):
    """Access to a dataset granted by an approved application.

    Active while not revoked and ``starts_at <= now < ends_at``; the access check
    reads only this table, so it does not wait for expiry to be recorded.
    """

    __tablename__ = "entitlements"
    # (subject, dataset_id) serves the per-request lookup by subject as well.
    __table_args__ = (
        Index("ix_entitlements_subject_dataset", "subject", "dataset_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("applications.id"), unique=True
    )
    subject: Mapped[str] = mapped_column(String(255))
    dataset_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("datasets.id"), index=True
    )
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(Text, nullable=True)

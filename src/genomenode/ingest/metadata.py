"""Load a dataset's metadata into the database, invisible until published."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.orm import Session

from ..dataset import DatasetDescription
from ..store.generation import bump_generation
from ..store.models import (
    STATUS_PUBLISHED,
    STATUS_STAGING,
    Biosample,
    Dataset,
    DataUseTerm,
    Disease,
    Individual,
    Measure,
    PhenotypicFeature,
    StoredFile,
)
from .clinical import ClinicalRecord

__all__ = ["load_metadata", "mark_published"]

_CHILD_TABLES = (
    StoredFile,
    Measure,
    Disease,
    PhenotypicFeature,
    Biosample,
    Individual,
    DataUseTerm,
)


def load_metadata(
    session: Session,
    description: DatasetDescription,
    *,
    fingerprint: str,
    records: Sequence[ClinicalRecord],
    samples: Sequence[str],
    num_variants: int,
    files: Sequence[dict[str, Any]],
    before_commit: Callable[[], None] = lambda: None,
) -> int:
    """Replace the staging rows of the dataset with these, in one transaction.

    Returns the number of individuals: those with clinical records plus genotyped
    samples without one.
    """
    dataset_id = description.id
    sample_index = {sample: index for index, sample in enumerate(samples)}
    by_id = {record.id: record for record in records}
    num_individuals = len(set(by_id) | set(samples))
    with session.begin():
        for table in _CHILD_TABLES:
            session.execute(delete(table).where(table.dataset_id == dataset_id))
        session.execute(delete(Dataset).where(Dataset.id == dataset_id))
        session.add(
            Dataset(
                id=dataset_id,
                name=description.name,
                description=description.description,
                country=description.country,
                contact_name=description.contact_name,
                contact_email=description.contact_email,
                security_level=description.security_level,
                assembly=description.assembly,
                status=STATUS_STAGING,
                fingerprint=fingerprint,
                num_individuals=num_individuals,
                num_samples=len(samples),
                num_variants=num_variants,
                description_document=dict(description.document),
                created_at=dt.datetime.now(dt.UTC),
            )
        )
        session.flush()
        _insert(
            session,
            DataUseTerm,
            [
                {
                    "dataset_id": dataset_id,
                    "term_id": term.id,
                    "label": term.label,
                    "disease_id": term.disease,
                }
                for term in description.data_use
            ],
        )
        individuals = []
        for record in records:
            individuals.append(
                _individual_row(dataset_id, record, sample_index.get(record.id))
            )
        for sample in samples:
            if sample not in by_id:
                # Genotyped without clinical data (missing_clinical: allow).
                individuals.append(
                    {
                        "dataset_id": dataset_id,
                        "id": sample,
                        "sex_id": "NCIT:C17998",
                        "sex_label": "unknown",
                        "sample_index": sample_index[sample],
                        "record": {
                            "id": sample,
                            "sex": {"id": "NCIT:C17998", "label": "unknown"},
                        },
                    }
                )
        _insert(session, Individual, individuals)
        _insert(
            session,
            Biosample,
            [
                {
                    "dataset_id": dataset_id,
                    "id": sample,
                    "individual_id": sample,
                    "sample_index": index,
                }
                for index, sample in enumerate(samples)
            ],
        )
        _insert(
            session,
            PhenotypicFeature,
            [
                {
                    "dataset_id": dataset_id,
                    "individual_id": record.id,
                    "term_id": term,
                    "label": label,
                    "excluded": excluded,
                }
                for record in records
                for term, label, excluded in record.phenotypic_features
            ],
        )
        _insert(
            session,
            Disease,
            [
                {
                    "dataset_id": dataset_id,
                    "individual_id": record.id,
                    "term_id": term,
                    "label": label,
                }
                for record in records
                for term, label in record.diseases
            ],
        )
        _insert(
            session,
            Measure,
            [
                {
                    "dataset_id": dataset_id,
                    "individual_id": record.id,
                    "assay_id": assay,
                    "assay_label": assay_label,
                    "value": value,
                    "unit_id": unit,
                    "unit_label": unit_label,
                }
                for record in records
                for assay, assay_label, value, unit, unit_label in record.measures
            ],
        )
        _insert(
            session, StoredFile, [{"dataset_id": dataset_id, **row} for row in files]
        )
        before_commit()
    return num_individuals


def mark_published(session: Session, dataset_id: str) -> None:
    """Make the dataset visible: one UPDATE (and the generation's), committed."""
    with session.begin():
        session.execute(
            update(Dataset)
            .where(Dataset.id == dataset_id, Dataset.status == STATUS_STAGING)
            .values(status=STATUS_PUBLISHED, published_at=dt.datetime.now(dt.UTC))
        )
        bump_generation(session)


def _individual_row(
    dataset_id: str, record: ClinicalRecord, sample_index: int | None
) -> dict[str, Any]:
    return {
        "dataset_id": dataset_id,
        "id": record.id,
        "sex_id": record.sex_id,
        "sex_label": record.sex_label,
        "age_years": record.age_years,
        "country_of_birth": record.country_of_birth,
        "ethnicity_id": record.ethnicity[0] if record.ethnicity else None,
        "ethnicity_label": record.ethnicity[1] if record.ethnicity else None,
        "geographic_origin_id": (
            record.geographic_origin[0] if record.geographic_origin else None
        ),
        "geographic_origin_label": (
            record.geographic_origin[1] if record.geographic_origin else None
        ),
        "sample_index": sample_index,
        "record": record.record,
    }


def _insert(session: Session, table: type, rows: list[dict[str, Any]]) -> None:
    # executemany in batches keeps memory flat for large cohorts.
    for start in range(0, len(rows), 5_000):
        batch = rows[start : start + 5_000]
        if batch:
            session.execute(insert(table), batch)

"""The filtering terms of published datasets, for the Beacon ``/filtering_terms``.

Terms are derived from the data actually ingested, so a client sees exactly what
can match: every sex, ethnicity, geographic origin, disease, (non-excluded)
phenotypic feature and measure assay of the datasets, as ``ontologyTerm`` s; every
measure assay again, and the individual fields present (see
:data:`~genomenode.beacon.filters.ALPHANUMERIC_FIELDS`), as ``alphanumeric``; and
every ``<field>:<value>`` of the custom fields
(:data:`~genomenode.beacon.filters.CUSTOM_FIELDS`) as ``custom``, one per value as
the data spells it (``sex:female``, ``ethnicity:South Asian``, ``countryOfBirth:FI``;
values that differ only in case or ``_`` / space are listed once). Ancestors of the
terms are valid filters too (descendant expansion) but are not listed.
``resources`` describes each vocabulary the listed terms come from (see
:data:`~genomenode.vocab.ontology.VOCABULARIES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from genomenode.store.models import (
    Dataset,
    Disease,
    Individual,
    Measure,
    PhenotypicFeature,
    published_datasets,
)

from ..vocab import ontology
from .filters import ALPHANUMERIC_FIELDS, CUSTOM_FIELDS, normalise_custom_value

__all__ = ["TERM_SCOPES", "filtering_terms"]

#: Every term describes individuals (the Beacon entry type id, as in the schema).
TERM_SCOPES: tuple[str, ...] = ("individual",)

_FIELD_LABELS = {
    "age": "Age (years)",
    "sex": "Sex",
    "countryOfBirth": "Country of birth (ISO 3166-1 alpha-2)",
    "ethnicity": "Ethnicity",
    "geographicOrigin": "Geographic origin",
}
#: Custom terms are labelled "<field label>: <value>", e.g. "Country of birth: FI".
_CUSTOM_LABELS = {
    "sex": "Sex",
    "countryOfBirth": "Country of birth",
    "ethnicity": "Ethnicity",
    "geographicOrigin": "Geographic origin",
}
#: The column each individual field's values are listed from: for text fields, the
#: label people query by (ids are listed as ontology terms).
_FIELD_COLUMNS = {
    "age": Individual.age_years,
    "sex": Individual.sex_label,
    "countryOfBirth": Individual.country_of_birth,
    "ethnicity": Individual.ethnicity_label,
    "geographicOrigin": Individual.geographic_origin_label,
}


def _term(kind: str, term_id: str, term_label: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": kind, "id": term_id}
    term_label = term_label or ontology.label(term_id)
    if term_label:
        entry["label"] = term_label
    entry["scopes"] = list(TERM_SCOPES)
    return entry


def filtering_terms(
    session: Session, dataset_ids: Sequence[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The filtering terms and ontology resources of the given published datasets.

    Parameters
    ----------
    session
        A session on the node's metadata database.
    dataset_ids
        The datasets to describe; those not published are left out.

    Returns
    -------
    tuple of (list of dict, list of dict)
        ``filteringTerms`` (``type`` ``ontologyTerm``, ``alphanumeric`` or
        ``custom``, ``id``, ``label`` when known, ``scopes``, and ``values`` for
        text fields) sorted by type and id, and ``resources`` (one per
        vocabulary used, sorted by prefix), as Beacon v2 ``filteringTermsSchema``
        defines them.
    """
    visible = (
        published_datasets()
        .where(Dataset.id.in_(dataset_ids))
        .with_only_columns(Dataset.id)
    )
    ontology_labels: dict[str, str | None] = {}

    def collect(rows: Any) -> None:
        # The first non-empty label of a term wins; datasets may label it differently.
        for term_id, term_label in rows:
            if term_id is not None and not ontology_labels.get(term_id):
                ontology_labels[term_id] = term_label

    pairs = (
        (Individual.sex_id, Individual.sex_label),
        (Individual.ethnicity_id, Individual.ethnicity_label),
        (Individual.geographic_origin_id, Individual.geographic_origin_label),
        (Disease.term_id, Disease.label),
        (PhenotypicFeature.term_id, PhenotypicFeature.label),
        (Measure.assay_id, Measure.assay_label),
    )
    for id_column, label_column in pairs:
        table = id_column.class_
        query = select(id_column, label_column).where(table.dataset_id.in_(visible))
        if table is PhenotypicFeature:
            query = query.where(PhenotypicFeature.excluded.is_(False))
        collect(session.execute(query.distinct()))

    terms = [
        _term("ontologyTerm", term_id, term_label)
        for term_id, term_label in ontology_labels.items()
    ]
    assays = session.execute(
        select(Measure.assay_id, Measure.assay_label)
        .where(Measure.dataset_id.in_(visible), Measure.value.is_not(None))
        .distinct()
    )
    terms += [_term("alphanumeric", assay, label) for assay, label in assays]
    terms += _individual_fields(session, visible)
    terms.sort(key=lambda term: (term["type"], term["id"]))

    prefixes = {ontology.prefix(term_id) for term_id in ontology_labels}
    resources = [
        vocabulary.resource()
        for prefix, vocabulary in sorted(ontology.VOCABULARIES.items())
        if prefix in prefixes
    ]
    return terms, resources


def _individual_fields(session: Session, visible: Any) -> list[dict[str, Any]]:
    """The individual fields some individual has, and the custom terms they give."""
    fields = []
    for name in ALPHANUMERIC_FIELDS:
        column = _FIELD_COLUMNS[name]
        query = select(column).where(
            Individual.dataset_id.in_(visible), column.is_not(None)
        )
        if name == "age":
            # Ages are listed as a field, not by value: one row says it exists.
            query = query.limit(1)
        present = sorted({str(value) for value in session.scalars(query.distinct())})
        if not present:
            continue
        field = _term("alphanumeric", name, _FIELD_LABELS[name])
        if name != "age":
            field["values"] = present
        fields.append(field)
        if name in CUSTOM_FIELDS:
            fields += _custom_terms(name, present)
    return fields


def _custom_terms(field: str, values: list[str]) -> list[dict[str, Any]]:
    """One ``custom`` term per distinct value (as the filter compares them)."""
    terms = []
    seen = set()
    for value in values:
        key = normalise_custom_value(value)
        if not key or key in seen:
            continue
        seen.add(key)
        value = value.strip()
        label = f"{_CUSTOM_LABELS[field]}: {value}"
        terms.append(_term("custom", f"{field}:{value}", label))
    return terms

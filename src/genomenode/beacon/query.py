"""The normalised Beacon request: what :mod:`.requests` parses peers' requests into.

Every part of genomenode that answers a Beacon query reads these frozen
dataclasses, never the raw GET parameters or POST body. Coordinates are as the
Beacon specification defines them: 0-based, ``start`` inclusive, ``end`` exclusive.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

__all__ = [
    "BeaconRequest",
    "Filter",
    "FilterKind",
    "Granularity",
    "IncludeResultsetResponses",
    "Operator",
    "RequestedSchema",
    "Similarity",
    "VariantKind",
    "VariantQuery",
]

Granularity = Literal["boolean", "count", "record"]
IncludeResultsetResponses = Literal["HIT", "MISS", "ALL", "NONE"]
VariantKind = Literal["sequence", "range", "bracket", "gene", "hgvs"]
FilterKind = Literal["ontology", "alphanumeric", "custom"]
Operator = Literal["=", "<", ">", "!", ">=", "<="]
Similarity = Literal["exact", "high", "medium", "low"]


@dataclasses.dataclass(frozen=True)
class RequestedSchema:
    """One entry of ``meta.requestedSchemas`` (GET: ``requestedSchema``).

    Parameters
    ----------
    entity_type
        The entry type the schema is requested for, if given (POST only).
    schema
        The schema id or URL, e.g. ``"ga4gh-beacon-variant-v2.0.0"``.
    """

    entity_type: str | None = None
    schema: str | None = None


@dataclasses.dataclass(frozen=True)
class Filter:
    """One filtering term; multiple filters are combined with logical AND.

    Parameters
    ----------
    id
        The term (``HP:0001627``), field (``LOINC:35925-4``) or custom term id.
    kind
        ``"ontology"`` (a CURIE with an ontology-like prefix, or any filter carrying
        ``includeDescendantTerms`` / ``similarity``), ``"alphanumeric"`` (carries
        ``operator`` or ``value``) or ``"custom"`` (anything else).
    scope
        The entry type the filter applies to, if given.
    include_descendant_terms
        Ontology filters only; the schema's default is true.
    similarity
        Ontology filters only; the schema's default is ``"exact"``.
    operator
        Alphanumeric filters only; the schema's default is ``"="``.
    value
        Alphanumeric filters only; numbers sent as JSON numbers become strings.
    """

    id: str
    kind: FilterKind
    scope: str | None = None
    include_descendant_terms: bool = True
    similarity: Similarity = "exact"
    operator: Operator | None = None
    value: str | None = None

    @property
    def has_wildcard(self) -> bool:
        """Whether ``value`` uses ``%`` wildcards (only with ``=`` and ``!``).

        With ``<``, ``>``, ``<=`` and ``>=`` a ``%`` is literal (e.g. a unit).
        """
        return (
            self.operator in ("=", "!") and self.value is not None and "%" in self.value
        )


@dataclasses.dataclass(frozen=True)
class VariantQuery:
    """A genomic-variation query; coordinates are 0-based and half-open.

    Parameters
    ----------
    kind
        ``"sequence"`` (``start`` with one value, no ``end``; needs
        ``referenceName`` and ``alternateBases``), ``"range"`` (one ``start`` and
        one ``end``), ``"bracket"`` (two values in both ``start`` and ``end``),
        ``"gene"`` (``geneId``) or ``"hgvs"`` (only ``genomicAlleleShortForm``).
    reference_name
        ``referenceName`` without a leading ``chr``.
    reference_name_original
        ``referenceName`` as sent.
    start
        ``()`` or one or two 0-based positions: ``(start,)`` or ``(min, max)``.
    end
        ``()`` or one or two 0-based exclusive positions: ``(end,)`` or
        ``(min, max)``.
    """

    kind: VariantKind
    reference_name: str | None = None
    reference_name_original: str | None = None
    assembly_id: str | None = None
    start: tuple[int, ...] = ()
    end: tuple[int, ...] = ()
    reference_bases: str | None = None
    alternate_bases: str | None = None
    variant_type: str | None = None
    variant_min_length: int | None = None
    variant_max_length: int | None = None
    gene_id: str | None = None
    aminoacid_change: str | None = None
    genomic_allele_short_form: str | None = None
    mate_name: str | None = None


@dataclasses.dataclass(frozen=True)
class BeaconRequest:
    """A Beacon v2 request, whichever way it was sent; defaults are the schema's.

    Parameters
    ----------
    api_version
        ``meta.apiVersion`` (GET: ``apiVersion``), or None if not sent.
    requested_schemas
        ``meta.requestedSchemas`` (GET: ``requestedSchema``).
    granularity
        ``requestedGranularity``; default ``"boolean"``.
    include_resultset_responses
        ``includeResultsetResponses``; default ``"HIT"``.
    skip
        Pages to skip; default 0.
    limit
        Page size; default 10; 0 means "all, or the Beacon's maximum".
    test_mode
        ``testMode``; default false.
    filters
        The filtering terms, in the order sent.
    variant
        The genomic-variation query, or None if no request parameters were sent.
    """

    api_version: str | None = None
    requested_schemas: tuple[RequestedSchema, ...] = ()
    granularity: Granularity = "boolean"
    include_resultset_responses: IncludeResultsetResponses = "HIT"
    skip: int = 0
    limit: int = 10
    test_mode: bool = False
    filters: tuple[Filter, ...] = ()
    variant: VariantQuery | None = None

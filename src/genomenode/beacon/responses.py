"""Turn an engine :class:`~.engine.Answer` into the Beacon v2 response document.

Shapes (all validated against the official schemas in the tests):

- *boolean*: ``beaconBooleanResponse`` — ``meta`` + ``responseSummary.exists``;
- *count*: ``beaconCountResponse`` plus ``response.resultSets``, one per dataset
  with ``resultsCount`` and empty ``results`` (what the GDI portal reads);
- *record*: ``beaconResultsetsResponse`` (``beaconCollectionsResponse`` for
  datasets and cohorts) with one page of records per dataset.

Counts and yes/no answers below record granularity are those disclosure control
released (:mod:`.guard`, :mod:`genomenode.disclosure`): perturbed, rounded, and a
small count reported as the floor, which the result set says in ``info``
(``countAdjustedTo``, ``countPrecision: "fewer-or-equal"``), so the answer reveals
only "between 1 and the floor". Totals add the released values, never the true
ones. Datasets whose answer was withheld are named in ``info.datasetsWithheld``.
"""

from __future__ import annotations

from typing import Any

from ..access import Caller
from ..disclosure.control import DisclosureControl
from .engine import COLLECTIONS, Answer, DatasetAnswer
from .entry_types import ENTRY_TYPES_BY_ENDPOINT
from .query import BeaconRequest, VariantQuery
from .records import build_records

__all__ = ["received_request_summary", "result_response"]


def _request_parameters(variant: VariantQuery | None) -> dict[str, Any]:
    if variant is None:
        return {}
    fields = {
        "assemblyId": variant.assembly_id,
        "referenceName": variant.reference_name_original or variant.reference_name,
        "start": list(variant.start) or None,
        "end": list(variant.end) or None,
        "referenceBases": variant.reference_bases,
        "alternateBases": variant.alternate_bases,
        "variantType": variant.variant_type,
        "variantMinLength": variant.variant_min_length,
        "variantMaxLength": variant.variant_max_length,
        "geneId": variant.gene_id,
        "aminoacidChange": variant.aminoacid_change,
        "genomicAlleleShortForm": variant.genomic_allele_short_form,
        "mateName": variant.mate_name,
    }
    return {"g_variant": {k: v for k, v in fields.items() if v is not None}}


def received_request_summary(
    request: BeaconRequest, api_version: str
) -> dict[str, Any]:
    """``meta.receivedRequestSummary``: the request as the node understood it."""
    summary: dict[str, Any] = {
        "apiVersion": request.api_version or api_version,
        "requestedSchemas": [
            {
                key: value
                for key, value in (
                    ("entityType", schema.entity_type),
                    ("schema", schema.schema),
                )
                if value is not None
            }
            for schema in request.requested_schemas
        ],
        "pagination": {"skip": request.skip, "limit": request.limit},
        "requestedGranularity": request.granularity,
        "includeResultsetResponses": request.include_resultset_responses,
        "testMode": request.test_mode,
    }
    if request.filters:
        summary["filters"] = [item.id for item in request.filters]
    parameters = _request_parameters(request.variant)
    if parameters:
        summary["requestParameters"] = parameters
    return summary


def _included(item: DatasetAnswer, include: str) -> bool:
    hit = item.released_exists
    return {"HIT": hit, "MISS": not hit, "ALL": True, "NONE": False}[include]


def _result_set(
    answer: Answer,
    item: DatasetAnswer,
    caller: Caller,
    disclosure: DisclosureControl | None,
) -> dict[str, Any]:
    entry = answer.scope.entry_type
    count = item.released_count
    result_set: dict[str, Any] = {
        "id": item.dataset.id,
        "setType": "cohort" if entry == "cohorts" else "dataset",
        "exists": item.released_exists,
        "resultsCount": count,
        "results": (
            build_records(entry, item.dataset, item.keys, caller, disclosure)
            if answer.granularity == "record"
            else []
        ),
    }
    if item.adjusted:
        result_set["info"] = {
            "countAdjustedTo": count,
            "countPrecision": "fewer-or-equal",
        }
    return result_set


def result_response(
    answer: Answer,
    *,
    caller: Caller,
    meta: dict[str, Any],
    disclosure: DisclosureControl | None = None,
) -> dict[str, Any]:
    """The whole response document of an entry-type query.

    ``disclosure``: the node's layer, which the variants' frequencies pass.

    ``meta`` comes from the framework (beaconId, apiVersion); this adds
    ``returnedGranularity``, ``returnedSchemas`` and ``receivedRequestSummary``.
    """
    entry = answer.scope.entry_type
    request = answer.request
    document: dict[str, Any] = {
        "meta": {
            **meta,
            "returnedGranularity": answer.granularity,
            "returnedSchemas": [ENTRY_TYPES_BY_ENDPOINT[entry].returned_schema()],
            "receivedRequestSummary": received_request_summary(
                request, meta["apiVersion"]
            ),
            "testMode": request.test_mode,
        },
    }
    exists = any(item.released_exists for item in answer.datasets)
    summary: dict[str, Any] = {"exists": exists}
    if answer.granularity != "boolean":
        summary["numTotalResults"] = sum(
            item.released_count for item in answer.datasets
        )
    document["responseSummary"] = summary
    info: dict[str, Any] = {}
    if answer.lower_datasets:
        info["datasetsAtLowerGranularity"] = list(answer.lower_datasets)
    if answer.suppressed_datasets:
        info["datasetsSuppressed"] = list(answer.suppressed_datasets)
    if answer.withheld_datasets:
        info["datasetsWithheld"] = dict(answer.withheld_datasets)
    if info:
        document["info"] = info
    if answer.granularity == "boolean":
        return document
    included = [
        item
        for item in answer.datasets
        if _included(item, request.include_resultset_responses)
    ]
    if entry in COLLECTIONS:
        collections: list[dict[str, Any]] = []
        if answer.granularity == "record":
            for item in included:
                if item.released_exists:
                    collections.extend(
                        build_records(
                            entry, item.dataset, item.keys, caller, disclosure
                        )
                    )
        document["response"] = {"collections": collections}
        return document
    document["response"] = {
        "resultSets": [
            _result_set(answer, item, caller, disclosure) for item in included
        ]
    }
    return document

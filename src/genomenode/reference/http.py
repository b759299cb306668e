"""The node's ``/reference`` routes (mounted with ``prefix="/reference"``).

``GET /reference`` lists the node's reference (datasets, populations, when built);
``GET /reference/variants/{variant_id}`` answers one variant
(:func:`.service.variant_reference`). Both publish aggregates only, after the
release rules of :mod:`.release`; the work runs off the event loop.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..disclosure.control import DisclosureControl
from ..store.published import PublishedDatasets
from ..web.blocking import run_blocking
from ..web.responses import json_response
from .release import release_allowed
from .service import reference_store, variant_reference

__all__ = ["ReferenceService", "reference_index", "router", "variant"]

router = APIRouter(tags=["reference"])


@dataclasses.dataclass(frozen=True)
class ReferenceService:
    """What the routes share (``app.state.reference``)."""

    published: PublishedDatasets
    disclosure: DisclosureControl
    release_controlled: bool
    node_id: str
    country: str


def reference_service(request: Request) -> ReferenceService:
    service: ReferenceService = request.app.state.reference
    return service


def _index(service: ReferenceService) -> dict[str, Any]:
    datasets = []
    floor = service.disclosure.settings.floor if service.disclosure.enabled else 0
    for handle in service.published.datasets():
        if handle.site_counts is not None:
            continue
        allowed, why = release_allowed(
            handle.facts.security_level,
            [term["id"] for term in handle.data_use],
            service.release_controlled,
        )
        item: dict[str, Any] = {"datasetId": handle.id, "country": handle.facts.country}
        if not allowed:
            item["withheld"] = why
            datasets.append(item)
            continue
        store = reference_store(handle)
        item["built"] = store is not None
        if store is not None:
            item["builtAt"] = store.built_at
            item["qcApplied"] = store.qc
            item["populations"] = [
                {"population": name, "samples": samples}
                for name, samples in zip(
                    store.populations, store.population_samples, strict=True
                )
                if samples >= floor
            ]
        datasets.append(item)
    return {
        "nodeId": service.node_id,
        "country": service.country,
        "variantIds": "<contig>-<POS>-<REF>-<ALT>, e.g. 1-1000123-A-G",
        "datasets": datasets,
    }


@router.get("", summary="The node's allele-frequency reference: datasets, populations")
async def reference_index(request: Request) -> JSONResponse:
    service = reference_service(request)
    return json_response(await run_blocking(request, _index, service))


@router.get(
    "/variants/{variant_id}",
    summary="One variant's allele frequencies per Genome of Europe population",
)
async def variant(request: Request, variant_id: str) -> JSONResponse:
    service = reference_service(request)
    document = await run_blocking(
        request,
        variant_reference,
        service.published,
        service.disclosure,
        variant_id,
        release_controlled=service.release_controlled,
    )
    document["nodeId"] = service.node_id
    return json_response(document)

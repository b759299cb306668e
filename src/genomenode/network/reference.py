"""The network's ``/reference`` routes: the union of every node's reference.

``GET /reference`` lists every node's reference (its ``GET /reference``);
``GET /reference/variants/{variant_id}`` asks every registered node's
``/reference/variants/{variant_id}`` concurrently (each within the registry's
timeout; a node whose circuit breaker is open is not asked) and answers with

- ``countries``: each country's own populations (``FI``, ``FI_M``, ``FI_F``),
  summed over the nodes holding that country;
- ``pooled``: the European numbers, ``total``, ``M`` and ``F``, the sums of
  every node's published rows (``total``: of the countries' rows);
- ``nodes``: every registered node with its status, as the Beacon network does;
- ``pooledIncomplete``: the pooled sex rows some node left out of its answer (it
  withheld them under its small-count rule), so their sums miss that node.

The nodes have already applied their release rules and small-count rule: the
network only adds up what they published (a sum is ``adjusted`` when a part was).
The variant id is checked before any node is asked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx2
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..reference.populations import TOTAL
from ..reference.release import PopulationFrequency
from ..reference.service import parse_variant, sum_frequencies
from ..web.responses import json_response
from .breaker import Breakers
from .registry import RegisteredNode, Registry

__all__ = ["network_reference_index", "network_variant", "router"]

router = APIRouter(tags=["reference"])

_FIELDS = (
    "alleleCount",
    "alleleNumber",
    "alleleCountHomozygous",
    "alleleCountHeterozygous",
    "alleleCountHemizygous",
)


def _rows(document: Any) -> list[PopulationFrequency]:
    """A node's population rows; ValueError when they are not what a node sends."""
    if not isinstance(document, dict) or not isinstance(
        document.get("populations"), list
    ):
        raise ValueError("no populations list")
    rows = []
    for item in document["populations"]:
        if not isinstance(item, dict) or not isinstance(item.get("population"), str):
            raise ValueError("a population without a name")
        values = [item.get(field) for field in _FIELDS]
        counts = [value for value in values if isinstance(value, int) and value >= 0]
        if len(counts) != len(values):
            raise ValueError(f"population {item['population'][:20]!r}: bad counts")
        rows.append(
            PopulationFrequency.of(
                item["population"][:20], counts, adjusted=bool(item.get("adjusted"))
            )
        )
    return rows


def _index(document: Any) -> list[dict[str, Any]]:
    """A node's ``GET /reference`` datasets; ValueError when not a list of them."""
    if not isinstance(document, dict) or not isinstance(document.get("datasets"), list):
        raise ValueError("no datasets list")
    items = [item for item in document["datasets"] if isinstance(item, dict)]
    if len(items) != len(document["datasets"]):
        raise ValueError("a dataset that is not an object")
    return items


async def _ask(
    client: httpx2.AsyncClient,
    node: RegisteredNode,
    path: str,
    timeout: float,
    breakers: Breakers | None,
    parse: Callable[[Any], list[Any]] = _rows,
) -> tuple[dict[str, Any], list[Any]]:
    started = time.perf_counter()
    status: dict[str, Any] = {"id": node.id, "country": node.country}
    breaker = breakers[node.id] if breakers is not None else None
    admission = breaker.admit() if breaker is not None else "closed"
    if breaker is not None and admission is None:
        return {**status, "status": "unavailable", "reason": breaker.reason()}, []
    rows: list[Any] = []
    try:
        response = await asyncio.wait_for(
            client.get(f"{node.url}{path}", timeout=timeout), timeout
        )
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code}")
        rows = parse(response.json())
        status["status"] = "ok"
    except (TimeoutError, httpx2.TimeoutException):
        status.update(status="timeout", reason="no answer in time")
    except (httpx2.HTTPError, OSError) as error:
        status.update(status="error", reason=str(error)[:200])
    except ValueError as error:
        status.update(status="invalid", reason=str(error)[:200])
    if breaker is not None and admission is not None:
        breaker.record(
            admission,
            failed=status["status"] != "ok",
            reason=str(status.get("reason", "")),
        )
    status["latencyMs"] = round((time.perf_counter() - started) * 1000, 1)
    return status, rows


def _country(population: str) -> str | None:
    head = population.split("_")[0]
    return head if len(head) == 2 and head.isupper() else None


def _pooled(rows: list[list[PopulationFrequency]]) -> list[PopulationFrequency]:
    summed = sum_frequencies(rows)
    countries = [item for item in summed if len(item.population) == 2]
    pooled = [item for item in summed if item.population in ("M", "F", TOTAL)]
    if len(countries) == 1:
        only = countries[0]
        pooled.append(
            PopulationFrequency(
                TOTAL,
                only.allele_count,
                only.allele_number,
                only.allele_count_hom,
                only.allele_count_het,
                only.allele_count_hemi,
                adjusted=only.adjusted,
            )
        )
    order = {TOTAL: 0, "M": 1, "F": 2}
    return sorted(pooled, key=lambda item: order[item.population])


def _incomplete(rows: list[list[PopulationFrequency]]) -> list[str]:
    """Pooled sex rows that leave out a node which withheld its own (a small
    group): the sum is then over the other nodes only."""
    missing = []
    for name in ("M", "F"):
        if any(all(item.population != name for item in part) for part in rows):
            missing.append(name)
    return missing


@router.get(
    "/variants/{variant_id}",
    summary="One variant's allele frequencies: every country's and the pooled ones",
)
async def network_variant(request: Request, variant_id: str) -> JSONResponse:
    contig, position, reference, alternate = parse_variant(variant_id)
    canonical = f"{contig}-{position}-{reference}-{alternate}"
    registry: Registry = request.app.state.registry
    breakers: Breakers | None = getattr(request.app.state, "breakers", None)
    path = f"/reference/variants/{quote(canonical, safe='')}"
    answers = await asyncio.gather(
        *(
            _ask(
                request.app.state.client,
                node,
                path,
                registry.timeout_seconds,
                breakers,
            )
            for node in registry.nodes
        )
    )
    node_rows = [rows for _, rows in answers if rows]
    by_country: dict[str, list[list[PopulationFrequency]]] = {}
    nodes_of: dict[str, list[str]] = {}
    for status, rows in answers:
        for country in sorted({c for item in rows if (c := _country(item.population))}):
            by_country.setdefault(country, []).append(
                [item for item in rows if _country(item.population) == country]
            )
            nodes_of.setdefault(country, []).append(status["id"])
    countries = [
        {
            "country": country,
            "nodes": nodes_of[country],
            "populations": [item.document() for item in sum_frequencies(parts)],
        }
        for country, parts in sorted(by_country.items())
    ]
    document = {
        "variantId": canonical,
        "exists": bool(countries),
        "countries": countries,
        "pooled": [item.document() for item in _pooled(node_rows)],
        "pooledIncomplete": _incomplete(node_rows),
        "nodes": [status for status, _ in answers],
    }
    return json_response(document)


@router.get("", summary="Every node's reference: datasets, populations, when built")
async def network_reference_index(request: Request) -> JSONResponse:
    registry: Registry = request.app.state.registry
    breakers: Breakers | None = getattr(request.app.state, "breakers", None)
    answers = await asyncio.gather(
        *(
            _ask(
                request.app.state.client,
                node,
                "/reference",
                registry.timeout_seconds,
                breakers,
                _index,
            )
            for node in registry.nodes
        )
    )
    return json_response(
        {
            "nodes": [{**status, "datasets": datasets} for status, datasets in answers],
            "variantIds": "<contig>-<POS>-<REF>-<ALT>, e.g. 1-1000123-A-G",
        }
    )

"""The portal's pages over the node's and network's results APIs (the analysis
pages: :mod:`.jobs`).

=============================================  ====================================
``GET /variants/{variant_id}``                 a variant in every population
                                               (the ``/reference`` API)
``GET /datasets/{node}/{dataset}/qc``          a dataset's QC summary and its
                                               1+MG-ready declaration (``/qc``)
=============================================  ====================================

Like every page, these ask an API an outside client could call, with the
visitor's passport (:mod:`.backend`): the reference numbers are those the node
or the network published after its release rules and small-count rule, and the
QC page shows only what ``GET /qc/{dataset}?format=json`` gave this visitor.
The shaping here only arranges what came back; it adds nothing.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from . import backend
from .charts import frequency_chart
from .pages import error_page, portal_of, render, session_of
from .search import CountryFrequency, mapping
from .site import set_visitor

__all__ = [
    "PopulationRow",
    "ReferenceAnswer",
    "reference_answer",
    "router",
]

router = APIRouter(include_in_schema=False, dependencies=[Depends(set_visitor)])

_VARIANT = re.compile(
    r"^[A-Za-z0-9._]{1,40}-[0-9]{1,12}-[A-Za-z]{1,200}-[A-Za-z]{1,200}$"
)
_NAME = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
_SEXES = {"M": "male", "F": "female"}


@dataclasses.dataclass(frozen=True)
class PopulationRow:
    """One population's published numbers of the variant, as the API sent them."""

    population: str
    label: str
    allele_count: int
    allele_number: int
    allele_frequency: float
    homozygous: int
    heterozygous: int
    hemizygous: int
    faf95: float
    adjusted: bool


@dataclasses.dataclass(frozen=True)
class ReferenceAnswer:
    """What the reference page shows: per country its rows, the pooled rows,
    each node's status, the datasets a node withheld and why."""

    variant_id: str
    exists: bool
    countries: tuple[tuple[str, tuple[PopulationRow, ...]], ...]
    pooled: tuple[PopulationRow, ...]
    pooled_incomplete: tuple[str, ...]
    nodes: tuple[dict[str, Any], ...]
    withheld: tuple[tuple[str, str], ...]

    @property
    def complete(self) -> bool:
        return all(node.get("status") == "ok" for node in self.nodes)

    def chart_countries(self) -> list[CountryFrequency]:
        """Each country's total and sexes, for :func:`.charts.frequency_chart`."""
        bars = []
        for country, rows in self.countries:
            by_name = {row.population: row for row in rows}
            whole = by_name.get(country)
            if whole is None:
                continue

            bars.append(
                CountryFrequency(
                    country,
                    whole.allele_count,
                    whole.allele_number,
                    female=_counts(by_name.get(f"{country}_F")),
                    male=_counts(by_name.get(f"{country}_M")),
                )
            )
        return bars


def _counts(row: PopulationRow | None) -> tuple[int, int] | None:
    return (row.allele_count, row.allele_number) if row is not None else None


def _label(population: str) -> str:
    if population == "total":
        return "Europe, everyone"
    if population in _SEXES:
        return f"Europe, {_SEXES[population]}s"
    country, _, sex = population.partition("_")
    return f"{country}, {_SEXES[sex]}s" if sex in _SEXES else f"{country}, everyone"


def _count(item: dict[str, Any], key: str) -> int:
    value = item.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _number(item: dict[str, Any], key: str) -> float:
    value = item.get(key)
    return float(value) if isinstance(value, (int, float)) else 0.0


def _rows(listed: Any) -> tuple[PopulationRow, ...]:
    rows = []
    for item in listed if isinstance(listed, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("population"), str):
            continue
        name = item["population"][:20]
        rows.append(
            PopulationRow(
                population=name,
                label=_label(name),
                allele_count=_count(item, "alleleCount"),
                allele_number=_count(item, "alleleNumber"),
                allele_frequency=_number(item, "alleleFrequency"),
                homozygous=_count(item, "alleleCountHomozygous"),
                heterozygous=_count(item, "alleleCountHeterozygous"),
                hemizygous=_count(item, "alleleCountHemizygous"),
                faf95=_number(item, "faf95"),
                adjusted=bool(item.get("adjusted")),
            )
        )
    return tuple(rows)


def reference_answer(
    document: Any, *, kind: str, node_status: dict[str, Any] | None = None
) -> ReferenceAnswer:
    """The page's view of a ``/reference/variants/{id}`` answer.

    A network's answer lists ``countries`` (each its own rows), ``pooled`` and
    ``nodes``; a node's lists its ``populations`` (its countries' rows, then
    the pooled ``M``, ``F``, ``total`` ones) and the datasets it withheld, and
    its one status is ``node_status``.
    """
    document = mapping(document)
    withheld = tuple(
        (str(name)[:200], str(why)[:300])
        for name, why in mapping(document.get("datasetsWithheld")).items()
    )
    if kind == "network":
        countries = tuple(
            (str(item.get("country", ""))[:20], _rows(item.get("populations")))
            for item in document.get("countries") or []
            if isinstance(item, dict)
        )
        pooled = _rows(document.get("pooled"))
        incomplete = tuple(
            str(name)[:5]
            for name in document.get("pooledIncomplete") or []
            if isinstance(name, str)
        )
        nodes = tuple(
            item for item in document.get("nodes") or [] if isinstance(item, dict)
        )
    else:
        rows = _rows(document.get("populations"))
        grouped: dict[str, list[PopulationRow]] = {}
        for row in rows:
            if row.population not in ("M", "F", "total"):
                grouped.setdefault(row.population.split("_")[0], []).append(row)
        countries = tuple((name, tuple(group)) for name, group in grouped.items())
        pooled = tuple(row for row in rows if row.population in ("total", "M", "F"))
        incomplete = ()
        nodes = (node_status,) if node_status else ()
    return ReferenceAnswer(
        nodes=tuple(_node(item) for item in nodes),
        variant_id=str(document.get("variantId", ""))[:400],
        exists=bool(document.get("exists")),
        countries=countries,
        pooled=pooled,
        pooled_incomplete=incomplete,
        withheld=withheld,
    )


def _node(item: dict[str, Any]) -> dict[str, Any]:
    """A node's status with every key the page reads (None when not sent)."""
    latency = item.get("latencyMs")
    return {
        "id": str(item.get("id", ""))[:200],
        "country": str(item.get("country", ""))[:20],
        "status": str(item.get("status", "error"))[:20],
        "reason": str(item["reason"])[:300] if item.get("reason") else None,
        "latencyMs": latency if isinstance(latency, (int, float)) else None,
    }


@router.get("/variants/{variant_id}", summary="A variant in every population")
async def reference_page(request: Request, variant_id: str) -> Response:
    """Ask the node's (or network's) ``/reference/variants/{id}`` as the
    visitor; a bad id is the API's 400, shown as a page."""
    if not _VARIANT.match(variant_id):
        return await error_page(
            request,
            400,
            "A variant is written contig-position-reference-alternate, "
            "e.g. 1-1000123-A-G.",
        )
    portal = portal_of(request)
    path = f"/reference/variants/{urllib.parse.quote(variant_id, safe='')}"
    asked = await backend.ask_own_api(
        portal, path, token=session_of(request).access_token
    )
    if not asked.ok or not isinstance(asked.document, dict):
        status = asked.status if asked.status in (400, 404, 422) else 502
        return await error_page(
            request, status, asked.message or "The reference did not answer."
        )
    document = asked.document
    node_status = None
    if portal.kind == "node":
        node = portal.nodes[0]
        node_status = {"id": node.node_id, "country": node.country, "status": "ok"}
    answer = reference_answer(document, kind=portal.kind, node_status=node_status)
    bars = answer.chart_countries()
    chart = frequency_chart(answer.variant_id, bars, chart_id="reference-chart")
    return await render(request, "reference.html", answer=answer, chart=chart)


#: The QC summary's numbers the page lists, with their words (in this order).
QC_FIELDS = (
    ("num_samples", "People"),
    ("num_samples_passed", "People who passed"),
    ("num_variants", "Variants"),
    ("num_variants_passed", "Variants that passed"),
    ("median_call_rate", "Median call rate"),
    ("median_mean_depth", "Median mean depth"),
    ("median_ti_tv", "Median Ti/Tv per person"),
    ("ti_tv", "Ti/Tv"),
    ("median_heterozygosity", "Median heterozygosity"),
    ("num_related_pairs", "Related pairs"),
)


@router.get("/datasets/{node_id}/{dataset_id}/qc", summary="A dataset's QC")
async def qc_page(request: Request, node_id: str, dataset_id: str) -> Response:
    """The dataset's node's ``GET /qc/{dataset}?format=json`` as this visitor:
    the whole report for one who may see records, the floored summary for
    others, a refusal (the node's, audited there) for the rest."""
    portal = portal_of(request)
    if not (_NAME.match(node_id) and _NAME.match(dataset_id)):
        return await error_page(request, 404, "No such dataset.")
    if portal.node(node_id) is None:
        return await error_page(request, 404, f"No node {node_id} here.")
    answer = await backend.ask_node(
        portal,
        node_id,
        "GET",
        f"/qc/{urllib.parse.quote(dataset_id, safe='')}?format=json",
        token=session_of(request).access_token,
    )
    if not answer.ok or not isinstance(answer.document, dict):
        if answer.status in (401, 403):
            return await error_page(
                request,
                403,
                f"{node_id}: {answer.message or 'refused'}. The QC report of a "
                "dataset is shown to those who may see its counts.",
            )
        if answer.status in (400, 404):
            return await error_page(
                request, 404, f"{node_id}: {answer.message or 'not found'}"
            )
        status = 504 if answer.message == "timed out" else 502
        return await error_page(
            request, status, f"{node_id}: {answer.message or 'no answer'}"
        )
    report = answer.document
    summary = mapping(report.get("summary"))
    samples = [
        sample
        for sample in report.get("samples") or []
        if isinstance(sample, dict) and sample.get("reasons")
    ]
    return await render(
        request,
        "qc.html",
        node_id=node_id,
        dataset_id=dataset_id,
        report=report,
        declaration=mapping(report.get("declaration")),
        summary=summary,
        fields=[(key, words) for key, words in QC_FIELDS if key in summary],
        sample_reasons=mapping(summary.get("sample_reasons")),
        variant_reasons=mapping(summary.get("variant_reasons")),
        thresholds=mapping(report.get("thresholds")),
        failing_samples=samples,
        whole="samples" in report,
    )

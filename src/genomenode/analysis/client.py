"""The researcher's side of the network's analysis jobs (``/analysis/jobs``):
submit, follow, fetch results, cancel; results as TSV.

The passport is sent as ``Authorization: Bearer`` with every call: a job
belongs to who submitted it, and the network answers only its owner (404 to
anyone else). The network forwards it to the nodes, which decide. It is never
printed or written.
"""

from __future__ import annotations

import csv
import pathlib
from collections.abc import Mapping
from typing import Any

import httpx2

from ..errors import ConflictError, GenomenodeError, InputError, NotFoundError

__all__ = ["cancel", "results", "status", "submit", "tsv_rows", "write_tsv"]

_TIMEOUT = 60.0


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _checked(response: httpx2.Response) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        document = {"detail": response.text[:300]}
    if response.status_code >= 400:
        detail = document.get("detail") if isinstance(document, dict) else None
        message = f"HTTP {response.status_code}: {detail or document}"
        if response.status_code == 404:
            raise NotFoundError(message)
        if response.status_code == 409:
            raise ConflictError(message)
        if response.status_code == 400:
            raise InputError(message)
        raise GenomenodeError(message)
    if not isinstance(document, dict):
        raise GenomenodeError("the network answered something other than an object")
    return document


def submit(network: str, request: Mapping[str, Any], token: str | None) -> dict:
    """Submit a job (``request`` as ``POST /analysis/jobs`` takes it)."""
    response = httpx2.post(
        f"{network.rstrip('/')}/analysis/jobs",
        json=dict(request),
        headers=_headers(token),
        timeout=_TIMEOUT,
    )
    return _checked(response)


def status(network: str, job_id: str, token: str | None = None) -> dict:
    """The job's state and its tasks (one per dataset)."""
    return _checked(
        httpx2.get(
            f"{network.rstrip('/')}/analysis/jobs/{job_id}",
            headers=_headers(token),
            timeout=_TIMEOUT,
        )
    )


def results(network: str, job_id: str, token: str | None = None) -> dict:
    """The job's result (ConflictError before it is COMPLETE)."""
    return _checked(
        httpx2.get(
            f"{network.rstrip('/')}/analysis/jobs/{job_id}/results",
            headers=_headers(token),
            timeout=_TIMEOUT,
        )
    )["result"]


def cancel(network: str, job_id: str, token: str | None = None) -> dict:
    """Cancel the job (ConflictError once it has ended)."""
    return _checked(
        httpx2.post(
            f"{network.rstrip('/')}/analysis/jobs/{job_id}/cancel",
            headers=_headers(token),
            timeout=_TIMEOUT,
        )
    )


def write_tsv(result: Mapping[str, Any], out: pathlib.Path) -> int:
    """The result's rows (GWAS, table, frequencies) as TSV; returns how many.

    A summary or PCA result has no rows: its variables or components are
    written one per line instead.
    """
    with open(out, "w", newline="") as handle:
        return tsv_rows(result, handle)


def tsv_rows(result: Mapping[str, Any], handle: Any) -> int:
    """:func:`write_tsv` to an open text ``handle``; returns how many rows."""
    rows = result.get("rows")
    if rows is None:
        if "variables" in result:
            rows = [{"variable": k, **v} for k, v in result["variables"].items()]
        else:
            rows = [
                {"component": f"pc{i + 1}", "eigenvalue": value, "variance": share}
                for i, (value, share) in enumerate(
                    zip(
                        result["eigenvalues"], result["variance_explained"], strict=True
                    )
                )
            ]
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    writer = csv.DictWriter(handle, columns, delimiter="\t", restval="NA")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "NA" if v is None else v for k, v in row.items()})
    return len(rows)

"""A fake Beacon node for the network tests and benchmark, run as its own process.

``uvicorn tests.network.fake_node:app``; ``FAKE_NODE_MODE`` picks its behaviour on
every ``/api`` path:

- ``count`` (default): a valid ``beaconCountResponse`` with ``FAKE_NODE_COUNT``
  (default 7) results in one result set; ``/api/info`` a valid info response;
- ``slow``: sleeps ``FAKE_NODE_SLEEP`` seconds (default 30) first, then answers as
  ``count``; when the client goes away mid-sleep it appends a line to
  ``FAKE_NODE_LOG`` (``disconnected`` or ``cancelled``), which the tests read to
  prove the network cancelled the request;
- ``not-json``: 200 with a body that is not JSON;
- ``error-500``: 500 with a plain-text body;
- ``schema-invalid``: 200 with JSON that breaks the Beacon schema (``exists`` is
  a string), and it claims another node's beaconId.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

MODE = os.environ.get("FAKE_NODE_MODE", "count")
COUNT = int(os.environ.get("FAKE_NODE_COUNT", "7"))
SLEEP_SECONDS = float(os.environ.get("FAKE_NODE_SLEEP", "30"))
LOG = os.environ.get("FAKE_NODE_LOG")
NODE_ID = os.environ.get("FAKE_NODE_ID", "fake")


def _log(line: str) -> None:
    if LOG:
        with open(LOG, "a", encoding="utf-8") as file:
            file.write(line + "\n")


def _meta(granularity: str = "count") -> dict[str, Any]:
    return {
        "beaconId": f"org.genomenode.{NODE_ID}",
        "apiVersion": "v2.1.1",
        "returnedGranularity": granularity,
        "returnedSchemas": [
            {"entityType": "individual", "schema": "beacon-individual-v2.1.1"}
        ],
        "receivedRequestSummary": {
            "apiVersion": "v2.1.1",
            "requestedSchemas": [],
            "pagination": {"skip": 0, "limit": 10},
            "requestedGranularity": "count",
        },
    }


def _count_document() -> dict[str, Any]:
    return {
        "meta": _meta(),
        "responseSummary": {"exists": COUNT > 0, "numTotalResults": COUNT},
        "response": {
            "resultSets": [
                {
                    "id": f"{NODE_ID}-dataset",
                    "setType": "dataset",
                    "exists": COUNT > 0,
                    "resultsCount": COUNT,
                    "results": [],
                }
            ]
        },
    }


def _info_document() -> dict[str, Any]:
    return {
        "meta": {
            "beaconId": f"org.genomenode.{NODE_ID}",
            "apiVersion": "v2.1.1",
            "returnedSchemas": [],
        },
        "response": {
            "id": f"org.genomenode.{NODE_ID}",
            "name": f"fake {NODE_ID}",
            "apiVersion": "v2.1.1",
            "environment": "dev",
            "organization": {"id": NODE_ID, "name": NODE_ID},
            "datasets": [{"id": f"{NODE_ID}-dataset", "name": "fake"}],
        },
    }


async def _good(path: str) -> dict[str, Any]:
    if path in ("", "info"):
        return _info_document()
    return _count_document()


async def beacon(request: Request) -> Response:
    path = request.path_params.get("path", "").strip("/")
    if MODE == "slow":
        _log("started")
        try:
            waited = 0.0
            while waited < SLEEP_SECONDS:
                if await request.is_disconnected():
                    _log("disconnected")
                    return PlainTextResponse("gone", status_code=499)
                await asyncio.sleep(0.05)
                waited += 0.05
        except asyncio.CancelledError:
            _log("cancelled")
            raise
        _log("answered")
        return JSONResponse(await _good(path))
    if MODE == "not-json":
        return PlainTextResponse("<html>this is not JSON</html>")
    if MODE == "error-500":
        return PlainTextResponse("internal server error", status_code=500)
    if MODE == "schema-invalid":
        document = _count_document()
        document["meta"]["beaconId"] = "org.genomenode.someone-else"
        document["responseSummary"]["exists"] = "yes"
        return JSONResponse(document)
    return JSONResponse(await _good(path))


app = Starlette(
    routes=[
        Route("/api", beacon, methods=["GET", "POST"]),
        Route("/api/{path:path}", beacon, methods=["GET", "POST"]),
    ]
)

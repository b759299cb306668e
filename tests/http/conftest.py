"""One node and one network, in-process, for fuzzing their HTTP APIs.

The node (built once per session) holds two small cohorts:

- ``fz-public``: PUBLIC with records for anyone, so every Beacon query reaches
  the database and the genotype store;
- ``fz-controlled``: CONTROLLED with a DAC, granted to :data:`RESEARCHER`, so htsget
  and DRS requests with the researcher's passport reach the slicing code.

Its app runs with the development identity provider. The network fans out to
that node in-process (httpx2's ASGI transport). Every client here is built with
``raise_server_exceptions=False`` so a 500 is seen as a 500; :func:`call_asgi`
drives an app directly and also reports an exception that escaped it, and how
much of the request body it read.

Helpers for the checks every test makes live here too: :func:`assert_answer` (no
5xx; an error in its API's error document) and :func:`assert_error_document`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from genomenode.access import duo as access_duo
from genomenode.access import workflow
from genomenode.access.applications import Application
from genomenode.access.tokens import JwksCache, TokenVerifier, TrustedIssuer
from genomenode.app import create_app
from genomenode.beacon.schemas import validate
from genomenode.ingest.pipeline import ingest
from genomenode.network.app import create_network_app
from genomenode.network.registry import RegisteredNode, Registry
from genomenode.store.node import Node, init_node

from ..conftest import (
    grant_access,
    in_process_workers,
    write_dataset_yaml,
    write_small_cohort,
)
from .strategies import (
    PLAIN_BODIES,
    fuzz_settings,
    path_segments,
    query_parameters,
)

BASE = "http://testserver"
PUBLIC = "fz-public"
CONTROLLED = "fz-controlled"
RESEARCHER = "researcher@demo.genomenode"
DAC = "dac@demo.genomenode"
#: The statuses a refusal may have (the issue's list, and 409 for a DAC action
#: on an application in the wrong state).
REFUSALS = frozenset({400, 401, 403, 404, 405, 408, 409, 413, 415, 422})


#: What schemathesis checks of every answer to a case drawn from an OpenAPI.
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    allow_header_conformance,
]


@dataclasses.dataclass(frozen=True)
class Passports:
    """Authorization headers of the node's users (dev identity provider); their
    tokens stay out of failure reports."""

    researcher: dict[str, str] = dataclasses.field(repr=False)
    dac: dict[str, str] = dataclasses.field(repr=False)
    stranger: dict[str, str] = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class Ids:
    """Real identifiers on the fuzzed node, for requests that get past lookups."""

    drs_objects: tuple[str, ...]
    #: A submitted application the DAC may approve (never approved by a test).
    submitted_application: int


@pytest.fixture(scope="session")
def fuzz_node(tmp_path_factory) -> Iterator[Node]:
    root = tmp_path_factory.mktemp("http-fuzz")
    with in_process_workers():
        write_small_cohort(
            root / "public", dataset_id=PUBLIC, num_samples=20, num_variants=60
        )
        public = write_dataset_yaml(
            root / "public",
            id=PUBLIC,
            security_level="PUBLIC",
            beacon={"anonymous": "record"},
        )
        write_small_cohort(
            root / "controlled",
            dataset_id=CONTROLLED,
            num_samples=20,
            num_variants=60,
            seed=2,
        )
        controlled = write_dataset_yaml(
            root / "controlled",
            id=CONTROLLED,
            security_level="CONTROLLED",
            dac={"members": [DAC]},
        )
        node = init_node(root / "node", node_id="fz-node", country="FI")
        ingest(node, public)
        ingest(node, controlled)
    grant_access(node, CONTROLLED, RESEARCHER, actor=DAC)
    yield node
    node.close()


@pytest.fixture(scope="session")
def node_app(fuzz_node) -> FastAPI:
    return create_app(fuzz_node, base_url=BASE, dev_identity_provider=True)


@pytest.fixture(scope="session")
def node_client(node_app) -> Iterator[TestClient]:
    with TestClient(node_app, raise_server_exceptions=False) as client:
        yield client


def _passport(client: TestClient, subject: str) -> dict[str, str]:
    response = client.post("/dev-idp/token", json={"subject": subject})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="session")
def passports(node_client) -> Passports:
    return Passports(
        researcher=_passport(node_client, RESEARCHER),
        dac=_passport(node_client, DAC),
        stranger=_passport(node_client, "stranger@demo.genomenode"),
    )


@pytest.fixture(scope="session")
def ids(fuzz_node, node_client, passports) -> Ids:
    bundle = node_client.get(
        f"/ga4gh/drs/v1/objects/{CONTROLLED}", headers=passports.researcher
    )
    assert bundle.status_code == 200, bundle.text
    objects = tuple(item["id"] for item in bundle.json()["contents"])
    assert objects
    application = submit_application(
        fuzz_node,
        applicant="applicant@demo.genomenode",
        project_title="Fuzzed approvals",
    )
    return Ids(drs_objects=objects, submitted_application=application.id)


def submit_application(
    node: Node, *, applicant: str, project_title: str
) -> Application:
    """A submitted application to the CONTROLLED dataset, for general research
    use (DUO:0000042), straight through the workflow."""
    return workflow.create_application(
        node.engine,
        dataset_id=CONTROLLED,
        applicant=applicant,
        project_title=project_title,
        purpose=access_duo.purpose_from_json({"term": "DUO:0000042"}),
        submit=True,
    )


class _NodeTransport(httpx2.AsyncBaseTransport):
    """Sends the network's requests to in-process apps by host; others are refused."""

    def __init__(self, apps: Mapping[str, FastAPI]) -> None:
        # A node's own 500 reaches the network as a 500 answer, as over TCP.
        self._transports = {
            host: httpx2.ASGITransport(app=app, raise_app_exceptions=False)
            for host, app in apps.items()
        }

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        transport = self._transports.get(request.url.host)
        if transport is None:
            raise httpx2.ConnectError("connection refused", request=request)
        return await transport.handle_async_request(request)


@pytest.fixture(scope="session")
def network_app(node_app) -> Iterator[FastAPI]:
    registry = Registry(
        network_id="fuzz-net",
        public_url="http://network.test",
        # One live node and no dead one: with a node down, the network rightly
        # answers 502 when no node answers, which would hide the 5xx that a bad
        # request must never cause.
        nodes=(RegisteredNode("fz-node", "FI", "http://fz-node.test"),),
        # Generous: a slow answer on a loaded machine must not read as a 5xx.
        timeout_seconds=5.0,
    )
    client = httpx2.AsyncClient(transport=_NodeTransport({"fz-node.test": node_app}))
    app = create_network_app(registry, client=client)
    # Job owners' passports: the node's development provider, its keys read
    # in-process (the network would fetch them from trusted_brokers' jku).
    provider = node_app.state.dev_identity_provider
    app.state.job_verifier = TokenVerifier(
        [TrustedIssuer(provider.issuer, provider.jku)],
        (),
        JwksCache(lambda url: provider.jwks() if url == provider.jku else None),
    )
    yield app
    asyncio.run(client.aclose())


@pytest.fixture(scope="session")
def network_client(network_app) -> Iterator[TestClient]:
    with TestClient(network_app, raise_server_exceptions=False) as client:
        yield client


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path template) the app answers, HEAD and docs aside, and
    the portal's HTML pages (kept out of the OpenAPI; tests/portal tests them)."""
    found = set()
    for route in iter_route_contexts(app.routes):
        if not getattr(route, "include_in_schema", True):
            continue
        for method in route.methods or ():
            if method != "HEAD" and route.path not in ("/api/docs",):
                found.add((method, route.path))
    return sorted(found)


# What every answer must be.


def assert_error_document(
    path: str, status: int, headers: Mapping[str, str], body: bytes
) -> dict[str, Any]:
    """``body`` is the error document of the API ``path`` belongs to.

    ``/api`` answers a Beacon ``beaconErrorResponse`` whose errorCode is the
    status, ``/htsget`` ``{"htsget": {"error", "message"}}``, ``/ga4gh/drs`` DRS
    ``{"msg", "status_code"}`` and anything else ``{"detail": ...}``.
    """
    content_type = headers.get("content-type", "")
    assert content_type.startswith("application/json"), (
        f"{status} error for {path} is {content_type!r}, not JSON: {body[:200]!r}"
    )
    document = json.loads(body)
    assert isinstance(document, dict), document
    if path.startswith("/api"):
        validate(document, "beaconErrorResponse")
        assert document["error"]["errorCode"] == status, document
    elif path.startswith("/htsget"):
        assert set(document) == {"htsget"}, document
        assert isinstance(document["htsget"].get("error"), str), document
        assert isinstance(document["htsget"].get("message"), str), document
    elif path.startswith("/ga4gh/drs"):
        assert isinstance(document.get("msg"), str), document
        assert document.get("status_code") == status, document
    else:
        assert "detail" in document, document
    return document


def gist(body: bytes) -> str:
    """What an answer says, in a line: its error message (and, from the network,
    why each node's answer was not used), else the start of the body."""
    try:
        document = json.loads(body)
    except ValueError:
        return repr(body[:160])
    if not isinstance(document, dict):
        return repr(body[:160])
    said = []
    for found in (document.get("error"), document.get("htsget"), document):
        if isinstance(found, dict):
            for key in ("errorMessage", "message", "msg", "detail"):
                if key in found:
                    said.append(str(found[key])[:200])
                    break
        if said:
            break
    info = document.get("info")
    for node in info.get("nodes", []) if isinstance(info, dict) else []:
        if isinstance(node, dict) and node.get("reason"):
            said.append(f"node {node.get('id')}: {str(node['reason'])[:200]}")
    return "; ".join(said) if said else repr(body[:160])


def assert_answer(response: httpx2.Response, *, refused: bool = False) -> None:
    """No 5xx; an error comes in its API's error document; ``refused``: a 4xx."""
    path = response.request.url.path
    status = response.status_code
    what = f"{response.request.method} {str(response.request.url)[:300]}"
    assert status < 500, f"{what} -> {status}: {gist(response.content)}"
    if refused:
        assert status in REFUSALS, f"{what} -> {status}: {gist(response.content)}"
    if status >= 400:
        assert_error_document(path, status, response.headers, response.content)


def assert_openapi_complete(app: FastAPI, client: TestClient) -> None:
    """Every route of ``app`` is in its OpenAPI, with every path parameter
    declared (schemathesis can only fuzz what is declared; the route fuzz
    covers the rest meanwhile)."""
    declared = client.get("/api/openapi.json").json()["paths"]
    problems = []
    for method, path in routes(app):
        if path in ("/api/openapi.json", "/docs/oauth2-redirect", "/api/"):
            continue
        operation = declared.get(path, {}).get(method.lower())
        if operation is None:
            problems.append(f"{method} {path}: not in the OpenAPI")
            continue
        names = {
            parameter["name"]
            for parameter in operation.get("parameters", [])
            if parameter.get("in") == "path"
        }
        missing = set(re.findall(r"{(\w+)}", path)) - names
        if missing:
            problems.append(f"{method} {path}: undeclared {sorted(missing)}")
    assert not problems, f"{len(problems)} operations:\n" + "\n".join(problems)


# Requests drawn for any route.


def draw_request(
    data: st.DataObject,
    app_routes: list[tuple[str, str]],
    real: tuple[str, ...],
    passports: Passports,
) -> dict[str, Any]:
    """Keyword arguments of ``TestClient.request`` for one hostile request to one
    of ``app_routes``: odd path segments (or ``real`` ids, mangled or not), odd
    query parameters, a passport or junk in its place; a plain body (bodies have
    their own tests)."""
    method, template = data.draw(st.sampled_from(app_routes), label="route")
    path = template
    while "{" in path:
        start = path.index("{")
        end = path.index("}", start)
        segment = data.draw(path_segments(real), label=path[start + 1 : end])
        path = path[:start] + segment + path[end + 1 :]
    parameters = data.draw(query_parameters(template), label="query")
    # Drawn by name, so that a failure report names the caller, not its token.
    caller = data.draw(
        st.sampled_from(
            ["anonymous", "researcher", "dac", "stranger", "bidi", "long", "basic"]
        ),
        label="caller",
    )
    headers: dict[str, str | bytes] = dict(
        {
            "anonymous": {},
            "researcher": passports.researcher,
            "dac": passports.dac,
            "stranger": passports.stranger,
            # Not latin-1 text, as a client could send it.
            "bidi": {"Authorization": "Bearer \u202enot-a-token".encode()},
            "long": {"Authorization": "Bearer " + "A" * 10_000},
            "basic": {"Authorization": "Basic Og=="},
        }[caller]
    )
    content = None
    if method in ("POST", "PUT"):
        content = data.draw(st.sampled_from(PLAIN_BODIES), label="body")
        headers["content-type"] = "application/json"
    return {
        "method": method,
        "url": path,
        "params": parameters,
        "headers": headers,
        "content": content,
    }


# Fuzzing from an OpenAPI document.


def fuzz_openapi(schema: Any, *, examples: int) -> list[str]:
    """Send ``examples`` positive and negative schemathesis cases to every
    operation of ``schema`` (loaded with ``schemathesis.openapi.from_asgi``);
    what went wrong, one line per operation and mode.

    Each operation gets its own hypothesis run, so every one of them is fuzzed
    and every failing one is named (schemathesis' pytest integration would do
    the same, but it reads a pytest attribute that pytest 9 no longer has).
    """
    problems = []
    for result in schema.get_all_operations():
        operation = result.ok()
        # Only a typed parameter (or a body) can be broken: negating a string in
        # a path costs hypothesis seconds before it gives up.
        breakable = len(list(operation.body)) > 0 or any(
            parameter.definition.get("schema", {}).get("type") not in (None, "string")
            for part in (operation.path_parameters, operation.query, operation.headers)
            for parameter in part
        )
        for mode in GenerationMode if breakable else [GenerationMode.POSITIVE]:

            @fuzz_settings(examples)
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                response = case.call()
                path = case.formatted_path
                assert response.status_code < 500, (
                    f"{response.status_code}: {gist(response.content)}\n"
                    f"    {case.as_curl_command()}"
                )
                if response.status_code >= 400:
                    # schemathesis lists each header's values.
                    headers = {
                        name.lower(): values[0]
                        for name, values in response.headers.items()
                    }
                    assert_error_document(
                        path, response.status_code, headers, response.content
                    )
                # The answer is what the document declares for its status.
                case.validate_response(response, checks=CONFORMANCE)

            try:
                check()
            except Unsatisfiable:
                # Negative cases when what is declared cannot be broken.
                continue
            except (Exception, FailureGroup) as error:
                # schemathesis reports its checks' failures as a BaseExceptionGroup.
                problems.append(f"{operation.label} ({mode}): {error}"[:600])
    return problems


# Driving an ASGI app directly.


@dataclasses.dataclass
class RawAnswer:
    """What an app sent back for one request, and what it did with the body."""

    path: str
    status: int
    headers: dict[str, str]
    body: bytes
    #: An exception that escaped the app (after or instead of its 500).
    error: BaseException | None
    #: Request body bytes the app asked for (``receive``) before answering.
    consumed: int


def call_asgi(
    app: Any,
    method: str,
    path: str,
    *,
    chunks: Iterable[bytes] = (),
    headers: Mapping[str, str] | None = None,
    query: str = "",
) -> RawAnswer:
    """Send one request to ``app`` as a server would, the body in ``chunks``.

    ``path`` is the raw (percent-encoded) path. Chunks are handed over only when
    the app asks for them, so :attr:`RawAnswer.consumed` shows whether it stopped
    reading a body that is too large.
    """
    pending = iter(chunks)
    consumed = 0
    started: dict[str, Any] = {}
    body = bytearray()

    responded = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal consumed
        if started.get("done"):
            # As a server does: the client stays until its answer is sent
            # (an app watching for a disconnect must not see one before).
            await responded.wait()
            return {"type": "http.disconnect"}
        chunk = next(pending, None)
        if chunk is None:
            started["done"] = True
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started["status"] = message["status"]
            started["headers"] = {
                key.decode("latin-1").lower(): value.decode("latin-1")
                for key, value in message.get("headers", [])
            }
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))
            if not message.get("more_body", False):
                responded.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": urllib.parse.unquote(path),
        "raw_path": path.encode("latin-1"),
        "root_path": "",
        "query_string": query.encode("latin-1"),
        "headers": [
            (b"host", b"testserver"),
            *(
                (key.lower().encode("latin-1"), value.encode("latin-1"))
                for key, value in (headers or {}).items()
            ),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    error: BaseException | None = None
    try:
        asyncio.run(app(scope, receive, send))
    except Exception as raised:  # the app let it out: the test reports it
        error = raised
    return RawAnswer(
        path=urllib.parse.unquote(path),
        status=started.get("status", 0),
        headers=started.get("headers", {}),
        body=bytes(body),
        error=error,
        consumed=consumed,
    )


def assert_raw_answer(answer: RawAnswer, *, refused: bool = False) -> None:
    """:func:`assert_answer` for :func:`call_asgi`, and nothing escaped the app."""
    assert answer.error is None, f"{answer.path}: the app raised {answer.error!r}"
    assert answer.status, f"{answer.path}: no response"
    assert answer.status < 500, f"{answer.path} -> {answer.status}: {gist(answer.body)}"
    if refused:
        assert answer.status in REFUSALS, f"{answer.path} -> {answer.status}"
    if answer.status >= 400:
        assert_error_document(answer.path, answer.status, answer.headers, answer.body)

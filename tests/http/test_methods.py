"""A method a path does not answer is a 405 whose ``Allow`` (RFC 9110) names every
method the path does answer, on every route of the node and of the network, in
the error document of the path's API."""

from __future__ import annotations

import collections
import re

import pytest
from fastapi.routing import iter_route_contexts

from .conftest import assert_answer

#: A path segment no literal route spells, so a template's path matches it alone.
SEGMENT = "x1"


def _methods_by_path(app) -> dict[str, set[str]]:
    """Every path (its parameters filled) and the methods some route answers on
    it (``/objects/x1`` answers GET, ``/objects/access`` too: as an id)."""
    every = list(iter_route_contexts(app.routes))
    paths = {re.sub(r"{\w+}", SEGMENT, route.path) for route in every}
    answered: dict[str, set[str]] = collections.defaultdict(set)
    for path in paths:
        for route in every:
            if route.path_regex.match(path):
                answered[path].update(route.methods or ())
    return answered


def _check_every_path(app, client) -> int:
    checked = 0
    for path, methods in _methods_by_path(app).items():
        if path == "/api/openapi.json":
            continue
        for method in ("PATCH", "DELETE", "PUT", "POST", "GET", "HEAD"):
            if method in methods:
                continue
            response = client.request(method, path)
            assert response.status_code == 405, (method, path, response.text)
            assert response.headers.get("allow") == ", ".join(sorted(methods)), (
                method,
                path,
            )
            if method != "HEAD":  # no body
                assert_answer(response, refused=True)
            checked += 1
    return checked


def test_every_405_of_the_node_says_what_is_allowed(node_app, node_client):
    assert _check_every_path(node_app, node_client) > 100


def test_every_405_of_the_network_says_what_is_allowed(network_app, network_client):
    assert _check_every_path(network_app, network_client) > 50


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/individuals", "GET, POST"),
        ("DELETE", "/api/info", "GET"),
        ("DELETE", "/htsget/variants/x1", "GET, POST"),
        ("PUT", "/ga4gh/drs/v1/objects/x1", "GET, POST"),
    ],
)
def test_a_405_names_both_methods_of_a_beacon_route(node_client, method, path, allowed):
    response = node_client.request(method, path)
    assert (response.status_code, response.headers["allow"]) == (405, allowed)
    assert_answer(response)

"""Hostile bodies to every POST and PUT route of the node and the network.

Each kind of hostile body (:mod:`.strategies`) is sent once, in a canonical form,
to every route that reads a body; then hypothesis draws more of them. A body
that cannot be a valid request gets a 4xx in its API's error document; any other
gets no 5xx; and nothing escapes the app. Requests go straight to the ASGI app
(:func:`~.conftest.call_asgi`), as one server would send them.

A test per kind lists every route that answered wrongly, with what it answered.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .conftest import (
    REFUSALS,
    RawAnswer,
    assert_error_document,
    assert_raw_answer,
    call_asgi,
    gist,
    routes,
)
from .routes import BodyRoute, body_routes
from .strategies import (
    DEEP_LEVELS,
    HUGE_ARRAY,
    HUGE_DIGITS,
    MANY_FILTERS,
    MULTIPART,
    Hostile,
    fuzz_settings,
    hostile_bodies,
    many_filters_body,
)

pytestmark = pytest.mark.fuzz

_HUGE = "9" * HUGE_DIGITS


def _id_body(route: BodyRoute, literal: str) -> bytes:
    """A body with ``literal`` (JSON text) where ``route`` reads an id."""
    field = route.id_fields[0]
    if route.beacon:
        # Where it is checked (a filter) and where it is only echoed (apiVersion).
        return (
            f'{{"meta": {{"apiVersion": {literal}}}, '
            f'"query": {{"filters": [{{"id": {literal}}}]}}}}'
        ).encode()
    if field == "regions":
        return f'{{"regions": [{{"referenceName": {literal}}}]}}'.encode()
    if field in ("bulk_object_ids", "bulk_object_access_ids", "members", "visas"):
        return f'{{"{field}": [{literal}]}}'.encode()
    return f'{{"{field}": {literal}}}'.encode()


def _huge_integer(route: BodyRoute) -> bytes:
    if route.beacon:
        return f'{{"query": {{"pagination": {{"limit": {_HUGE}}}}}}}'.encode()
    return f'{{"{route.id_fields[0]}": {_HUGE}, "lifetime": {_HUGE}}}'.encode()


def _huge_array(route: BodyRoute) -> bytes:
    array = "[" + ",".join(['"a"'] * HUGE_ARRAY) + "]"
    if route.list_field is None:
        return array.encode()
    if route.beacon:
        items = ",".join(['{"id": "HP:0000118"}'] * HUGE_ARRAY)
        return f'{{"query": {{"filters": [{items}]}}}}'.encode()
    return f'{{"{route.list_field}": {array}}}'.encode()


#: One canonical body of each kind, made for a route: (name, body, content type,
#: refused).
KINDS = {
    "not-utf8": lambda route: Hostile("not UTF-8", b"\xd4"),
    "not-utf8-in-string": lambda route: Hostile(
        "not UTF-8 in a string", b'{"query": "\xff\xfe"}'
    ),
    "nested-arrays": lambda route: Hostile(
        "nested arrays", b"[" * DEEP_LEVELS + b"]" * DEEP_LEVELS
    ),
    "nested-objects": lambda route: Hostile(
        "nested objects",
        b'{"query": ' + b'{"a": ' * DEEP_LEVELS + b"1" + b"}" * (DEEP_LEVELS + 1),
    ),
    "huge-integer": lambda route: Hostile("huge integer", _huge_integer(route)),
    "list": lambda route: Hostile("a list", b'[{"query": {}}]'),
    "string": lambda route: Hostile("a string", b'"{}"'),
    "number": lambda route: Hostile("a number", b"42"),
    "huge-array": lambda route: Hostile(f"{HUGE_ARRAY} items", _huge_array(route)),
    "many-filters": lambda route: (
        Hostile(f"{MANY_FILTERS} filters", many_filters_body())
        if route.beacon
        else None
    ),
    "nul-id": lambda route: Hostile(
        "NUL in an id", _id_body(route, '"a\\u0000b"'), refused=False
    ),
    "surrogate-id": lambda route: Hostile(
        "lone surrogate in an id", _id_body(route, '"\\ud800x"'), refused=False
    ),
    "bidi-id": lambda route: Hostile(
        "bidi marks in an id",
        _id_body(route, json.dumps("\u202eabc\u200f\u2066", ensure_ascii=False)),
        refused=False,
    ),
    "empty": lambda route: Hostile("empty", b"", refused=False),
    "xml": lambda route: Hostile("XML", b"<query/>", "application/xml"),
    "form": lambda route: Hostile(
        "form", b"a=1&b=%ff&c", "application/x-www-form-urlencoded"
    ),
    "multipart": lambda route: Hostile(
        "multipart",
        MULTIPART,
        "multipart/form-data; boundary=x",
    ),
}


def _send(app, route: BodyRoute, hostile: Hostile) -> RawAnswer:
    headers = {**route.headers, **hostile.headers()}
    body = hostile.body
    chunks = [body[offset : offset + 65_536] for offset in range(0, len(body), 65_536)]
    return call_asgi(app, route.method, route.path, chunks=chunks, headers=headers)


def _problem(route: BodyRoute, answer: RawAnswer, hostile: Hostile) -> str | None:
    """What is wrong with the answer to a hostile body, if anything."""
    if answer.error is not None:
        return f"raised {answer.error!r}"[:200]
    if not answer.status or answer.status >= 500:
        return f"{answer.status}: {gist(answer.body)}"
    if hostile.refused and route.reads_body and answer.status not in REFUSALS:
        return f"{answer.status}, not a 4xx"
    if answer.status >= 400:
        try:
            assert_error_document(
                answer.path, answer.status, answer.headers, answer.body
            )
        except (AssertionError, ValueError) as error:
            return f"{answer.status} in the wrong error document: {error}"[:200]
    return None


#: Kinds that cost seconds per request where they are not refused at once
#: (today): sent to the Beacon routes in ``costly_routes`` only, which cover the
#: two query paths (database, genotypes), and to every other route.
COSTLY = ("huge-array", "many-filters")
NODE_COSTLY_ROUTES = ("/api/individuals", "/api/g_variants")
# The network parses the body, then its node parses it again.
NETWORK_COSTLY_ROUTES = ("/api/individuals",)


def _every_route(
    app, described: list[BodyRoute], kind: str, costly_routes: tuple[str, ...]
) -> None:
    problems: dict[str, list[str]] = {}
    sent = 0
    for route in described:
        if kind in COSTLY and route.beacon and route.template not in costly_routes:
            continue
        hostile = KINDS[kind](route)
        if hostile is None:
            continue
        sent += 1
        problem = _problem(route, _send(app, route, hostile), hostile)
        if problem:
            problems.setdefault(problem, []).append(str(route))
    assert sent, f"no route takes {kind}"
    # One line per distinct answer, then the routes that gave it.
    assert not problems, f"{sum(map(len, problems.values()))} of {sent} routes:\n" + (
        "\n".join(
            f"{problem}\n    {len(where)}: {', '.join(where)}"
            for problem, where in problems.items()
        )
    )


@pytest.fixture(scope="module")
def node_body_routes(node_app, passports, ids) -> list[BodyRoute]:
    return body_routes(routes(node_app), passports, ids)


@pytest.fixture(scope="module")
def network_body_routes(network_app, passports, ids) -> list[BodyRoute]:
    return body_routes(routes(network_app), passports, ids)


def test_every_body_route_is_described(node_body_routes, network_body_routes):
    templates = {route.template for route in node_body_routes}
    # The list, so that a route dropped from the app is noticed too.
    assert {
        "/api/individuals",
        "/access/applications",
        "/access/applications/{application_id}",
        "/access/applications/{application_id}/{action}",
        "/htsget/variants/{object_id}",
        "/htsget/reads/{object_id}",
        "/ga4gh/drs/v1/objects",
        "/ga4gh/drs/v1/objects/access",
        "/ga4gh/drs/v1/objects/{object_id}",
        "/ga4gh/drs/v1/objects/{object_id}/access/{access_id}",
        "/dev-idp/token",
    } <= templates
    assert len(node_body_routes) >= 45
    assert {route.template for route in network_body_routes} >= {
        "/api/individuals",
        "/api/g_variants",
    }


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_node_answers_hostile_bodies(node_app, node_body_routes, kind):
    _every_route(node_app, node_body_routes, kind, NODE_COSTLY_ROUTES)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_network_answers_hostile_bodies(network_app, network_body_routes, kind):
    _every_route(network_app, network_body_routes, kind, NETWORK_COSTLY_ROUTES)


# The generated tests describe the routes themselves: with the module fixture's
# list, hypothesis 6.170 reports FlakyStrategyDefinition on the first failure.


@fuzz_settings(60)
@given(data=st.data())
def test_node_survives_generated_bodies(node_app, passports, ids, data):
    described = body_routes(routes(node_app), passports, ids)
    route = data.draw(st.sampled_from(described), label="route")
    hostile = data.draw(
        hostile_bodies(
            id_fields=route.id_fields, list_field=route.list_field, beacon=route.beacon
        ),
        label="body",
    )
    answer = _send(node_app, route, hostile)
    assert_raw_answer(answer, refused=hostile.refused and route.reads_body)


@fuzz_settings(30)
@given(data=st.data())
def test_network_survives_generated_bodies(network_app, passports, ids, data):
    described = body_routes(routes(network_app), passports, ids)
    route = data.draw(st.sampled_from(described), label="route")
    hostile = data.draw(
        # The costly kinds go to the network in the test above, once each: here
        # one could cost seconds per example (the network and its node both
        # parse the body) until they are refused at once.
        hostile_bodies(
            id_fields=route.id_fields, list_field=route.list_field, costly=False
        ),
        label="body",
    )
    answer = _send(network_app, route, hostile)
    assert_raw_answer(answer, refused=hostile.refused and route.reads_body)

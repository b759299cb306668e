"""The reproductions of issue 10 ("No input reaches a 500"), one test each, and
what the fuzzers found beyond them.

Each was a 500 (or a reset, or a 502, or a whole body read) against a live node
before. The limits are settings (body size, filters per request, JSON depth,
integer digits); these tests use the defaults and do not name the settings:
over a limit is a 413 for the body size and a 400 for the rest.
"""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from genomenode.access import applications
from genomenode.store.models import AuditEntry

from .conftest import (
    CONTROLLED,
    DAC,
    assert_answer,
    assert_raw_answer,
    call_asgi,
    gist,
    submit_application,
)
from .strategies import hpo_terms, many_filters_body

JSON = {"content-type": "application/json"}
HUGE = "9" * 5_000
#: A request body of 50 MB, and how much of one a server may read before it stops.
FIFTY_MB = 50 * 1024 * 1024
READ_AT_MOST = 10 * 1024 * 1024


def _message(response) -> str:
    document = response.json()
    if "error" in document:
        return str(document["error"].get("errorMessage", ""))
    if "htsget" in document:
        return str(document["htsget"].get("message", ""))
    return str(document.get("msg", document.get("detail", "")))


def _refused(response, status: int = 400) -> None:
    assert response.status_code == status, (
        f"{response.request.method} {str(response.request.url)[:200]} -> "
        f"{response.status_code}, not {status}: {gist(response.content)}"
    )
    assert_answer(response)


# The reproductions.


def test_a_body_that_is_not_utf8_is_a_400(node_client):
    response = node_client.post("/api/individuals", content=b"\xd4", headers=JSON)
    _refused(response)


DEEP = b'{"query": ' + b'{"a": ' * 1_000 + b"1" + b"}" * 1_001


@pytest.mark.parametrize(
    "path",
    [
        "/api/individuals",
        "/access/applications",
        "/htsget/variants/" + CONTROLLED,
        "/ga4gh/drs/v1/objects",
        "/dev-idp/token",
    ],
)
def test_json_nested_a_thousand_levels_is_a_400(node_client, passports, path):
    headers = {**JSON, **passports.researcher}
    _refused(node_client.post(path, content=DEEP, headers=headers))


def test_json_nested_a_thousand_levels_is_a_400_on_the_network(network_client):
    _refused(network_client.post("/api/individuals", content=DEEP, headers=JSON))


HUGE_INTEGERS = [
    pytest.param("GET", f"/api/individuals?limit={HUGE}", None, id="api-limit"),
    pytest.param("GET", f"/api/individuals?skip={HUGE}", None, id="api-skip"),
    pytest.param(
        "GET",
        f"/api/g_variants?referenceName=1&start={HUGE}&end=2",
        None,
        id="api-start",
    ),
    pytest.param(
        "POST",
        "/api/individuals",
        f'{{"query": {{"pagination": {{"limit": {HUGE}}}}}}}',
        id="api-body",
    ),
    pytest.param(
        "POST",
        "/access/applications",
        f'{{"dataset": "{CONTROLLED}", "purpose": {{"term": "DUO:0000042"}}, '
        f'"submit": {HUGE}}}',
        id="access-body",
    ),
    pytest.param(
        "GET",
        f"/htsget/variants/{CONTROLLED}?referenceName=1&start={HUGE}",
        None,
        id="htsget-start",
    ),
    pytest.param(
        "POST",
        f"/htsget/variants/{CONTROLLED}",
        f'{{"regions": [{{"referenceName": "1", "start": {HUGE}}}]}}',
        id="htsget-body",
    ),
    pytest.param(
        "POST",
        "/ga4gh/drs/v1/objects",
        f'{{"bulk_object_ids": ["a"], "x": {HUGE}}}',
        id="drs-body",
    ),
    pytest.param(
        "GET",
        f"/ga4gh/drs/v1/objects/{CONTROLLED}?expand={HUGE}",
        None,
        id="drs-expand",
    ),
    pytest.param(
        "POST",
        "/dev-idp/token",
        f'{{"subject": "a", "lifetime": {HUGE}}}',
        id="dev-idp-body",
    ),
]


@pytest.mark.parametrize(("method", "path", "body"), HUGE_INTEGERS)
def test_integers_of_thousands_of_digits_are_a_400(
    node_client, passports, method, path, body
):
    response = node_client.request(
        method,
        path,
        content=body.encode() if body else None,
        headers={**JSON, **passports.researcher},
    )
    _refused(response)


def test_a_form_lifetime_of_thousands_of_digits_is_a_400(node_client):
    response = node_client.post(
        "/dev-idp/token",
        content=f"subject=a&lifetime={HUGE}".encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    _refused(response)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/api/individuals?limit={HUGE}", None),
        (
            "POST",
            "/api/individuals",
            f'{{"query": {{"pagination": {{"skip": {HUGE}}}}}}}',
        ),
    ],
    ids=["query", "body"],
)
def test_integers_of_thousands_of_digits_are_a_400_on_the_network(
    network_client, method, path, body
):
    response = network_client.request(
        method, path, content=body.encode() if body else None, headers=JSON
    )
    _refused(response)


def _present_filters(count: int) -> list[dict[str, str]]:
    # Terms the fz-public cohort has (a disease, a sex): each becomes a clause of
    # the database query, and a thousand made SQLite fail with "Expression tree
    # is too large".
    return [{"id": "ICD10:I25.1"}, {"id": "NCIT:C16576"}] * (count // 2)


def _names_the_filter_limit(response, sent: int) -> None:
    """The error is about the number of filters and says how many are allowed."""
    message = _message(response)
    assert "filter" in message.lower(), message
    # Numbers in the message other than term ids (HP:0000118) and indexes
    # (filters[0]): one of them is the limit.
    numbers = re.findall(r"\d+", re.sub(r"\w+:\d[\w.]*|\[\d+\]", "", message))
    assert any(1 <= int(number) < sent for number in numbers), (
        f"the limit is not named: {message}"
    )


@pytest.mark.parametrize("entry", ["individuals", "biosamples", "g_variants"])
def test_a_thousand_filters_are_a_400_naming_the_limit(node_client, entry):
    # fz-public is PUBLIC with records for anyone: the query reaches the database.
    response = node_client.post(
        f"/api/{entry}",
        json={"query": {"filters": _present_filters(1_000)}},
    )
    _refused(response)
    _names_the_filter_limit(response, 1_000)


def test_ten_thousand_filters_are_a_fast_400(node_client):
    started = time.perf_counter()
    response = node_client.post(
        "/api/individuals", content=many_filters_body(10_000), headers=JSON
    )
    elapsed = time.perf_counter() - started
    _refused(response)
    _names_the_filter_limit(response, 10_000)
    # Refused by their number, before ten thousand terms are looked up.
    assert elapsed < 2.0, f"{elapsed:.2f} s"


def test_ten_thousand_filters_in_a_query_string_are_a_400(node_app):
    # Past what httpx sends in a URL, so straight to the app.
    ids = ",".join(hpo_terms()[:10_000])
    answer = call_asgi(node_app, "GET", "/api/individuals", query=f"filters={ids}")
    assert_raw_answer(answer, refused=True)
    assert answer.status == 400, answer.status


def test_a_thousand_filters_are_a_400_on_the_network(network_client):
    response = network_client.post(
        "/api/individuals", json={"query": {"filters": _present_filters(1_000)}}
    )
    _refused(response)
    _names_the_filter_limit(response, 1_000)


BEYOND_INT64 = "9223372036854775808"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/access/applications/{BEYOND_INT64}", None),
        ("PUT", f"/access/applications/{BEYOND_INT64}", {"project_title": "x"}),
        (
            "POST",
            f"/access/applications/{BEYOND_INT64}/approve",
            {"ends_at": "2030-01-01"},
        ),
    ],
    ids=["GET", "PUT", "POST-approve"],
)
def test_an_application_id_beyond_int64_is_a_404_or_400(
    node_client, passports, method, path, body
):
    response = node_client.request(method, path, json=body, headers=passports.dac)
    assert response.status_code in (400, 404), (
        f"{response.status_code}: {gist(response.content)}"
    )
    assert_answer(response)


def test_an_application_id_of_thousands_of_digits_is_refused(node_client, passports):
    response = node_client.get(f"/access/applications/{HUGE}", headers=passports.dac)
    assert response.status_code in (400, 404, 422), response.text
    assert_answer(response)


def _audit(node_app, fuzz_node) -> list[AuditEntry]:
    node_app.state.access.audit.flush()
    with fuzz_node.session() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def test_approving_until_9999_12_31_is_a_400_naming_ends_at_and_audited(
    node_app, node_client, fuzz_node, passports
):
    application = submit_application(
        fuzz_node, applicant="long@demo.genomenode", project_title="Forever"
    )
    before = len(_audit(node_app, fuzz_node))
    response = node_client.post(
        f"/access/applications/{application.id}/approve",
        json={"ends_at": "9999-12-31"},
        headers=passports.dac,
    )
    _refused(response)
    assert "ends_at" in _message(response)
    attempts = [
        entry
        for entry in _audit(node_app, fuzz_node)[before:]
        if entry.action == "access.approve"
        and entry.details.get("application") == application.id
    ]
    assert attempts, "the refused approval is not in the audit log"
    assert all(entry.outcome != "allow" for entry in attempts)
    assert attempts[-1].actor == DAC
    # Nothing was granted.
    shown = applications.get_application(
        fuzz_node.engine, application.id, viewer="long@demo.genomenode"
    )
    assert shown.state == "submitted", shown


def _fifty_megabytes(chunk_size: int = 64 * 1024):
    """A JSON object of 50 MB (spaces inside), chunk by chunk."""
    yield b'{"query": {}'
    padding = b" " * chunk_size
    for _ in range(FIFTY_MB // chunk_size):
        yield padding
    yield b"}"


BODY_LIMITED = [
    ("node", "/api/individuals"),
    ("node", "/access/applications"),
    ("node", "/dev-idp/token"),
    ("node", f"/htsget/variants/{CONTROLLED}"),
    ("node", "/ga4gh/drs/v1/objects"),
    ("network", "/api/individuals"),
]


@pytest.mark.parametrize(("app_name", "path"), BODY_LIMITED)
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_50_mb_body_is_a_413_read_no_further_than_needed(
    node_app, network_app, passports, app_name, path, declared
):
    app = node_app if app_name == "node" else network_app
    headers = {**JSON, **passports.researcher}
    if declared:
        headers["content-length"] = str(FIFTY_MB + len(b'{"query": {}}'))
    answer = call_asgi(app, "POST", path, chunks=_fifty_megabytes(), headers=headers)
    assert answer.error is None, f"the app raised {answer.error!r}"
    assert answer.status == 413, f"{answer.status}: {gist(answer.body)}"
    assert_raw_answer(answer)
    assert answer.consumed <= READ_AT_MOST, (
        f"read {answer.consumed / 2**20:.1f} MiB of a 50 MB body before answering"
    )


def test_a_50_mb_body_is_a_413_through_the_test_client(node_client):
    response = node_client.post(
        "/api/individuals", content=b"".join(_fifty_megabytes()), headers=JSON
    )
    _refused(response, 413)


def test_the_network_refuses_a_dot_dot_dataset_id(network_client):
    # %2e%2e is "..": forwarded as is, the node's URL became /api/ (its info),
    # which broke the collections schema: a 502.
    _refused(network_client.get("/api/datasets/%2e%2e"))


# Found by the fuzzers (tests/http), beyond the list.


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/individuals", b'{"meta": {"apiVersion": "\\ud800"}}'),
        (
            "/api/datasets/no-such-dataset/individuals",
            b'{"query": {"filters": [{"id": "\\ud800"}]}}',
        ),
    ],
    ids=["apiVersion", "filter-id"],
)
def test_a_lone_surrogate_echoed_by_the_beacon_is_not_a_500(node_app, path, body):
    # "\ud800" is valid JSON and no valid UTF-8: the answer that echoes the
    # request back cannot be encoded.
    answer = call_asgi(node_app, "POST", path, chunks=[body], headers=JSON)
    assert_raw_answer(answer, refused=True)


def test_a_lone_surrogate_in_a_drs_bulk_id_is_not_a_500(node_app, passports):
    answer = call_asgi(
        node_app,
        "POST",
        "/ga4gh/drs/v1/objects",
        chunks=[b'{"bulk_object_ids": ["\\ud800x"]}'],
        headers={**JSON, **passports.researcher},
    )
    assert_raw_answer(answer)


def test_a_lone_surrogate_echoed_is_not_a_500_on_the_network(network_app):
    answer = call_asgi(
        network_app,
        "POST",
        "/api/individuals",
        chunks=[b'{"meta": {"apiVersion": "\\ud800"}}'],
        headers=JSON,
    )
    assert_raw_answer(answer, refused=True)


@pytest.mark.parametrize("segment", ["%00", "%17", "a%0Ab"])
def test_the_network_forwards_ids_with_control_characters(network_client, segment):
    # The node takes /api/individuals/%00 (no such individual); the network
    # built the node's URL from the decoded path and could not send it: a 502.
    response = network_client.get(f"/api/individuals/{segment}")
    assert_answer(response)


@pytest.mark.parametrize("path", ["/api/individuals", "/api/datasets"])
def test_the_network_answers_from_its_node(network_client, path):
    """Control for the network's tests: its node answers through it."""
    response = network_client.get(path)
    assert response.status_code == 200, response.text
    nodes = response.json()["info"]["nodes"]
    assert [(node["id"], node["status"]) for node in nodes] == [("fz-node", "ok")]

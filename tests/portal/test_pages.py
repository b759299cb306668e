"""The portal's parts in-process: the session cookie, the search box, the chart,
and the pages' refusals (CSRF, bad input) over a node's real app."""

from __future__ import annotations

import asyncio
import urllib.parse

import httpx2
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from genomenode.app import create_app
from genomenode.errors import InputError
from genomenode.ingest.pipeline import ingest
from genomenode.portal.charts import frequency_chart
from genomenode.portal.oidc import start_sign_in
from genomenode.portal.search import (
    CountryFrequency,
    NodeStatus,
    parse_query,
    shape_answer,
)
from genomenode.portal.session import COOKIE_NAME, Session, SessionSealer
from genomenode.portal.site import _VisitorTransport, set_visitor

from ..conftest import write_small_cohort

HTML = {"Accept": "text/html"}


def test_sealed_sessions_open_and_tampered_ones_do_not():
    sealer = SessionSealer(b"k" * 32)
    session = Session()
    session.sign_in("researcher@demo.genomenode", "token-value", 3600)
    value = sealer.seal(session)
    assert "token-value" not in value and "researcher" not in value
    opened = sealer.open(value)
    assert opened.subject == "researcher@demo.genomenode"
    assert opened.access_token == "token-value"
    assert opened.csrf_token == session.csrf_token
    tampered = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    assert sealer.open(tampered).subject is None
    assert SessionSealer(b"x" * 32).open(value).subject is None
    assert sealer.open("garbage").subject is None
    assert "k" * 32 not in repr(sealer)


@pytest.mark.parametrize(
    ("asked", "kept"),
    [
        ("/my-access", "/my-access"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/a\nb", "/"),
    ],
)
def test_sign_in_returns_only_to_a_local_path(asked, kept):
    assert start_sign_in(asked).next_path == kept


def test_sign_in_changes_the_csrf_token():
    session = Session()
    before = session.csrf_token
    session.sign_in("someone", "t", 10)
    assert session.csrf_token != before
    assert session.check_csrf(session.csrf_token)
    assert not session.check_csrf(before) and not session.check_csrf(None)


@pytest.mark.parametrize(
    ("text", "kind", "parameters"),
    [
        (
            "1-1000123-A-G",
            "variant",
            {
                "referenceName": "1",
                "start": [1000122],
                "referenceBases": "A",
                "alternateBases": "G",
            },
        ),
        (
            "chrX:155:c:t",
            "variant",
            {
                "referenceName": "X",
                "start": [154],
                "referenceBases": "C",
                "alternateBases": "T",
            },
        ),
        (
            "NC_000001.10:g.1000123A>G",
            "hgvs",
            {"genomicAlleleShortForm": "NC_000001.10:g.1000123A>G"},
        ),
        (
            "1:1,000,000-1,001,000",
            "region",
            {"referenceName": "1", "start": [999999], "end": [1001000]},
        ),
        ("brca2", "gene", {"geneId": "BRCA2"}),
    ],
)
def test_search_forms(text, kind, parameters):
    assert parse_query(text) == (kind, parameters)


@pytest.mark.parametrize("text", ["", "x" * 201, "1:5-2", "<script>", "1-2-3-4-5"])
def test_bad_searches_name_the_field(text):
    with pytest.raises(InputError) as raised:
        parse_query(text)
    assert raised.value.field == "q"


def test_frequencies_pool_a_countrys_datasets_and_keep_the_sexes():
    def record(ac, an, f, m):
        return {
            "variantInternalId": "1-10-A-G",
            "frequencyInPopulations": [
                {
                    "frequencies": [
                        {"population": "FI", "alleleCount": ac, "alleleNumber": an},
                        {
                            "population": "FI_F",
                            "alleleCount": f[0],
                            "alleleNumber": f[1],
                        },
                        {
                            "population": "FI_M",
                            "alleleCount": m[0],
                            "alleleNumber": m[1],
                        },
                        {"population": "F", "alleleCount": 99, "alleleNumber": 100},
                    ]
                }
            ],
        }

    document = {
        "response": {
            "resultSets": [
                {
                    "id": "a",
                    "info": {"node": "n1", "country": "FI"},
                    "results": [record(2, 10, (2, 4), (0, 6))],
                },
                {
                    "id": "b",
                    "info": {"node": "n2", "country": "FI"},
                    "results": [record(3, 30, (1, 10), (2, 20))],
                },
            ]
        }
    }
    nodes = [
        NodeStatus("n1", "FI", "ok", 1.0, "record"),
        NodeStatus("n2", "FI", "timeout", None, None),
    ]
    answer = shape_answer(document, nodes)
    (country,) = answer.variants[0].countries
    assert (country.allele_count, country.allele_number) == (5, 40)
    assert country.female == (3, 14) and country.male == (2, 26)
    assert not answer.complete and [n.node_id for n in answer.failed] == ["n2"]


def test_the_chart_has_one_bar_per_country_and_its_text():
    chart = frequency_chart(
        "1-10-A-G",
        [
            CountryFrequency("FI", 1, 4, None, None),
            CountryFrequency("SE", 1, 10, (1, 4), (0, 6)),
        ],
        chart_id="c",
    )
    assert chart.count('class="bar bar-country"') == 2
    assert 'data-country="SE" data-frequency="0.100000"' in chart
    assert chart.count('class="bar bar-sex') == 2
    assert "<title" in chart and "<desc" in chart and 'role="img"' in chart
    assert frequency_chart("v", [], chart_id="c") == ""


@pytest.fixture
def client(tmp_path, sqlite_node):
    dataset = write_small_cohort(tmp_path / "cohort", num_samples=10, num_variants=20)
    ingest(sqlite_node, dataset)
    app = create_app(sqlite_node, base_url="http://testserver")
    with TestClient(app) as test_client:
        yield test_client


def test_browsers_get_html_and_api_clients_the_json_index(client):
    page = client.get("/", headers=HTML)
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="en">' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    cookie = page.headers["set-cookie"]
    assert COOKIE_NAME in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # dev; test_secure_cookies_outside_dev
    index = client.get("/", headers={"Accept": "application/json"})
    assert index.json()["endpoints"]["beacon"] == "http://testserver/api"
    assert client.get("/").json()["id"] == index.json()["id"]
    stylesheet = client.get("/static/portal/portal.css")
    assert stylesheet.status_code == 200
    assert "immutable" in stylesheet.headers["cache-control"]
    assert "/static/portal/portal.css?v=" in page.text


def test_secure_cookies_outside_dev(tmp_path, sqlite_node):
    app = create_app(sqlite_node, base_url="https://node.example", environment="test")
    with TestClient(app, base_url="https://node.example") as test_client:
        cookie = test_client.get("/", headers=HTML).headers["set-cookie"]
    assert "Secure" in cookie


@pytest.mark.parametrize(
    "path",
    [
        "/sign-out",
        "/apply/node/small",
        "/applications/node/1/act",
        "/my-access/download",
    ],
)
def test_posts_without_the_csrf_token_are_refused(client, path):
    client.get("/", headers=HTML)  # a session with a token
    for form in ({}, {"csrf_token": "forged"}):
        answer = client.post(path, data=form, headers=HTML)
        assert answer.status_code == 403, (path, answer.status_code)
        assert "security token" in answer.text


def test_bad_input_is_a_page_not_a_500(client):
    assert client.get("/search?q=%00%ff", headers=HTML).status_code == 400
    assert client.get("/search?q=" + "1" * 5000, headers=HTML).status_code == 400
    assert client.get("/datasets/x/y", headers=HTML).status_code == 404
    assert client.get("/applications/x/notanumber", headers=HTML).status_code in (
        303,
        400,
        422,
    )
    token_page = client.get("/", headers=HTML)
    assert token_page.status_code == 200
    answer = client.post(
        "/sign-out",
        content=b"\xff\xfe=\x00",
        headers=HTML | {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code in (400, 403)


def test_sign_in_without_a_broker_says_so(client):
    answer = client.get("/sign-in", headers=HTML, follow_redirects=False)
    assert answer.status_code == 404
    assert "not configured" in answer.text


def test_a_callback_not_started_here_is_refused(client):
    answer = client.get("/sign-in/callback?code=x&state=y", headers=HTML)
    assert answer.status_code == 400


def test_in_process_api_calls_come_from_the_visitor():
    echo = FastAPI()

    @echo.get("/who")
    def who(request: Request) -> dict:
        return {
            "host": request.client.host,
            "forwarded": request.headers.get("x-forwarded-for"),
        }

    async def ask(address: str, forwarded: str | None) -> dict:
        scope = {"type": "http", "client": (address, 5), "headers": []}
        if forwarded:
            scope["headers"] = [(b"x-forwarded-for", forwarded.encode())]
        set_visitor(Request(scope))
        await asyncio.sleep(0)  # the other visitor's task runs in between
        transport = _VisitorTransport(app=echo)
        async with httpx2.AsyncClient(transport=transport, base_url="http://x") as c:
            return (await c.get("/who")).json()

    async def both() -> list[dict]:
        return await asyncio.gather(
            ask("192.0.2.1", None), ask("192.0.2.2", "198.51.100.7")
        )

    first, second = asyncio.run(both())
    assert first == {"host": "192.0.2.1", "forwarded": None}
    assert second == {"host": "192.0.2.2", "forwarded": "198.51.100.7"}


HOSTILE = ["x1", "..", "%00", "a" * 300, "999999999999999999999", "-1", "ü", "<b>"]


def test_no_page_answers_5xx_to_hostile_input(client):
    """Every portal route, each path parameter hostile, GET and POST (with a
    valid CSRF token and junk fields): always an answer, never a 5xx. (The
    HTTP fuzz of tests/http covers the APIs; this covers the pages.)"""
    from genomenode.portal.http import router
    from genomenode.portal.jobs import router as jobs_router
    from genomenode.portal.results import router as results_router

    client.get("/", headers=HTML)
    token = client.cookies.get(COOKIE_NAME)
    assert token
    page = client.get("/", headers=HTML).text
    csrf = (
        page.split('name="csrf_token" value="')[1].split('"')[0]
        if ('name="csrf_token"' in page)
        else None
    )
    checked = 0
    for route in [*router.routes, *results_router.routes, *jobs_router.routes]:
        path_template = route.path
        for value in HOSTILE:
            path = path_template
            for name in (
                "node_id",
                "dataset_id",
                "application_id",
                "variant_id",
                "job_id",
                "plot_file",
                "suffix",
            ):
                path = path.replace("{" + name + "}", urllib.parse.quote(value))
            for method in route.methods:
                if method == "GET":
                    answer = client.get(
                        path,
                        params={
                            "q": value,
                            "next": value,
                            "code": value,
                            "state": value,
                            "country": value,
                            "size": value,
                            "id": value,
                        },
                        headers=HTML,
                        follow_redirects=False,
                    )
                else:
                    form = {
                        "csrf_token": csrf or "",
                        "action": value,
                        "purpose": value,
                        "project_title": value,
                        "ends_at": value,
                        "node": value,
                        "dataset": value,
                        "region": value,
                        "public_key": value,
                        "accepted:" + value: "on",
                    }
                    answer = client.post(
                        path, data=form, headers=HTML, follow_redirects=False
                    )
                assert answer.status_code < 500, (method, path, answer.status_code)
                checked += 1
    assert checked > 100

"""CORS for htsget and DRS: preflights answered, tickets and blocks readable by the
allowed origins only, ``*`` never turned into a reflected origin, settings checked.

The node is the one of ``test_htsget.py``, opened again with CORS settings from
the environment (as ``genomenode serve`` would read them).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from genomenode.app import create_app
from genomenode.config import parse_settings
from genomenode.errors import ConfigError
from genomenode.store.node import open_node
from genomenode.transfer.cors import CorsPolicy

from ..conftest import grant_access
from . import test_htsget
from .test_htsget import BASE, DAC, DATASET, RESEARCHER

cohort = test_htsget.cohort
node = test_htsget.node

IGV = "https://igv.org"
EVIL = "https://evil.example"
TICKET = f"/htsget/variants/{DATASET}"


@pytest.fixture
def serve(node, monkeypatch):
    """``serve(origins, credentials=False)``: a client of the node with those
    CORS settings, and the headers of a granted researcher."""
    clients = []

    def start(origins: str, credentials: bool = False):
        monkeypatch.setenv("GENOMENODE_CORS_ALLOWED_ORIGINS", origins)
        monkeypatch.setenv("GENOMENODE_CORS_ALLOW_CREDENTIALS", str(credentials))
        opened = open_node(node.config.node_dir)
        client = TestClient(
            create_app(opened, base_url=BASE, dev_identity_provider=True)
        )
        client.__enter__()
        clients.append((client, opened))
        grant_access(opened, DATASET, RESEARCHER, actor=DAC)
        return client, test_htsget._passport(client, RESEARCHER)

    yield start
    for client, opened in clients:
        client.__exit__(None, None, None)
        opened.close()


def preflight(client, path, origin, method="GET", headers="authorization"):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def block_url(client, passport) -> dict:
    ticket = client.get(TICKET, params={"referenceName": "1"}, headers=passport)
    assert ticket.status_code == 200, ticket.text
    return next(
        item for item in ticket.json()["htsget"]["urls"] if item["url"].startswith(BASE)
    )


def test_by_default_no_origin_is_allowed_and_preflights_are_not_405(serve):
    client, passport = serve("")
    for path in (TICKET, "/htsget/blocks/variants/x", "/ga4gh/drs/v1/objects/x"):
        response = preflight(client, path, IGV)
        assert response.status_code == 403
        assert "access-control-allow-origin" not in response.headers
    ticket = client.get(TICKET, headers={**passport, "Origin": IGV})
    assert ticket.status_code == 200
    assert "access-control-allow-origin" not in ticket.headers


def test_a_listed_origin_gets_preflights_tickets_and_blocks(serve):
    client, passport = serve(f"{IGV}, http://localhost:3000")
    answer = preflight(client, TICKET, IGV, headers="authorization,content-type")
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == IGV
    assert set(answer.headers["access-control-allow-methods"].split(", ")) == {
        "GET",
        "POST",
    }
    assert (
        answer.headers["access-control-allow-headers"] == "authorization,content-type"
    )
    assert int(answer.headers["access-control-max-age"]) == 30 * 24 * 3600
    assert "Origin" in answer.headers["vary"]
    assert "access-control-allow-credentials" not in answer.headers
    # The ticket (GET and POST) and its block, read by the page of that origin.
    ticket = client.get(
        TICKET, params={"referenceName": "1"}, headers={**passport, "Origin": IGV}
    )
    assert ticket.headers["access-control-allow-origin"] == IGV
    posted = client.post(
        TICKET,
        json={"regions": [{"referenceName": "1"}]},
        headers={**passport, "Origin": IGV},
    )
    assert posted.status_code == 200
    assert posted.headers["access-control-allow-origin"] == IGV
    block = block_url(client, passport)
    path = block["url"][len(BASE) :]
    assert preflight(client, path, IGV).status_code == 204
    data = client.get(path, headers={**block["headers"], "Origin": IGV})
    assert data.status_code == 200 and data.content
    assert data.headers["access-control-allow-origin"] == IGV
    exposed = data.headers["access-control-expose-headers"]
    assert "Content-Length" in exposed and "Content-Range" in exposed
    # DRS (objects, access URLs, downloads) under the same policy.
    assert preflight(client, "/ga4gh/drs/v1/objects/x", IGV).status_code == 204
    drs = client.get("/ga4gh/drs/v1/service-info", headers={"Origin": IGV})
    assert drs.headers["access-control-allow-origin"] == IGV
    # Errors too, so that the page can read the htsget error document.
    missing = client.get(f"{TICKET}-nope", headers={**passport, "Origin": IGV})
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == IGV


def test_an_unlisted_origin_gets_nothing(serve):
    client, passport = serve(IGV)
    assert preflight(client, TICKET, EVIL).status_code == 403
    assert preflight(client, TICKET, IGV, method="DELETE").status_code == 403
    ticket = client.get(TICKET, headers={**passport, "Origin": EVIL})
    assert ticket.status_code == 200  # CORS protects pages, not the API
    assert "access-control-allow-origin" not in ticket.headers
    assert "Origin" in ticket.headers["vary"]


def test_any_origin_is_star_never_the_origin_itself(serve):
    client, passport = serve("*")
    answer = preflight(client, TICKET, EVIL)
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in answer.headers
    ticket = client.get(TICKET, headers={**passport, "Origin": EVIL})
    assert ticket.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in ticket.headers


def test_credentials_go_to_listed_origins_only(serve):
    client, _ = serve(IGV, credentials=True)
    answer = preflight(client, TICKET, IGV)
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert answer.headers["access-control-allow-origin"] == IGV
    assert (
        "access-control-allow-credentials"
        not in preflight(client, TICKET, EVIL).headers
    )


def test_star_with_credentials_is_refused(serve):
    with pytest.raises(ConfigError, match="cors_allow_credentials"):
        serve("*", credentials=True)
    with pytest.raises(ConfigError):
        CorsPolicy(frozenset({"*"}), allow_credentials=True)


def test_other_paths_are_untouched(serve):
    client, _ = serve("*")
    response = preflight(client, "/api/info", IGV)
    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ()),
        ("*", ("*",)),
        (
            "https://IGV.org, http://localhost:3000/",
            ("https://igv.org", "http://localhost:3000"),
        ),
        (["https://a.example:8443"], ("https://a.example:8443",)),
    ],
)
def test_origins_setting(value, expected):
    assert parse_settings({"cors_allowed_origins": value}, "test") == {
        "cors_allowed_origins": expected
    }


@pytest.mark.parametrize(
    "value",
    [
        "igv.org",
        "https://igv.org/app",
        "ftp://igv.org",
        "*, https://igv.org",
        "https://",
    ],
)
def test_origins_that_are_not_origins(value):
    with pytest.raises(ConfigError, match="cors_allowed_origins"):
        parse_settings({"cors_allowed_origins": value}, "test")

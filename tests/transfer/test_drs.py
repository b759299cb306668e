"""GA4GH DRS 1.4 over the node's app: objects, bundles, access URLs, Crypt4GH
downloads, links, authorisation and audit.

One node with a small CONTROLLED cohort (a DAC) served by the real app with the
development identity provider. Downloads are decrypted with the ``crypt4gh``
command line and a key made by ``crypt4gh-keygen``, never with genomenode's code.

Responses are checked against :data:`DRS_SCHEMAS`: the DRS 1.4 OpenAPI components
the routes return (``DrsObject``, ``AccessMethod``, ``AccessURL``, ``Checksum``,
``ContentsObject``, ``DrsService``, ``Error``), transcribed as JSON Schema with
their required fields, types and enums (no copy of the published OpenAPI file is
vendored in the repository).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import pathlib
import subprocess
import sys
import time
import urllib.parse

import jsonschema
import pytest
from crypt4gh import header as c4gh_header
from fastapi.testclient import TestClient
from sqlalchemy import select

from genomenode.access import workflow
from genomenode.app import create_app
from genomenode.ingest.pipeline import ingest
from genomenode.store.models import AuditEntry, StoredFile
from genomenode.store.node import init_node
from genomenode.transfer.drs import bundle_checksum
from genomenode.transfer.links import LinkSigner, load_link_secret
from genomenode.version import __version__

from ..conftest import (
    grant_access,
    in_process_workers,
    write_dataset_yaml,
    write_small_cohort,
)

BASE = "http://testserver"
DRS = "/ga4gh/drs/v1"
DATASET = "fi-drs"
DAC = "dac@demo.genomenode"
RESEARCHER = "researcher@demo.genomenode"
STRANGER = "stranger@demo.genomenode"
KEY_HEADER = "Crypt4GH-Public-Key"
BIN = pathlib.Path(sys.executable).parent

_RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"
_CHECKSUM = {
    "type": "object",
    "required": ["checksum", "type"],
    "properties": {"checksum": {"type": "string"}, "type": {"type": "string"}},
}
_ACCESS_URL = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {"type": "string"},
        "headers": {"type": "array", "items": {"type": "string"}},
    },
}
_ACCESS_METHOD = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {
            "enum": ["s3", "gs", "ftp", "gsiftp", "globus", "htsget", "https", "file"]
        },
        "access_url": _ACCESS_URL,
        "access_id": {"type": "string"},
        "region": {"type": "string"},
    },
    "anyOf": [{"required": ["access_url"]}, {"required": ["access_id"]}],
}
_CONTENTS_OBJECT = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "id": {"type": "string"},
        "drs_uri": {"type": "array", "items": {"type": "string"}},
        "contents": {"type": "array"},
    },
}
_DRS_OBJECT = {
    "type": "object",
    "required": ["id", "self_uri", "size", "created_time", "checksums"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]+$"},
        "self_uri": {"type": "string", "pattern": "^drs://"},
        "size": {"type": "integer", "minimum": 0},
        # format: date-time (RFC 3339), spelled out: jsonschema checks that format
        # only with an optional package.
        "created_time": {"type": "string", "pattern": _RFC3339},
        "updated_time": {"type": "string", "pattern": _RFC3339},
        "version": {"type": "string"},
        "mime_type": {"type": "string"},
        "checksums": {"type": "array", "minItems": 1, "items": _CHECKSUM},
        "access_methods": {"type": "array", "minItems": 1, "items": _ACCESS_METHOD},
        "contents": {"type": "array", "items": _CONTENTS_OBJECT},
        "description": {"type": "string"},
        "aliases": {"type": "array", "items": {"type": "string"}},
    },
    # access_methods: "Required for single blobs; optional for bundles."
    "anyOf": [{"required": ["access_methods"]}, {"required": ["contents"]}],
}
_SERVICE_INFO = {
    "type": "object",
    "required": ["id", "name", "type", "organization", "version"],
    "properties": {
        "type": {
            "type": "object",
            "required": ["group", "artifact", "version"],
            "properties": {"artifact": {"const": "drs"}},
        },
        "organization": {
            "type": "object",
            "required": ["name", "url"],
        },
        "maxBulkRequestLength": {"type": "integer", "minimum": 1},
        "drs": {
            "type": "object",
            "required": ["maxBulkRequestLength"],
            "properties": {
                "maxBulkRequestLength": {"type": "integer", "minimum": 1},
                "objectCount": {"type": "integer"},
                "totalObjectSize": {"type": "integer"},
            },
        },
    },
}
_ERROR = {
    "type": "object",
    "required": ["msg", "status_code"],
    "properties": {"msg": {"type": "string"}, "status_code": {"type": "integer"}},
    "additionalProperties": False,
}
DRS_SCHEMAS = {
    "DrsObject": _DRS_OBJECT,
    "AccessURL": _ACCESS_URL,
    "service-info": _SERVICE_INFO,
    "Error": _ERROR,
}


def _valid(document: dict, schema: str) -> dict:
    jsonschema.validate(document, DRS_SCHEMAS[schema])
    return document


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> pathlib.Path:
    directory = tmp_path_factory.mktemp("drs-cohort")
    # Enough variants that the stored VCF spans more than one 64 KiB segment.
    write_small_cohort(directory, dataset_id=DATASET, num_samples=60, num_variants=3000)
    write_dataset_yaml(
        directory,
        id=DATASET,
        security_level="CONTROLLED",
        data_use=[{"id": "DUO:0000042"}],
        dac={"members": [DAC]},
    )
    return directory


@pytest.fixture(scope="module")
def node(cohort, tmp_path_factory):
    with in_process_workers():
        fresh = init_node(
            tmp_path_factory.mktemp("drs") / "node", node_id="fi-drs-node", country="FI"
        )
        ingest(fresh, cohort / "dataset.yaml")
    yield fresh
    fresh.close()


@pytest.fixture(scope="module")
def app(node):
    return create_app(node, base_url=BASE, dev_identity_provider=True)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def stored(node) -> dict[str, StoredFile]:
    """The dataset's stored files, by original name, read from the database."""
    with node.session() as session:
        rows = session.scalars(
            select(StoredFile).where(StoredFile.dataset_id == DATASET)
        ).all()
        session.expunge_all()
    return {row.original_name: row for row in rows}


@pytest.fixture(scope="module")
def vcf(stored) -> StoredFile:
    return stored["cohort.vcf.gz"]


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, pathlib.Path]:
    """Two researchers' keypairs made by crypt4gh-keygen (unencrypted)."""
    directory = tmp_path_factory.mktemp("keys")
    paths = {}
    for name in ("mine", "other"):
        subprocess.run(
            [
                str(BIN / "crypt4gh-keygen"),
                "--sk",
                str(directory / f"{name}.sec"),
                "--pk",
                str(directory / f"{name}.pub"),
                "--nocrypt",
                "-f",
            ],
            check=True,
            capture_output=True,
        )
        paths[name] = directory / f"{name}.sec"
        paths[f"{name}.pub"] = directory / f"{name}.pub"
    return paths


def _key_header(public_key_file: pathlib.Path) -> dict[str, str]:
    """The header a researcher sends: the base64 line of their .pub file."""
    (key_line,) = [
        line
        for line in public_key_file.read_text().splitlines()
        if line and not line.startswith("-----")
    ]
    return {KEY_HEADER: key_line}


def _decrypt(data: bytes, secret_key: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "crypt4gh"), "decrypt", "--sk", str(secret_key)],
        input=data,
        capture_output=True,
        env={**os.environ, "C4GH_PASSPHRASE": ""},
    )


def _passport(client, subject: str) -> str:
    response = client.post("/dev-idp/token", json={"subject": subject})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def _bearer(client, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_passport(client, subject)}"}


def _grant(node, subject: str) -> int:
    """Apply for the dataset as ``subject`` and have the DAC approve; the id."""
    return grant_access(node, DATASET, subject, actor=DAC)


@pytest.fixture(scope="module")
def granted(client, node) -> dict[str, str]:
    _grant(node, RESEARCHER)
    return _bearer(client, RESEARCHER)


def _path(object_id: str) -> str:
    return urllib.parse.quote(object_id, safe="")


def _audit(app, node, action: str) -> list[AuditEntry]:
    app.state.access.audit.flush()
    with node.session() as session:
        return list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == action)
                .order_by(AuditEntry.id)
            )
        )


def _access_url(client, object_id: str, headers: dict[str, str]) -> dict:
    response = client.get(
        f"{DRS}/objects/{_path(object_id)}/access/crypt4gh", headers=headers
    )
    assert response.status_code == 200, response.text
    return _valid(response.json(), "AccessURL")


def _link(access_url: dict) -> str:
    query = urllib.parse.urlsplit(access_url["url"]).query
    return urllib.parse.parse_qs(query)["link"][0]


def _download_path(object_id: str) -> str:
    return f"{DRS}/download/{_path(object_id)}"


# -- service-info -------------------------------------------------------------------


def test_service_info_describes_drs_1_4_and_counts_what_the_caller_may_fetch(
    client, stored, granted
):
    response = client.get(f"{DRS}/service-info", headers=granted)
    assert response.status_code == 200
    info = _valid(response.json(), "service-info")
    assert info["type"] == {"group": "org.ga4gh", "artifact": "drs", "version": "1.4.0"}
    assert info["id"] == "org.genomenode.fi-drs-node.drs"
    assert info["version"] == __version__
    assert info["drs"]["objectCount"] == len(stored)
    assert info["drs"]["totalObjectSize"] == sum(
        row.size_plain for row in stored.values()
    )
    # Nobody else learns that the CONTROLLED dataset's files exist.
    for headers in ({}, _bearer(client, STRANGER)):
        other = _valid(
            client.get(f"{DRS}/service-info", headers=headers).json(), "service-info"
        )
        assert (other["drs"]["objectCount"], other["drs"]["totalObjectSize"]) == (0, 0)


# -- without a grant ----------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "stranger"])
def test_without_a_grant_every_route_is_403_without_bytes(
    client, app, node, vcf, keys, who
):
    headers = {} if who == "anonymous" else _bearer(client, STRANGER)
    actor = "anonymous" if who == "anonymous" else STRANGER
    before = {
        action: len(_audit(app, node, action))
        for action in ("drs.object", "drs.access", "drs.download")
    }
    with_key = {**headers, **_key_header(keys["mine.pub"])}
    responses = {
        "blob": client.get(f"{DRS}/objects/{_path(vcf.id)}", headers=headers),
        "bundle": client.get(f"{DRS}/objects/{DATASET}", headers=headers),
        "access": client.get(
            f"{DRS}/objects/{_path(vcf.id)}/access/crypt4gh", headers=headers
        ),
        "access-post": client.post(
            f"{DRS}/objects/{_path(vcf.id)}/access/crypt4gh", headers=headers, json={}
        ),
        "download": client.get(_download_path(vcf.id), headers=with_key),
    }
    for name, response in responses.items():
        assert response.status_code == 403, (name, response.text)
        assert response.headers["content-type"] == "application/json", name
        error = _valid(response.json(), "Error")
        assert error["status_code"] == 403
        assert "grant" in error["msg"]
    # Each refusal is in the audit log, with who asked and for which dataset.
    expected = {"drs.object": 2, "drs.access": 2, "drs.download": 1}
    for action, count in expected.items():
        entries = _audit(app, node, action)[before[action] :]
        assert [(e.actor, e.outcome, e.dataset_id) for e in entries] == [
            (actor, "deny", DATASET)
        ] * count, action


def test_unknown_objects_and_access_methods_are_404(client, granted, vcf):
    missing = client.get(f"{DRS}/objects/{_path(DATASET + ':nope')}", headers=granted)
    assert missing.status_code == 404
    assert _valid(missing.json(), "Error")["status_code"] == 404
    assert client.get(f"{DRS}/objects/no-such-dataset").status_code == 404
    other_method = client.get(
        f"{DRS}/objects/{_path(vcf.id)}/access/s3", headers=granted
    )
    assert other_method.status_code == 404
    assert "crypt4gh" in other_method.json()["msg"]
    bundle_access = client.get(
        f"{DRS}/objects/{DATASET}/access/crypt4gh", headers=granted
    )
    assert bundle_access.status_code == 404
    assert "is a bundle" in _valid(bundle_access.json(), "Error")["msg"]
    # An id that names nothing is no bundle: a plain 404, for anyone.
    for headers in (granted, {}):
        for method in ("GET", "POST"):
            unknown = client.request(
                method,
                f"{DRS}/objects/no-such-dataset/access/crypt4gh",
                headers=headers,
                json={} if method == "POST" else None,
            )
            assert unknown.status_code == 404
            error = _valid(unknown.json(), "Error")
            assert error == {"msg": "no object 'no-such-dataset'", "status_code": 404}


# -- granted ------------------------------------------------------------------------


def test_a_granted_object_describes_the_original_file(client, granted, cohort, vcf):
    response = client.get(f"{DRS}/objects/{_path(vcf.id)}", headers=granted)
    assert response.status_code == 200, response.text
    document = _valid(response.json(), "DrsObject")
    original = (cohort / "cohort.vcf.gz").read_bytes()
    assert document["id"] == vcf.id
    assert document["name"] == "cohort.vcf.gz"
    assert document["size"] == len(original)
    assert document["checksums"] == [
        {"type": "sha-256", "checksum": hashlib.sha256(original).hexdigest()}
    ]
    assert document["self_uri"] == f"drs://testserver/{_path(vcf.id)}"
    assert document["access_methods"] == [
        {"type": "https", "access_id": "crypt4gh", "region": "FI"}
    ]
    assert "Crypt4GH" in document["description"]
    assert document["mime_type"] == "application/gzip"
    created = dt.datetime.fromisoformat(document["created_time"])
    assert created.tzinfo is not None
    assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(hours=1)


def test_the_download_decrypts_to_the_original_with_my_key_only(
    client, app, node, granted, cohort, vcf, keys
):
    access_url = _access_url(client, vcf.id, granted)
    assert access_url["url"].startswith(f"{BASE}{DRS}/download/{_path(vcf.id)}?link=")
    assert access_url["headers"] == [
        "Crypt4GH-Public-Key: <put your base64 public key here>"
    ]
    # The URL alone (no passport) with my key, as a DRS client follows it.
    response = client.get(access_url["url"], headers=_key_header(keys["mine.pub"]))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    assert int(response.headers["content-length"]) == len(response.content)
    assert (
        response.headers["content-disposition"]
        == 'attachment; filename="cohort.vcf.gz.c4gh"'
    )
    original = (cohort / "cohort.vcf.gz").read_bytes()
    assert original not in response.content
    mine = _decrypt(response.content, keys["mine"])
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout == original
    other = _decrypt(response.content, keys["other"])
    assert other.returncode != 0
    assert original[:64] not in other.stdout
    # The body is the stored one, untouched: only the header is new.
    stored_file = node.datasets_dir / DATASET / vcf.stored_path
    stored_body = _body_of(stored_file.read_bytes())
    assert _body_of(response.content) == stored_body
    assert [e.outcome for e in _audit(app, node, "drs.download")][-1] == "allow"
    assert _audit(app, node, "drs.download")[-1].actor == RESEARCHER


def _body_of(crypt4gh_file: bytes) -> bytes:
    stream = io.BytesIO(crypt4gh_file)
    list(c4gh_header.parse(stream))  # a generator: read every packet
    return crypt4gh_file[stream.tell() :]


def test_a_bearer_passport_opens_the_download_without_a_link(
    client, granted, cohort, vcf, keys
):
    response = client.get(
        _download_path(vcf.id), headers={**granted, **_key_header(keys["mine.pub"])}
    )
    assert response.status_code == 200, response.text
    decrypted = _decrypt(response.content, keys["mine"])
    assert decrypted.stdout == (cohort / "cohort.vcf.gz").read_bytes()


def test_the_download_needs_a_usable_public_key(client, granted, vcf):
    link = _link(_access_url(client, vcf.id, granted))
    for headers in ({}, {KEY_HEADER: "not a key"}, {KEY_HEADER: "QUJD"}):
        response = client.get(
            _download_path(vcf.id), params={"link": link}, headers=headers
        )
        assert response.status_code == 400, headers
        assert KEY_HEADER in response.json()["msg"]


def test_a_range_from_the_start_or_within_the_body_is_served(
    client, granted, vcf, keys
):
    key = _key_header(keys["mine.pub"])
    whole = client.get(_download_path(vcf.id), headers={**granted, **key}).content
    header_size = len(whole) - len(_body_of(whole))
    assert len(whole) - header_size > 65_564  # more than one Crypt4GH segment
    size = len(whole)

    def ranged(value: str):
        return client.get(
            _download_path(vcf.id), headers={**granted, **key, "Range": value}
        )

    # Within the body: the stored bytes, the same in every response.
    # Across the boundary of the first two segments.
    start, end = header_size + 60_000, header_size + 80_000
    part = ranged(f"bytes={start}-{end}")
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes {start}-{end}/{size}"
    assert part.content == whole[start : end + 1]
    tail = ranged(f"bytes={header_size}-")
    assert tail.status_code == 206
    assert tail.content == whole[header_size:]
    # From 0: a new header of the same length, then the body.
    head = ranged(f"bytes=0-{header_size + 99}")
    assert head.status_code == 206
    assert len(head.content) == header_size + 100
    assert head.content[header_size:] == whole[header_size : header_size + 100]
    # Starting inside the header would splice two headers: the whole file instead.
    inside = ranged("bytes=10-")
    assert inside.status_code == 200
    assert len(inside.content) == size
    assert ranged(f"bytes={size}-").status_code == 416


# -- links --------------------------------------------------------------------------


def test_a_link_opens_its_own_object_only(client, granted, stored, vcf, keys):
    link = _link(_access_url(client, vcf.id, granted))
    other = stored["individuals.json"]
    response = client.get(
        _download_path(other.id),
        params={"link": link},
        headers=_key_header(keys["mine.pub"]),
    )
    assert response.status_code == 401
    assert _valid(response.json(), "Error")["status_code"] == 401
    assert "another resource" in response.json()["msg"]


def test_an_expired_link_is_401(client, granted, node, vcf, keys):
    # A link the node itself signed an hour ago (same secret), valid for 5 minutes.
    secret = load_link_secret(node.config.node_dir / "keys" / "links.key")
    signer = LinkSigner(secret, clock=lambda: time.time() - 3600)
    link = signer.sign(
        subject=RESEARCHER,
        registered=True,
        dataset_id=DATASET,
        resource=f"drs:{vcf.id}",
    )
    response = client.get(
        _download_path(vcf.id),
        params={"link": link},
        headers=_key_header(keys["mine.pub"]),
    )
    assert response.status_code == 401
    assert "expired" in response.json()["msg"]


def test_a_forged_link_is_401_and_audited(client, app, node, vcf, keys):
    before = len(_audit(app, node, "drs.download"))
    signer = LinkSigner(b"x" * 32)
    link = signer.sign(
        subject=RESEARCHER,
        registered=True,
        dataset_id=DATASET,
        resource=f"drs:{vcf.id}",
    )
    response = client.get(
        _download_path(vcf.id),
        params={"link": link},
        headers=_key_header(keys["mine.pub"]),
    )
    assert response.status_code == 401
    refused = _audit(app, node, "drs.download")[before:]
    assert [(entry.actor, entry.outcome) for entry in refused] == [("unknown", "deny")]
    assert "download link refused" in refused[0].reason
    assert link not in str(refused[0].details)


def test_revoking_the_grant_stops_an_unexpired_link(client, app, node, vcf, keys):
    subject = "revoked@demo.genomenode"
    application_id = _grant(node, subject)
    headers = _bearer(client, subject)
    link = _link(_access_url(client, vcf.id, headers))
    key = _key_header(keys["mine.pub"])
    first = client.get(_download_path(vcf.id), params={"link": link}, headers=key)
    assert first.status_code == 200
    workflow.revoke(node.engine, application_id, actor=DAC, comment="ended")
    again = client.get(_download_path(vcf.id), params={"link": link}, headers=key)
    assert again.status_code == 403
    assert again.content == again.text.encode()  # an error document, no bytes
    assert _valid(again.json(), "Error")["status_code"] == 403
    entries = [e for e in _audit(app, node, "drs.download") if e.actor == subject]
    assert [(e.outcome, e.details["via"]) for e in entries] == [
        ("allow", "link"),
        ("deny", "link"),
    ]


# -- passports in the body ----------------------------------------------------------


def test_passports_in_a_post_body_work_like_the_header(client, granted, vcf):
    passport = _passport(client, RESEARCHER)
    by_header = client.get(f"{DRS}/objects/{_path(vcf.id)}", headers=granted).json()
    by_body = client.post(
        f"{DRS}/objects/{_path(vcf.id)}", json={"passports": [passport]}
    )
    assert by_body.status_code == 200, by_body.text
    assert by_body.json() == by_header
    access = client.post(
        f"{DRS}/objects/{_path(vcf.id)}/access/crypt4gh",
        json={"passports": [passport]},
    )
    assert access.status_code == 200, access.text
    _valid(access.json(), "AccessURL")
    bundle = client.post(f"{DRS}/objects/{DATASET}", json={"passports": [passport]})
    assert bundle.status_code == 200
    # A stranger's passport in the body is refused like in the header.
    stranger = client.post(
        f"{DRS}/objects/{_path(vcf.id)}",
        json={"passports": [_passport(client, STRANGER)]},
    )
    assert stranger.status_code == 403


def test_bad_passports_in_the_body_are_refused(client, vcf):
    path = f"{DRS}/objects/{_path(vcf.id)}"
    assert client.post(path, json={"passports": ["not.a.jwt"]}).status_code == 401
    for body in ({"passports": "eyJ"}, {"passports": []}, {"passports": [1]}):
        response = client.post(path, json=body)
        assert response.status_code == 400, body
        assert "passports" in response.json()["msg"]
    assert client.post(path, content=b"[1, 2]").status_code == 400


# -- bundles ------------------------------------------------------------------------


def test_the_bundle_lists_every_stored_file_of_the_dataset(client, granted, stored):
    for query in ("", "?expand=true"):
        response = client.get(f"{DRS}/objects/{DATASET}{query}", headers=granted)
        assert response.status_code == 200, response.text
        bundle = _valid(response.json(), "DrsObject")
        assert bundle["id"] == DATASET
        assert bundle["self_uri"] == f"drs://testserver/{DATASET}"
        assert "access_methods" not in bundle
        contents = {item["id"]: item for item in bundle["contents"]}
        assert set(contents) == {row.id for row in stored.values()}
        for row in stored.values():
            jsonschema.validate(contents[row.id], _CONTENTS_OBJECT)
            assert contents[row.id]["name"] == row.original_name
            assert contents[row.id]["drs_uri"] == [f"drs://testserver/{_path(row.id)}"]
        assert bundle["size"] == sum(row.size_plain for row in stored.values())
        members = "".join(sorted(row.sha256_plain for row in stored.values()))
        assert bundle["checksums"] == [
            {
                "type": "sha-256",
                "checksum": hashlib.sha256(members.encode()).hexdigest(),
            }
        ]
    assert client.get(f"{DRS}/objects/{DATASET}?expand=maybe").status_code == 400


def test_the_bundle_checksum_is_over_the_sorted_member_checksums():
    # DRS: checksum(concat(sort(member checksums))), whatever the members' order.
    low, high = "0" * 64, "f" * 64
    expected = hashlib.sha256((low + high).encode()).hexdigest()
    assert bundle_checksum([high, low]) == expected
    assert bundle_checksum([low, high]) == expected


# -- bulk ---------------------------------------------------------------------------


def test_bulk_objects_resolve_what_the_caller_may_see(client, granted, stored, vcf):
    missing = f"{DATASET}:nope"
    response = client.post(
        f"{DRS}/objects",
        headers=granted,
        json={"bulk_object_ids": [vcf.id, missing, DATASET]},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["summary"] == {"requested": 3, "resolved": 2, "unresolved": 1}
    assert [item["id"] for item in answer["resolved_drs_object"]] == [vcf.id, DATASET]
    for item in answer["resolved_drs_object"]:
        _valid(item, "DrsObject")
    assert answer["unresolved_drs_objects"] == [
        {"error_code": 404, "object_ids": [missing]}
    ]
    refused = client.post(f"{DRS}/objects", json={"bulk_object_ids": [vcf.id]})
    assert refused.json()["unresolved_drs_objects"] == [
        {"error_code": 403, "object_ids": [vcf.id]}
    ]
    too_many = client.post(
        f"{DRS}/objects", headers=granted, json={"bulk_object_ids": [vcf.id] * 101}
    )
    assert too_many.status_code == 413


def test_bulk_access_urls_each_open_their_object(client, granted, stored, keys):
    ids = [row.id for row in stored.values()]
    response = client.post(
        f"{DRS}/objects/access",
        headers=granted,
        json={
            "bulk_object_access_ids": [
                {"bulk_object_id": object_id, "bulk_access_ids": ["crypt4gh"]}
                for object_id in ids
            ]
        },
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["summary"]["resolved"] == len(ids)
    for item in answer["resolved_drs_object_access_urls"]:
        _valid(item, "AccessURL")
        fetched = client.get(item["url"], headers=_key_header(keys["mine.pub"]))
        assert fetched.status_code == 200
        decrypted = _decrypt(fetched.content, keys["mine"])
        name = next(row for row in stored.values() if row.id == item["drs_object_id"])
        assert hashlib.sha256(decrypted.stdout).hexdigest() == name.sha256_plain

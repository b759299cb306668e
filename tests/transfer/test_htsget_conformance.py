"""The rules of the GA4GH htsget 1.3.0 specification, one test each, against the node.

Each rule is restated from the specification text (samtools/hts-specs
``htsget.md``, 1.3.0), which is definitive where its OpenAPI description differs;
the GA4GH compliance suite is not run or copied (it decodes only
``data:;base64,`` URIs and tests a draft ``encryptionScheme``). The node is the
one of ``test_htsget.py``: the real 1000 Genomes slice (CONTROLLED, granted to
one researcher), a BAM and a CRAM.
"""

from __future__ import annotations

import base64
import gzip
import urllib.parse

import jsonschema
import pysam
import pytest

from . import test_htsget
from .test_htsget import BASE, DATASET

# The node, its client and a granted researcher's headers of test_htsget.py
# (module fixtures: one ingest for this module too).
cohort = test_htsget.cohort
node = test_htsget.node
client = test_htsget.client
granted = test_htsget.granted

#: The error types of the specification and the status each goes with.
ERROR_STATUS = {
    "InvalidAuthentication": 401,
    "PermissionDenied": 403,
    "NotFound": 404,
    "PayloadTooLarge": 413,
    "UnsupportedFormat": 400,
    "InvalidInput": 400,
    "InvalidRange": 400,
}

#: GA4GH service-info (required: id, name, type, organization, version), with
#: the htsget 1.3.0 extension as the specification's text names it.
SERVICE_INFO_SCHEMA = {
    "type": "object",
    "required": ["id", "name", "type", "organization", "version", "htsget"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "version": {"type": "string", "minLength": 1},
        "environment": {"type": "string"},
        "type": {
            "type": "object",
            "required": ["group", "artifact", "version"],
            "properties": {
                "group": {"const": "org.ga4gh"},
                "artifact": {"const": "htsget"},
                "version": {"const": "1.3.0"},
            },
        },
        "organization": {
            "type": "object",
            "required": ["name", "url"],
            "properties": {"name": {"type": "string"}, "url": {"type": "string"}},
        },
        "htsget": {
            "type": "object",
            "required": [
                "datatype",
                "formats",
                "fieldsParametersEffective",
                "tagsParametersEffective",
            ],
            "additionalProperties": False,
            "properties": {
                "datatype": {"enum": ["reads", "variants"]},
                "formats": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"enum": ["BAM", "CRAM", "VCF", "BCF"]},
                },
                "fieldsParametersEffective": {"type": "boolean"},
                "tagsParametersEffective": {"type": "boolean"},
            },
        },
    },
}

#: A ticket: the single key ``htsget``, a ``format`` and ``urls`` of objects
#: with a ``url`` and optional ``headers`` (strings) and ``class``.
TICKET_SCHEMA = {
    "type": "object",
    "required": ["htsget"],
    "additionalProperties": False,
    "properties": {
        "htsget": {
            "type": "object",
            "required": ["format", "urls"],
            "properties": {
                "format": {"type": "string"},
                "md5": {"type": "string"},
                "urls": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["url"],
                        "additionalProperties": False,
                        "properties": {
                            "url": {"type": "string", "pattern": "^(https?:|data:)"},
                            "headers": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                            "class": {"enum": ["header", "body"]},
                        },
                    },
                },
            },
        }
    },
}


def assert_error(response, error: str) -> None:
    """An htsget error document of type ``error``, with that type's status."""
    assert response.status_code == ERROR_STATUS[error], response.text
    assert response.headers["content-type"].startswith("application/")
    document = response.json()
    assert set(document) == {"htsget"}
    assert set(document["htsget"]) == {"error", "message"}
    assert document["htsget"]["error"] == error
    assert isinstance(document["htsget"]["message"], str)
    assert document["htsget"]["message"]


def bam_id(client) -> str:
    return next(
        stored.id
        for stored in client.app.state.transfer.objects(DATASET, role="alignments")
        if stored.name.endswith(".bam")
    )


def get(client, headers, kind="variants", identifier=DATASET, params=()):
    path = f"/htsget/{kind}/{urllib.parse.quote(identifier, safe='')}"
    return client.get(path, params=list(params), headers=headers)


def post(client, headers, body, kind="variants", identifier=DATASET, query=""):
    path = f"/htsget/{kind}/{urllib.parse.quote(identifier, safe='')}{query}"
    return client.post(path, json=body, headers=headers)


def follow(client, ticket: dict) -> bytes:
    parts = []
    for item in ticket["htsget"]["urls"]:
        url = item["url"]
        if url.startswith("data:"):
            # The media type is to be ignored; the payload is base64.
            metadata, _, payload = url[len("data:") :].partition(",")
            assert metadata.endswith(";base64")
            parts.append(base64.b64decode(payload))
            continue
        response = client.get(url[len(BASE) :], headers=item.get("headers") or {})
        assert response.status_code == 200, response.text
        parts.append(response.content)
    return b"".join(parts)


# ------------------------------------------------------------------ service-info


@pytest.mark.parametrize(
    ("kind", "formats", "effective"),
    [("reads", ["BAM", "CRAM"], True), ("variants", ["VCF", "BCF"], False)],
)
def test_service_info_of_each_endpoint(client, kind, formats, effective):
    # 1.3.0: GET /reads/service-info and /variants/service-info answer GA4GH
    # service-info of type org.ga4gh:htsget:1.3.0 with an `htsget` object.
    response = client.get(f"/htsget/{kind}/service-info")
    assert response.status_code == 200, response.text
    document = response.json()
    jsonschema.validate(document, SERVICE_INFO_SCHEMA)
    assert document["htsget"] == {
        "datatype": kind,
        "formats": formats,
        "fieldsParametersEffective": effective,
        "tagsParametersEffective": effective,
    }


def test_service_info_needs_no_token(client):
    # Discovery of what a server serves comes before any grant.
    for kind in ("reads", "variants"):
        assert client.get(f"/htsget/{kind}/service-info").status_code == 200


# ------------------------------------------------------------------ tickets


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_ticket_has_the_single_key_htsget_and_the_versioned_type(
    client, granted, method
):
    # The response is an object with the single key `htsget`; JSON responses
    # SHOULD carry the versioned htsget Content-Type.
    if method == "GET":
        response = get(client, granted, params=[("referenceName", "1")])
    else:
        response = post(client, granted, {"regions": [{"referenceName": "1"}]})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(
        "application/vnd.ga4gh.htsget.v1.3.0+json"
    )
    jsonschema.validate(response.json(), TICKET_SCHEMA)
    assert response.text.lstrip().startswith('{"htsget"')


@pytest.mark.parametrize(("kind", "expected"), [("variants", "VCF"), ("reads", "BAM")])
def test_the_default_format(client, granted, kind, expected):
    identifier = DATASET if kind == "variants" else bam_id(client)
    response = get(client, granted, kind=kind, identifier=identifier)
    assert response.json()["htsget"]["format"] == expected


def test_an_empty_result_is_still_a_valid_file(client, granted, tmp_path):
    # "Successful requests with empty result sets still produce a valid response
    # in the requested format (e.g. including header and EOF marker)."
    response = get(
        client,
        granted,
        params=[("referenceName", "1"), ("start", "1"), ("end", "2")],
    )
    data = follow(client, response.json())
    assert data.endswith(
        bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
    )
    path = tmp_path / "empty.vcf.gz"
    path.write_bytes(data)
    with pysam.VariantFile(str(path)) as vcf:
        assert list(vcf.header.samples) and list(vcf) == []


def test_class_header_returns_the_header_alone(client, granted):
    response = get(client, granted, params=[("class", "header")])
    urls = response.json()["htsget"]["urls"]
    assert urls[0]["class"] == "header"
    text = gzip.decompress(follow(client, response.json()))
    assert text.startswith(b"##fileformat=VCF")
    assert text.rstrip(b"\n").rsplit(b"\n", 1)[-1].startswith(b"#CHROM")


def test_block_urls_need_their_headers(client, granted):
    # The client MUST send a URL's headers; without them a block is refused.
    ticket = get(client, granted, params=[("referenceName", "1")]).json()
    block = next(
        item for item in ticket["htsget"]["urls"] if item["url"].startswith(BASE)
    )
    assert_error(client.get(block["url"][len(BASE) :]), "InvalidAuthentication")


# ------------------------------------------------------------------ GET rules


@pytest.mark.parametrize(
    ("params", "error"),
    [
        # format: UnsupportedFormat when the format is not served.
        ([("format", "CRAM")], "UnsupportedFormat"),
        ([("format", "GVCF")], "UnsupportedFormat"),
        # class: if given, it MUST be `header`.
        ([("class", "body")], "InvalidInput"),
        # class=header: InvalidInput with any parameter other than format.
        ([("class", "header"), ("referenceName", "1")], "InvalidInput"),
        # start / end: InvalidInput without a reference.
        ([("start", "10")], "InvalidInput"),
        ([("end", "10")], "InvalidInput"),
        # start / end: InvalidRange when start is greater than end...
        ([("referenceName", "1"), ("start", "20"), ("end", "10")], "InvalidRange"),
        # ... and a range of no bases cannot be satisfied either.
        ([("referenceName", "1"), ("start", "10"), ("end", "10")], "InvalidRange"),
        # start / end are unsigned 64-bit integers.
        ([("referenceName", "1"), ("start", "-1")], "InvalidRange"),
        ([("referenceName", "1"), ("start", "ten")], "InvalidInput"),
        ([("referenceName", "1"), ("end", "1.5")], "InvalidInput"),
        ([("referenceName", "1"), ("end", str(2**64))], "InvalidRange"),
        # referenceName `*` (unplaced reads) is for reads only.
        ([("referenceName", "*")], "InvalidInput"),
        # fields, tags and notags are reads' parameters.
        ([("fields", "QNAME")], "InvalidInput"),
        ([("tags", "AF")], "InvalidInput"),
        ([("notags", "AF")], "InvalidInput"),
        # A parameter the specification does not define, or one given twice.
        ([("bogus", "1")], "InvalidInput"),
        ([("referenceName", "1"), ("referenceName", "2")], "InvalidInput"),
        # referenceName: NotFound when the reference does not exist.
        ([("referenceName", "no-such-contig")], "NotFound"),
    ],
)
def test_get_variants_rule(client, granted, params, error):
    assert_error(get(client, granted, params=params), error)


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ([("format", "VCF")], "UnsupportedFormat"),
        ([("format", "CRAM")], "UnsupportedFormat"),  # a BAM without a reference
        # fields: only the SAM fields the specification lists.
        ([("fields", "QNAME,COLOUR")], "InvalidInput"),
        # tags and notags must not intersect.
        ([("tags", "NM,RG"), ("notags", "RG")], "InvalidInput"),
        ([("class", "header"), ("fields", "QNAME")], "InvalidInput"),
        ([("class", "header"), ("notags", "NM")], "InvalidInput"),
        ([("referenceName", "*"), ("start", "5")], "InvalidInput"),
    ],
)
def test_get_reads_rule(client, granted, params, error):
    assert_error(
        get(client, granted, kind="reads", identifier=bam_id(client), params=params),
        error,
    )


def test_an_unknown_id_is_not_found(client, granted):
    assert_error(get(client, granted, identifier="no-such-dataset"), "NotFound")
    assert_error(
        get(client, granted, kind="reads", identifier="no-such-file"), "NotFound"
    )


def test_authentication_errors(client):
    assert_error(
        get(client, {"Authorization": "Bearer not-a-token"}), "InvalidAuthentication"
    )
    assert_error(get(client, {}), "PermissionDenied")


# ------------------------------------------------------------------ POST rules


@pytest.mark.parametrize(
    ("body", "error"),
    [
        # regions, when given, names at least one region.
        ({"regions": []}, "InvalidInput"),
        ({"regions": {"referenceName": "1"}}, "InvalidInput"),
        ({"regions": ["1:1-10"]}, "InvalidInput"),
        # Each region has a referenceName, and only the region's keys.
        ({"regions": [{"start": 10, "end": 20}]}, "InvalidInput"),
        ({"regions": [{"referenceName": "1", "stop": 20}]}, "InvalidInput"),
        ({"regions": [{"referenceName": 1}]}, "InvalidInput"),
        # start < end, as unsigned integers.
        ({"regions": [{"referenceName": "1", "start": 10, "end": 10}]}, "InvalidRange"),
        ({"regions": [{"referenceName": "1", "start": 20, "end": 10}]}, "InvalidRange"),
        ({"regions": [{"referenceName": "1", "start": -5}]}, "InvalidRange"),
        # Positions are JSON integers, not strings, fractions or booleans.
        ({"regions": [{"referenceName": "1", "start": "10"}]}, "InvalidInput"),
        ({"regions": [{"referenceName": "1", "start": 10.5}]}, "InvalidInput"),
        ({"regions": [{"referenceName": "1", "end": True}]}, "InvalidInput"),
        # A bad region among good ones refuses the request.
        (
            {
                "regions": [
                    {"referenceName": "1", "start": 0, "end": 10},
                    {"referenceName": "1", "start": 30, "end": 20},
                ]
            },
            "InvalidRange",
        ),
        ({"format": "BAM"}, "UnsupportedFormat"),
        ({"format": ["VCF"]}, "InvalidInput"),
        ({"class": "header", "regions": [{"referenceName": "1"}]}, "InvalidInput"),
        ({"class": "body"}, "InvalidInput"),
        ({"fields": ["QNAME"]}, "InvalidInput"),
        ({"referenceName": "1"}, "InvalidInput"),  # a GET parameter, not a POST key
        ({"bogus": 1}, "InvalidInput"),
        ({"regions": [{"referenceName": "no-such-contig"}]}, "NotFound"),
    ],
)
def test_post_variants_rule(client, granted, body, error):
    assert_error(post(client, granted, body), error)


@pytest.mark.parametrize(
    "body",
    [
        # Lists are JSON arrays of strings in a POST.
        {"fields": "QNAME,FLAG"},
        {"tags": ["NM"], "notags": ["NM"]},
        {"fields": ["QNAME", "COLOUR"]},
        {"notags": [1]},
    ],
)
def test_post_reads_rule(client, granted, body):
    response = post(client, granted, body, kind="reads", identifier=bam_id(client))
    assert_error(response, "InvalidInput")


@pytest.mark.parametrize("query", ["?format=BCF", "?bogus=1", "?referenceName=1"])
def test_a_post_with_url_parameters_is_refused(client, granted, query):
    # A POST's parameters are its JSON body; URL parameters would be either
    # ignored or mixed in, answering another request than the body states.
    for body in ({}, {"format": "VCF", "regions": [{"referenceName": "1"}]}):
        assert_error(post(client, granted, body, query=query), "InvalidInput")


def test_a_post_body_must_be_a_json_object(client, granted):
    path = f"/htsget/variants/{DATASET}"
    for content in (b"[]", b'"regions"', b"{not json"):
        response = client.post(
            path,
            content=content,
            headers={**granted, "Content-Type": "application/json"},
        )
        assert_error(response, "InvalidInput")


def test_a_post_without_regions_is_the_whole_file(client, granted, tmp_path):
    for body in ({}, {"format": "VCF"}, {"regions": None}):
        response = post(client, granted, body)
        assert response.status_code == 200, response.text
        path = tmp_path / "whole.vcf.gz"
        path.write_bytes(follow(client, response.json()))
        with pysam.VariantFile(str(path)) as vcf:
            assert sum(1 for _ in vcf) == 1042


def test_a_post_with_a_valid_region_and_format(client, granted):
    response = post(
        client,
        granted,
        {"format": "BCF", "regions": [{"referenceName": "1", "start": 0, "end": 1}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["htsget"]["format"] == "BCF"

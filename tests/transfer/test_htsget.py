"""htsget 1.3 over the node's app: tickets, blocks, errors, authorisation and audit.

One node with the real 1000 Genomes slice (CONTROLLED, a DAC) and a small BAM
ingested as an alignment file. Slices are compared by records with what
``bcftools view -r`` / ``samtools view`` return for the same region.
"""

from __future__ import annotations

import base64
import datetime as dt
import pathlib
import random
import shutil
import urllib.parse

import pysam
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from genomenode.access import workflow
from genomenode.app import create_app
from genomenode.ingest.pipeline import ingest
from genomenode.store.models import AuditEntry
from genomenode.store.node import init_node

from ..conftest import (
    CINECA_INDIVIDUALS,
    CINECA_VCF,
    grant_access,
    in_process_workers,
    write_dataset_yaml,
)

BASE = "http://testserver"
DATASET = "kg-controlled"
RESEARCHER = "researcher@demo.genomenode"
DAC = "dac@demo.genomenode"


def _write_bam(path: pathlib.Path, seed: int = 3) -> None:
    """A small coordinate-sorted BAM on contig 1 (and 2) with varied CIGARs."""
    generator = random.Random(seed)
    header = {
        "HD": {"VN": "1.6", "SO": "coordinate"},
        "SQ": [{"SN": "1", "LN": 250_000}, {"SN": "2", "LN": 100_000}],
        "RG": [{"ID": "rg1", "SM": "HG00096"}],
    }
    reads = []
    for number in range(600):
        contig = 0 if number < 450 else 1
        start = generator.randrange(1, 240_000 if contig == 0 else 90_000)
        cigar = generator.choice(
            ["100M", "50M20D50M", "10S90M", "40M500N60M", "30M5I65M"]
        )
        reads.append((contig, start, cigar, number))
    reads.sort()
    unsorted = path.with_name(path.name + ".unsorted.bam")
    with pysam.AlignmentFile(str(unsorted), "wb", header=header) as out:
        for contig, start, cigar, number in reads:
            segment = pysam.AlignedSegment(out.header)
            segment.query_name = f"read{number}"
            segment.reference_id = contig
            segment.reference_start = start
            segment.cigarstring = cigar
            length = segment.infer_query_length()
            segment.query_sequence = "".join(
                generator.choice("ACGT") for _ in range(length)
            )
            segment.query_qualities = pysam.qualitystring_to_array("I" * length)
            segment.mapping_quality = 60
            segment.set_tag("RG", "rg1")
            segment.set_tag("NM", generator.randrange(5))
            out.write(segment)
    pysam.sort("-o", str(path), str(unsorted))
    unsorted.unlink()
    pysam.index(str(path))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> pathlib.Path:
    directory = tmp_path_factory.mktemp("htsget-cohort")
    shutil.copy(CINECA_VCF, directory / "cohort.vcf.gz")
    shutil.copy(CINECA_INDIVIDUALS, directory / "individuals.json")
    _write_bam(directory / "HG00096.bam")
    generator = random.Random(5)
    with open(directory / "reference.fa", "w") as fasta:
        for name, length in (("1", 250_000), ("2", 100_000)):
            sequence = "".join(generator.choice("ACGT") for _ in range(length))
            fasta.write(f">{name}\n")
            for offset in range(0, length, 60):
                fasta.write(sequence[offset : offset + 60] + "\n")
    pysam.faidx(str(directory / "reference.fa"))
    pysam.view(
        "-C",
        "-T",
        str(directory / "reference.fa"),
        "-o",
        str(directory / "HG00096.cram"),
        str(directory / "HG00096.bam"),
        catch_stdout=False,
    )
    pysam.index(str(directory / "HG00096.cram"))
    return directory


@pytest.fixture(scope="module")
def node(cohort, tmp_path_factory):
    with in_process_workers():
        description = write_dataset_yaml(
            cohort,
            id=DATASET,
            security_level="CONTROLLED",
            dac={"members": [DAC]},
            alignments=[
                {"path": "HG00096.bam", "sample": "HG00096"},
                {
                    "path": "HG00096.cram",
                    "sample": "HG00096",
                    "reference": "reference.fa",
                },
            ],
        )
        fresh = init_node(
            tmp_path_factory.mktemp("htsget") / "node", node_id="n", country="FI"
        )
        ingest(fresh, description)
    yield fresh
    fresh.close()


@pytest.fixture(scope="module")
def client(node):
    with TestClient(
        create_app(node, base_url=BASE, dev_identity_provider=True)
    ) as test:
        yield test


def _passport(client, subject: str) -> dict[str, str]:
    token = client.post("/dev-idp/token", json={"subject": subject}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


@pytest.fixture(scope="module")
def granted(client, node) -> dict[str, str]:
    grant_access(node, DATASET, RESEARCHER, actor=DAC)
    return _passport(client, RESEARCHER)


def _follow(client, ticket: dict) -> bytes:
    """The concatenation of a ticket's URLs, fetched as a client would."""
    parts = []
    for item in ticket["htsget"]["urls"]:
        url = item["url"]
        if url.startswith("data:"):
            parts.append(base64.b64decode(url.partition(",")[2]))
            continue
        assert url.startswith(BASE)
        response = client.get(url[len(BASE) :], headers=item.get("headers") or {})
        assert response.status_code == 200, response.text
        parts.append(response.content)
    return b"".join(parts)


def _variant_records(data: bytes, directory: pathlib.Path) -> list[str]:
    path = directory / "slice.vcf.gz"
    path.write_bytes(data)
    with pysam.VariantFile(str(path)) as vcf:
        return [str(record) for record in vcf]


def _expected_variants(cohort: pathlib.Path, region: str) -> list[str]:
    indexed = cohort / "indexed.vcf.gz"
    if not indexed.exists():
        shutil.copy(cohort / "cohort.vcf.gz", indexed)
        pysam.tabix_index(str(indexed), preset="vcf", force=True)
    with pysam.VariantFile(str(indexed)) as vcf:
        name, _, span = region.partition(":")
        start, _, end = span.partition("-")
        return [str(record) for record in vcf.fetch(name, int(start) - 1, int(end))]


def _ticket(client, headers, identifier=DATASET, kind="variants", **parameters):
    path = f"/htsget/{kind}/{urllib.parse.quote(identifier, safe='')}"
    return client.get(path, params=parameters, headers=headers)


@pytest.mark.parametrize("seed", range(6))
def test_variant_slices_equal_what_bcftools_returns(
    client, granted, cohort, tmp_path, seed
):
    generator = random.Random(seed)
    start = generator.randrange(10_000, 170_000)
    end = start + generator.choice([1, 50, 1_000, 20_000])
    response = _ticket(client, granted, referenceName="1", start=start, end=end)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.ga4gh.htsget")
    ticket = response.json()
    assert ticket["htsget"]["format"] == "VCF"
    assert ticket["htsget"]["urls"][0]["class"] == "header"
    records = _variant_records(_follow(client, ticket), tmp_path)
    assert records == _expected_variants(cohort, f"1:{start + 1}-{end}")


def test_header_only_and_whole_file(client, granted, cohort, tmp_path):
    header = _ticket(client, granted, **{"class": "header"}).json()
    assert [item["class"] for item in header["htsget"]["urls"]] == ["header", "body"]
    assert _variant_records(_follow(client, header), tmp_path) == []
    whole = _ticket(client, granted).json()
    assert len(_variant_records(_follow(client, whole), tmp_path)) == 1042


def test_post_with_several_regions(client, granted, cohort, tmp_path):
    regions = [
        {"referenceName": "1", "start": 20_000, "end": 30_000},
        {"referenceName": "1", "start": 100_000, "end": 101_000},
    ]
    response = client.post(
        f"/htsget/variants/{DATASET}",
        headers=granted,
        json={"format": "VCF", "regions": regions},
    )
    assert response.status_code == 200, response.text
    records = _variant_records(_follow(client, response.json()), tmp_path)
    expected = _expected_variants(cohort, "1:20001-30000") + _expected_variants(
        cohort, "1:100001-101000"
    )
    assert records == expected


def test_bcf_slices_hold_the_same_records(client, granted, cohort, tmp_path):
    ticket = _ticket(
        client, granted, format="BCF", referenceName="1", start=50_000, end=60_000
    ).json()
    assert ticket["htsget"]["format"] == "BCF"
    path = tmp_path / "slice.bcf"
    path.write_bytes(_follow(client, ticket))
    with pysam.VariantFile(str(path)) as bcf:
        got = [(record.pos, record.ref, record.alts) for record in bcf]
    with pysam.VariantFile(str(cohort / "cohort.vcf.gz")) as vcf:
        expected = [
            (record.pos, record.ref, record.alts)
            for record in vcf
            if record.pos + len(record.ref) - 1 >= 50_001 and record.pos <= 60_000
        ]
    assert got == expected and got


def test_read_slices_equal_what_samtools_returns(
    client, granted, cohort, tmp_path, node
):
    identifier = next(
        stored.id
        for stored in client.app.state.transfer.objects(DATASET, role="alignments")
        if stored.name.endswith(".bam")
    )
    for start, end in [(0, 5_000), (100_000, 100_500), (239_900, 250_000)]:
        ticket = _ticket(
            client,
            granted,
            identifier=identifier,
            kind="reads",
            referenceName="1",
            start=start,
            end=end,
        )
        assert ticket.status_code == 200, ticket.text
        path = tmp_path / "slice.bam"
        path.write_bytes(_follow(client, ticket.json()))
        with pysam.AlignmentFile(str(path)) as bam:
            got = [segment.to_string() for segment in bam]
        with pysam.AlignmentFile(str(cohort / "HG00096.bam")) as bam:
            expected = [segment.to_string() for segment in bam.fetch("1", start, end)]
        assert got == expected


@pytest.mark.parametrize(
    ("parameters", "status", "error"),
    [
        ({"format": "CRAM"}, 400, "UnsupportedFormat"),
        ({"format": "BAM"}, 400, "UnsupportedFormat"),
        ({"referenceName": "1", "start": 10, "end": 5}, 400, "InvalidRange"),
        ({"start": 10}, 400, "InvalidInput"),
        ({"class": "body"}, 400, "InvalidInput"),
        ({"fields": "QNAME"}, 400, "InvalidInput"),
        ({"surprise": "1"}, 400, "InvalidInput"),
        ({"referenceName": "no-such-contig"}, 404, "NotFound"),
    ],
)
def test_each_error_type(client, granted, parameters, status, error):
    response = _ticket(client, granted, **parameters)
    assert response.status_code == status
    assert response.json()["htsget"]["error"] == error
    assert response.json()["htsget"]["message"]


def test_not_found_unauthenticated_and_too_large(client, granted):
    missing = _ticket(client, granted, identifier="no-such-dataset")
    assert missing.status_code == 404
    assert missing.json()["htsget"]["error"] == "NotFound"
    bad = _ticket(client, {"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401
    assert bad.json()["htsget"]["error"] == "InvalidAuthentication"
    many = client.post(
        f"/htsget/variants/{DATASET}",
        headers=granted,
        json={"regions": [{"referenceName": "1"}] * 1001},
    )
    assert many.status_code == 413
    assert many.json()["htsget"]["error"] == "PayloadTooLarge"


def test_no_grant_gets_403_and_no_bytes_and_is_audited(client, node):
    stranger = _passport(client, "stranger@demo.genomenode")
    for headers in ({}, stranger):
        response = _ticket(client, headers, referenceName="1", start=0, end=200_000)
        assert response.status_code == 403
        assert response.json()["htsget"]["error"] == "PermissionDenied"
        assert "urls" not in response.text
    with node.session() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "htsget.variants")
        ).all()
    assert any(
        entry.actor == "stranger@demo.genomenode" and entry.outcome == "deny"
        for entry in entries
    )


def test_a_revoked_grant_stops_the_blocks_of_an_earlier_ticket(client, node, cohort):
    subject = "later-revoked@demo.genomenode"
    application_id = grant_access(node, DATASET, subject, actor=DAC)
    headers = _passport(client, subject)
    ticket = _ticket(client, headers, referenceName="1", start=0, end=200_000).json()
    body = next(
        item for item in ticket["htsget"]["urls"] if item["url"].startswith(BASE)
    )
    first = client.get(body["url"][len(BASE) :], headers=body["headers"])
    assert first.status_code == 200 and first.content
    workflow.revoke(node.engine, application_id, actor=DAC)
    again = client.get(body["url"][len(BASE) :], headers=body["headers"])
    assert again.status_code == 403
    assert again.json()["htsget"]["error"] == "PermissionDenied"
    # A link opens only the block it was made for.
    other = body["url"].replace("region=1%3A0-200000", "region=1%3A0-300000")
    assert client.get(other[len(BASE) :], headers=body["headers"]).status_code == 401


def test_overlapping_regions_give_each_record_once(client, granted, cohort, tmp_path):
    regions = [
        {"referenceName": "1", "start": 20_000, "end": 30_000},
        {"referenceName": "1", "start": 25_000, "end": 35_000},
    ]
    response = client.post(
        f"/htsget/variants/{DATASET}", headers=granted, json={"regions": regions}
    )
    body_urls = [
        item
        for item in response.json()["htsget"]["urls"]
        if item["url"].startswith(BASE)
    ]
    assert len(body_urls) == 1
    records = _variant_records(_follow(client, response.json()), tmp_path)
    assert records == _expected_variants(cohort, "1:20001-35000") and records


def test_an_expired_grant_gets_403(client, node):
    subject = "expired@demo.genomenode"
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    grant_access(node, DATASET, subject, actor=DAC, now=past)
    response = _ticket(client, _passport(client, subject), referenceName="1")
    assert response.status_code == 403
    assert response.json()["htsget"]["error"] == "PermissionDenied"


@pytest.mark.parametrize("output_format", ["CRAM", "BAM"])
def test_cram_slices_equal_what_samtools_returns(
    client, granted, cohort, tmp_path, output_format
):
    identifier = next(
        stored.id
        for stored in client.app.state.transfer.objects(DATASET, role="alignments")
        if stored.name.endswith(".cram")
    )
    reference = str(cohort / "reference.fa")
    for start, end in [(0, 5_000), (100_000, 110_000)]:
        ticket = _ticket(
            client,
            granted,
            identifier=identifier,
            kind="reads",
            format=output_format,
            referenceName="1",
            start=start,
            end=end,
        )
        assert ticket.status_code == 200, ticket.text
        assert len(ticket.json()["htsget"]["urls"]) == 1  # a CRAM slice is one file
        path = tmp_path / f"slice.{output_format.lower()}"
        path.write_bytes(_follow(client, ticket.json()))
        with pysam.AlignmentFile(str(path), reference_filename=reference) as reads:
            got = [(segment.query_name, segment.reference_start) for segment in reads]
        with pysam.AlignmentFile(
            str(cohort / "HG00096.cram"), reference_filename=reference
        ) as reads:
            expected = [
                (segment.query_name, segment.reference_start)
                for segment in reads.fetch("1", start, end)
            ]
        assert got == expected and expected


def test_a_bam_is_not_served_as_cram(client, granted):
    identifier = next(
        stored.id
        for stored in client.app.state.transfer.objects(DATASET, role="alignments")
        if stored.name.endswith(".bam")
    )
    response = _ticket(
        client, granted, identifier=identifier, kind="reads", format="CRAM"
    )
    assert response.status_code == 400
    assert response.json()["htsget"]["error"] == "UnsupportedFormat"


def test_cram_header_only(client, granted, cohort, tmp_path):
    identifier = next(
        stored.id
        for stored in client.app.state.transfer.objects(DATASET, role="alignments")
        if stored.name.endswith(".cram")
    )
    ticket = _ticket(
        client, granted, identifier=identifier, kind="reads", **{"class": "header"}
    )
    assert ticket.status_code == 200, ticket.text
    path = tmp_path / "header.cram"
    path.write_bytes(_follow(client, ticket.json()))
    reference = str(cohort / "reference.fa")
    with pysam.AlignmentFile(str(path), reference_filename=reference) as reads:
        assert list(reads.references) == ["1", "2"]
        assert list(reads) == []


def test_ticket_urls_are_on_public_url_whatever_the_host_header(node, granted):
    # Behind a proxy at a path prefix; the caller sends a Host of their choosing.
    public = "https://genomes.example.org/fi"
    with TestClient(
        create_app(node, base_url=public, dev_identity_provider=True)
    ) as other:
        headers = {**_passport(other, RESEARCHER), "Host": "evil.example"}
        alignments = other.app.state.transfer.objects(DATASET, role="alignments")
        tickets = [
            _ticket(other, headers, referenceName="1", start=0, end=100_000),
            _ticket(other, headers),
            *(
                _ticket(other, headers, identifier=stored.id, kind="reads")
                for stored in alignments
            ),
        ]
        urls = []
        for ticket in tickets:
            assert ticket.status_code == 200, ticket.text
            urls += [
                item
                for item in ticket.json()["htsget"]["urls"]
                if not item["url"].startswith("data:")
            ]
        assert len(urls) >= 4
        for item in urls:
            assert item["url"].startswith(f"{public}/htsget/blocks/"), item["url"]
            assert "evil.example" not in item["url"]
            # The link still opens its block (the proxy strips the prefix).
            path = item["url"][len(public) :]
            assert other.get(path, headers=item["headers"]).status_code == 200


@pytest.mark.parametrize("value", ["9" * 5000, "9" * 21, 10**30])
def test_huge_positions_are_invalid_input_not_errors(value):
    from genomenode.errors import InputError
    from genomenode.transfer.htsget import parse_query

    with pytest.raises(InputError) as caught:
        parse_query("variants", {"referenceName": "1", "start": value}, post=False)
    assert caught.value.field == "start"
    with pytest.raises(InputError):
        parse_query(
            "variants",
            {"regions": [{"referenceName": "1", "end": value}]},
            post=True,
        )

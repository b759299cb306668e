"""The synonym table: every accepted spelling of every chromosome, on datasets of both
assemblies that spell their contigs three ways, in Beacon and htsget.

Three datasets on one node hold one SNV per chromosome (1-22, X, Y, MT), each at its
own position: GRCh37 named ``1`` ... ``MT``; GRCh38 named ``chr1`` ... ``chrM``;
GRCh38 named by RefSeq accession. Each spelling must find exactly the datasets of its
assembly (a RefSeq accession names one assembly; ``NC_012920.1`` both), by sequence,
range and bracket query, by variant id and HGVS, and as an htsget ``referenceName``.
"""

from __future__ import annotations

import base64
import pathlib

import pysam
import pytest
from fastapi.testclient import TestClient

from genomenode.app import create_app
from genomenode.ingest.pipeline import ingest
from genomenode.store.node import init_node
from genomenode.vocab.contigs import refseq_accession

from .conftest import grant_access, in_process_workers, write_dataset_yaml, write_vcf

BASE = "http://testserver"
RESEARCHER = "researcher@demo.genomenode"
CHROMOSOMES = [*(str(number) for number in range(1, 23)), "X", "Y", "MT"]
#: Dataset id → (assembly, the contig name of each chromosome in its VCF).
DATASETS = {
    "b37-bare": ("GRCh37", {c: c for c in CHROMOSOMES}),
    "b38-chr": ("GRCh38", {c: "chrM" if c == "MT" else f"chr{c}" for c in CHROMOSOMES}),
    "b38-refseq": (
        "GRCh38",
        {c: str(refseq_accession("GRCh38", c)) for c in CHROMOSOMES},
    ),
}
ASSEMBLY_NAMES = {
    "GRCh37": ["GRCh37", "GRCh37.p13", "hg19", "GCF_000001405.25", "GCF_000001405.13"],
    "GRCh38": ["GRCh38", "GRCh38.p14", "hg38", "GCF_000001405.26", "GCF_000001405.40"],
}


def _position(chromosome: str) -> int:
    """Each chromosome's variant at its own POS: a wrong contig finds nothing."""
    return 1000 + 10 * CHROMOSOMES.index(chromosome)


def spellings(chromosome: str) -> dict[str, set[str]]:
    """Every accepted spelling of a chromosome → the assemblies it names."""
    both = {"GRCh37", "GRCh38"}
    names = {chromosome, f"chr{chromosome}", f"CHR{chromosome}", f"Chr{chromosome}"}
    if chromosome == "MT":
        names |= {"M", "chrM", "chrMT", "mt", "chrm"}
    if chromosome in ("X", "Y"):
        names |= {chromosome.lower(), f"chr{chromosome.lower()}"}
    found = {name: both for name in names}
    for assembly in both:
        accession = str(refseq_accession(assembly, chromosome))
        owners = both if chromosome == "MT" else {assembly}
        found[accession] = owners
        found[f"refseq:{accession}"] = owners
    return found


def _datasets_of(assemblies: set[str]) -> set[str]:
    return {name for name, (assembly, _) in DATASETS.items() if assembly in assemblies}


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = tmp_path_factory.mktemp("contig-names")
    fresh = init_node(root / "node", node_id="n", country="FI")
    samples = ["S1", "S2", "S3"]
    with in_process_workers():
        for dataset, (assembly, names) in DATASETS.items():
            directory = root / dataset
            directory.mkdir()
            records = [
                f"{names[c]}\t{_position(c)}\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\t1/1\t0/0"
                for c in CHROMOSOMES
            ]
            write_vcf(
                directory / "cohort.vcf.gz",
                records,
                samples=samples,
                contigs=tuple(names[c] for c in CHROMOSOMES),
            )
            (directory / "clinical.csv").write_text(
                "sample,sex\n" + "".join(f"{s},female\n" for s in samples)
            )
            description = write_dataset_yaml(
                directory,
                id=dataset,
                assembly=assembly,
                clinical={
                    "format": "csv",
                    "path": "clinical.csv",
                    "columns": {"id": "sample", "sex": "sex"},
                },
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


@pytest.fixture(scope="module")
def granted(client, node) -> dict[str, str]:
    for dataset in DATASETS:
        grant_access(node, dataset, RESEARCHER)
    token = client.post("/dev-idp/token", json={"subject": RESEARCHER}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def _found(client, headers, parameters: dict, path: str = "/api/g_variants") -> dict:
    """Dataset → the variant ids it answers with."""
    body = {
        "query": {"requestParameters": parameters, "requestedGranularity": "record"}
    }
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 200, (parameters, response.text)
    return {
        result_set["id"]: sorted(
            record["variantInternalId"] for record in result_set["results"]
        )
        for result_set in response.json()["response"]["resultSets"]
        if result_set["exists"]
    }


def _expected(chromosome: str, datasets: set[str]) -> dict[str, list[str]]:
    position = _position(chromosome)
    return {
        dataset: [f"{DATASETS[dataset][1][chromosome]}-{position}-A-G"]
        for dataset in datasets
    }


@pytest.mark.parametrize("chromosome", CHROMOSOMES)
def test_every_spelling_finds_its_assembly_in_beacon(client, granted, chromosome):
    position = _position(chromosome)
    begin = position - 1
    for spelling, assemblies in spellings(chromosome).items():
        expected = _expected(chromosome, _datasets_of(assemblies))
        queries = {
            "sequence": {"start": [begin], "alternateBases": "G"},
            "range": {"start": [begin], "end": [position]},
            "bracket": {"start": [begin, begin], "end": [position, position]},
        }
        for kind, query in queries.items():
            parameters = {"referenceName": spelling, **query}
            found = _found(client, granted, parameters)
            assert found == expected, (spelling, kind)
        # assemblyId narrows to that assembly's datasets.
        for assembly in ("GRCh37", "GRCh38"):
            parameters = {"referenceName": spelling, **queries["sequence"]}
            found = _found(client, granted, {**parameters, "assemblyId": assembly})
            assert found == _narrowed(expected, assembly), (spelling, assembly)
        # The variant id names the contig in any spelling, too.
        found = _found(
            client, granted, {}, path=f"/api/g_variants/{spelling}-{position}-A-G"
        )
        assert found == expected, (spelling, "id")


def _narrowed(expected: dict, assembly: str) -> dict:
    return {
        dataset: ids
        for dataset, ids in expected.items()
        if DATASETS[dataset][0] == assembly
    }


@pytest.mark.parametrize("chromosome", ["22", "X", "MT"])
def test_every_assembly_spelling_narrows(client, granted, chromosome):
    position = _position(chromosome)
    for spelling in (
        "chr" + chromosome,
        f"refseq:{refseq_accession('GRCh38', chromosome)}",
    ):
        parameters = {
            "referenceName": spelling,
            "start": [position - 1],
            "alternateBases": "G",
        }
        expected = _found(client, granted, parameters)
        for assembly, names in ASSEMBLY_NAMES.items():
            for name in names:
                found = _found(client, granted, {**parameters, "assemblyId": name})
                assert found == _narrowed(expected, assembly), (spelling, name)


@pytest.mark.parametrize("chromosome", CHROMOSOMES)
def test_hgvs_finds_the_accessions_assembly(client, granted, chromosome):
    position = _position(chromosome)
    for assembly in ("GRCh37", "GRCh38"):
        accession = refseq_accession(assembly, chromosome)
        owners = {"GRCh37", "GRCh38"} if chromosome == "MT" else {assembly}
        found = _found(
            client,
            granted,
            {"genomicAlleleShortForm": f"{accession}:g.{position}A>G"},
        )
        assert found == _expected(chromosome, _datasets_of(owners)), accession


def _htsget_records(client, headers, dataset: str, reference_name: str):
    response = client.get(
        f"/htsget/variants/{dataset}",
        params={"referenceName": reference_name},
        headers=headers,
    )
    if response.status_code == 404:
        return None
    assert response.status_code == 200, (dataset, reference_name, response.text)
    parts = []
    for item in response.json()["htsget"]["urls"]:
        url = item["url"]
        if url.startswith("data:"):
            parts.append(base64.b64decode(url.partition(",")[2]))
            continue
        block = client.get(url[len(BASE) :], headers=item.get("headers") or {})
        assert block.status_code == 200, block.text
        parts.append(block.content)
    return b"".join(parts)


@pytest.mark.parametrize("chromosome", CHROMOSOMES)
def test_every_spelling_finds_its_assembly_in_htsget(
    client, granted, chromosome, tmp_path
):
    for spelling, assemblies in spellings(chromosome).items():
        for dataset, (assembly, names) in DATASETS.items():
            data = _htsget_records(client, granted, dataset, spelling)
            if assembly not in assemblies:
                assert data is None, (dataset, spelling)
                continue
            assert data is not None, (dataset, spelling)
            path = pathlib.Path(tmp_path, "slice.vcf.gz")
            path.write_bytes(data)
            with pysam.VariantFile(str(path)) as vcf:
                found = [(record.chrom, record.pos) for record in vcf]
            assert found == [(names[chromosome], _position(chromosome))], (
                dataset,
                spelling,
            )

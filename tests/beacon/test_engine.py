"""Beacon answers on real data, checked against independent computations.

Expected values come from the raw inputs, never from genomenode's store: the
CINECA individuals JSON read with plain Python, the 1000 Genomes VCF read with
pysam (htslib), and bcftools (bundled in pysam) for regions.
"""

from __future__ import annotations

import pysam
import pytest

from genomenode.access import ANONYMOUS, Caller
from genomenode.beacon.engine import PathScope, answer
from genomenode.beacon.requests import parse_post
from genomenode.beacon.responses import result_response
from genomenode.beacon.schemas import validate
from genomenode.store.published import PublishedDatasets

from ..conftest import CINECA_VCF

META = {
    "beaconId": "org.genomenode.test",
    "apiVersion": "v2.1.1",
    "returnedSchemas": [],
}


def count(client, entry: str, query: dict, dataset: str = "cineca-1kg") -> int | None:
    """resultsCount of one dataset at count granularity (None if not in the answer)."""
    body = {
        "query": {
            **query,
            "requestedGranularity": "count",
            "includeResultsetResponses": "ALL",
        }
    }
    response = client.post(f"/api/{entry}", json=body)
    assert response.status_code == 200, response.text
    for result_set in response.json()["response"]["resultSets"]:
        if result_set["id"] == dataset:
            return result_set["resultsCount"]
    return None


def records(client, entry: str, query: dict, dataset: str = "cineca-1kg") -> list[dict]:
    body = {"query": {**query, "requestedGranularity": "record"}}
    response = client.post(f"/api/{entry}", json=body)
    assert response.status_code == 200, response.text
    for result_set in response.json()["response"]["resultSets"]:
        if result_set["id"] == dataset:
            return result_set["results"]
    return []


def _bmi(record: dict) -> float | None:
    for measure in record.get("measures", []):
        if measure["assayCode"]["id"] == "LOINC:35925-4":
            return measure["measurementValue"]["value"]
    return None


def _diseases(record: dict) -> set[str]:
    return {item["diseaseCode"]["id"] for item in record.get("diseases", [])}


def _reported(true_count: int) -> int:
    # Counts of 1-4 are reported as the threshold (5) below record granularity.
    return 5 if 0 < true_count < 5 else true_count


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([{"id": "NCIT:C20197"}], lambda r: r["sex"]["id"] == "NCIT:C20197"),
        ([{"id": "NCIT:C16576"}], lambda r: r["sex"]["id"] == "NCIT:C16576"),
        ([{"id": "ICD10:E10"}], lambda r: "ICD10:E10" in _diseases(r)),
        # F31 is not in the data; its descendant F3181 is.
        (
            [{"id": "ICD10:F31"}],
            lambda r: any(d.startswith("ICD10:F31") for d in _diseases(r)),
        ),
        ([{"id": "ICD10:F31", "includeDescendantTerms": False}], lambda r: False),
        (
            [{"id": "LOINC:35925-4", "operator": ">", "value": "30"}],
            lambda r: (_bmi(r) or 0) > 30,
        ),
        (
            [
                {"id": "LOINC:35925-4", "operator": "<=", "value": "22.5"},
                {"id": "NCIT:C16576"},
            ],
            lambda r: (
                _bmi(r) is not None
                and _bmi(r) <= 22.5
                and r["sex"]["id"] == "NCIT:C16576"
            ),
        ),
        # Custom terms: as a CURIE-like id and with a space in the value.
        ([{"id": "sex:female"}], lambda r: r["sex"]["id"] == "NCIT:C16576"),
        (
            [{"id": "ethnicity:Any other Asian background"}],
            lambda r: (
                r.get("ethnicity", {}).get("label") == "Any other Asian background"
            ),
        ),
        (
            [{"id": "ethnicity", "operator": "=", "value": "%Afric%"}],
            lambda r: "afric" in r.get("ethnicity", {}).get("label", "").lower(),
        ),
    ],
)
def test_individual_filter_counts_equal_a_naive_count(
    client, cineca_records, filters, expected
):
    true_count = sum(1 for record in cineca_records if expected(record))
    assert count(client, "individuals", {"filters": filters}) == _reported(true_count)
    if true_count >= 5:
        assert true_count > 0
    found = {
        item["id"]
        for item in records(
            client, "individuals", {"filters": filters, "pagination": {"limit": 0}}
        )
    }
    assert found == {record["id"] for record in cineca_records if expected(record)}


def _carriers(contig: str, position: int, alternate: str) -> set[str]:
    """Samples with at least one copy of the allele, read by htslib."""
    with pysam.VariantFile(str(CINECA_VCF)) as vcf:
        for variant in vcf:
            if variant.chrom == contig and variant.pos == position:
                allele = list(variant.alts).index(alternate) + 1
                return {
                    name
                    for name, call in variant.samples.items()
                    if allele in (call["GT"] or ())
                }
    raise AssertionError("variant not in the file")


def _first_variants(number: int) -> list[tuple[str, int, str, str]]:
    found = []
    with pysam.VariantFile(str(CINECA_VCF)) as vcf:
        for variant in vcf:
            for alternate in variant.alts:
                found.append((variant.chrom, variant.pos, variant.ref, alternate))
            if len(found) >= number:
                break
    return found[:number]


@pytest.mark.parametrize("index", [0, 3, 17, 40])
def test_variant_plus_individual_filters(client, cineca_records, index):
    contig, position, reference, alternate = _first_variants(60)[index]
    carriers = _carriers(contig, position, alternate)
    females = {r["id"] for r in cineca_records if r["sex"]["id"] == "NCIT:C16576"}
    query = {
        "requestParameters": {
            "referenceName": contig,
            "start": [position - 1],
            "referenceBases": reference,
            "alternateBases": alternate,
        },
        "filters": [{"id": "NCIT:C16576"}],
        "pagination": {"limit": 0},
    }
    assert count(client, "individuals", query) == _reported(len(carriers & females))
    found = {item["id"] for item in records(client, "individuals", query)}
    assert found == carriers & females


def test_range_query_count_equals_bcftools(client):
    # Beacon [start, end) 0-based; bcftools regions are 1-based inclusive, and
    # --targets-overlap 1 keeps records whose REF overlaps the region (-t streams
    # the file, which has no index).
    start, end = 10_000, 60_000
    lines = pysam.bcftools.view(
        "-H", "--targets-overlap", "1", "-t", f"1:{start + 1}-{end}", str(CINECA_VCF)
    )
    expected = sum(
        len(line.split("\t")[4].split(",")) for line in lines.splitlines() if line
    )
    query = {
        "requestParameters": {"referenceName": "1", "start": [start], "end": [end]}
    }
    assert expected > 5
    assert count(client, "g_variants", query) == expected


def test_frequencies_equal_a_genotype_tally(client, cineca_records):
    contig, position, reference, alternate = _first_variants(10)[5]
    sex = {r["id"]: r["sex"]["id"] for r in cineca_records}
    tally = {"FI": [0, 0], "FI_M": [0, 0], "FI_F": [0, 0], "M": [0, 0], "F": [0, 0]}
    with pysam.VariantFile(str(CINECA_VCF)) as vcf:
        for variant in vcf:
            if variant.chrom == contig and variant.pos == position:
                allele = list(variant.alts).index(alternate) + 1
                for name, call in variant.samples.items():
                    called = [a for a in (call["GT"] or ()) if a is not None]
                    letter = {"NCIT:C20197": "M", "NCIT:C16576": "F"}.get(sex[name])
                    groups = ["FI"] + ([f"FI_{letter}", letter] if letter else [])
                    for group in groups:
                        tally[group][0] += called.count(allele)
                        tally[group][1] += len(called)
                break
    variant_id = f"{contig}-{position}-{reference}-{alternate}"
    document = client.get(
        f"/api/g_variants/{variant_id}", params={"requestedGranularity": "record"}
    ).json()
    (record,) = document["response"]["resultSets"][0]["results"]
    frequencies = {
        item["population"]: item
        for item in record["frequencyInPopulations"][0]["frequencies"]
    }
    assert set(frequencies) == set(tally)
    for population, (allele_count, allele_number) in tally.items():
        item = frequencies[population]
        assert (item["alleleCount"], item["alleleNumber"]) == (
            allele_count,
            allele_number,
        )
        assert item["alleleFrequency"] == pytest.approx(allele_count / allele_number)
    # Anonymous callers are not granted: never case-level data.
    assert "caseLevelData" not in record


def test_pagination_pages_concatenate_to_the_whole(client):
    filters = [{"id": "NCIT:C16576"}]
    whole = [
        item["id"]
        for item in records(
            client, "individuals", {"filters": filters, "pagination": {"limit": 0}}
        )
    ]
    pages = []
    for skip in range(3):  # Beacon's skip counts pages
        page = records(
            client,
            "individuals",
            {"filters": filters, "pagination": {"skip": skip, "limit": 25}},
        )
        assert len(page) == 25
        pages.extend(item["id"] for item in page)
    assert pages == whole[:75]
    assert whole == sorted(whole)
    assert len(whole) > 1_000  # limit 0: every record, not a default page


@pytest.mark.parametrize(
    ("include", "expected"),
    [("HIT", ["cineca-1kg"]), ("ALL", ["cineca-1kg"]), ("MISS", []), ("NONE", [])],
)
def test_include_resultset_responses(client, include, expected):
    body = {
        "query": {"requestedGranularity": "count", "includeResultsetResponses": include}
    }
    document = client.post("/api/individuals", json=body).json()
    assert [item["id"] for item in document["response"]["resultSets"]] == expected


def test_miss_lists_datasets_without_hits(client):
    body = {
        "query": {
            "requestedGranularity": "count",
            "includeResultsetResponses": "MISS",
            "filters": [{"id": "ICD10:Z99"}],
        }
    }
    document = client.post("/api/individuals", json=body).json()
    assert [item["id"] for item in document["response"]["resultSets"]] == ["cineca-1kg"]
    assert document["responseSummary"] == {"exists": False, "numTotalResults": 0}


def test_small_counts_are_reported_as_the_threshold(client, cineca_records):
    bmi = sorted(value for value in map(_bmi, cineca_records) if value is not None)
    cut = (bmi[-3] + bmi[-4]) / 2  # exactly three individuals above
    filters = [{"id": "LOINC:35925-4", "operator": ">", "value": str(cut)}]
    document = client.post(
        "/api/individuals",
        json={"query": {"filters": filters, "requestedGranularity": "count"}},
    ).json()
    (result_set,) = document["response"]["resultSets"]
    assert result_set["resultsCount"] == 5
    assert result_set["info"] == {
        "countAdjustedTo": 5,
        "countPrecision": "fewer-or-equal",
    }
    assert document["responseSummary"]["numTotalResults"] == 5
    # At record granularity (allowed for this dataset) the truth is shown.
    assert len(records(client, "individuals", {"filters": filters})) == 3


@pytest.mark.parametrize(
    ("entry", "granularity"),
    [
        ("g_variants", "count"),
        ("g_variants", "boolean"),
        ("individuals", "boolean"),
        ("individuals", "count"),
        ("datasets", "boolean"),
    ],
)
def test_variant_query_with_filters_singling_out_people_is_suppressed(
    client, cineca_records, entry, granularity
):
    bmi = sorted(value for value in map(_bmi, cineca_records) if value is not None)
    cut = (bmi[-2] + bmi[-3]) / 2
    contig, position, _reference, alternate = _first_variants(1)[0]
    body = {
        "query": {
            "requestParameters": {
                "referenceName": contig,
                "start": [position - 1],
                "alternateBases": alternate,
            },
            "filters": [{"id": "LOINC:35925-4", "operator": ">", "value": str(cut)}],
            "requestedGranularity": granularity,
        }
    }
    document = client.post(f"/api/{entry}", json=body).json()
    assert document["info"]["datasetsSuppressed"] == ["cineca-1kg"]
    assert document["responseSummary"]["exists"] is False
    assert "cineca-1kg" not in str(document.get("response", ""))


def test_g_variants_with_filters_need_a_variant_query(client):
    body = {
        "query": {"filters": [{"id": "NCIT:C16576"}], "requestedGranularity": "count"}
    }
    response = client.post("/api/g_variants", json=body)
    assert response.status_code == 400
    assert "variant query" in response.json()["error"]["errorMessage"]


# -- security: CONTROLLED and per-caller granularity ---------------------------

HOSTILE_REQUESTS = [
    ("POST", "/api/individuals", {"query": {"requestedGranularity": "record"}}),
    (
        "POST",
        "/api/g_variants",
        {
            "query": {
                "requestedGranularity": "record",
                "requestParameters": {
                    "referenceName": "1",
                    "start": [0],
                    "end": [10**9],
                },
            }
        },
    ),
    (
        "POST",
        "/api/datasets/sim-controlled",
        {"query": {"requestedGranularity": "record"}},
    ),
    (
        "POST",
        "/api/datasets/sim-controlled/individuals",
        {"query": {"requestedGranularity": "count"}},
    ),
    (
        "POST",
        "/api/cohorts/sim-controlled/individuals",
        {"query": {"requestedGranularity": "boolean"}},
    ),
    (
        "POST",
        "/api/individuals",
        {
            "query": {
                "requestedGranularity": "count",
                "filters": [{"id": "ICD10:I25.1"}],
            }
        },
    ),
    ("GET", "/api/datasets/sim-controlled/filtering_terms", None),
    ("GET", "/api/info", None),
    ("GET", "/api/configuration", None),
]


@pytest.mark.parametrize(("method", "path", "body"), HOSTILE_REQUESTS)
def test_controlled_dataset_tells_anonymous_callers_nothing(
    client, beacon_node, method, path, body
):
    response = client.request(method, path, json=body)
    assert response.status_code == 200, response.text
    assert "sim-controlled" not in response.text
    if path.endswith("filtering_terms"):
        assert response.json()["response"]["filteringTerms"] == []
    elif "/datasets/sim-controlled" in path or "/cohorts/sim-controlled" in path:
        assert response.json()["responseSummary"]["exists"] is False


def _engine_response(
    beacon_node, caller: Caller, entry: str, body: dict, **scope
) -> dict:
    published = PublishedDatasets(beacon_node)
    request = parse_post(body)
    found = answer(published, request, PathScope(entry, **scope), caller)
    return result_response(found, caller=caller, meta=dict(META))


def test_granted_caller_gets_records_and_case_level_data(beacon_node):
    caller = Caller(
        subject="researcher", granted_datasets=frozenset({"sim-controlled"})
    )
    simulation = beacon_node.simulations["sim-controlled"]
    contig, position, reference, alternate = simulation.causal_variants[0]
    body = {
        "query": {
            "requestedGranularity": "record",
            "requestParameters": {
                "referenceName": contig,
                "start": [position - 1],
                "referenceBases": reference,
                "alternateBases": alternate,
            },
        }
    }
    document = _engine_response(beacon_node, caller, "g_variants", body)
    validate(document, "beaconResultsetsResponse")
    sets = {item["id"]: item for item in document["response"]["resultSets"]}
    (record,) = sets["sim-controlled"]["results"]
    validate(record, "genomicVariations")
    genotypes = pysam.VariantFile(str(simulation.vcf_path))
    (variant,) = [
        v for v in genotypes.fetch(contig, position - 1, position) if v.pos == position
    ]
    carriers = {
        name: sum(1 for allele in call["GT"] if allele == 1)
        for name, call in variant.samples.items()
        if 1 in call["GT"]
    }
    cases = {
        case["individualId"]: case["zygosity"]["label"]
        for case in record["caseLevelData"]
    }
    assert cases == {
        name: "homozygous" if copies == 2 else "heterozygous"
        for name, copies in carriers.items()
    }
    # The same caller gets no case-level data from a dataset it is not granted.
    for record in sets.get("cineca-1kg", {"results": []})["results"]:
        assert "caseLevelData" not in record


def test_registered_caller_gets_counts_from_public_default_datasets(beacon_node):
    caller = Caller(subject="someone", registered=True)
    body = {"query": {"requestedGranularity": "record"}}
    document = _engine_response(beacon_node, caller, "individuals", body)
    # sim-public gives registered callers counts only; cineca-1kg records.
    assert document["meta"]["returnedGranularity"] == "record"
    assert document["info"]["datasetsAtLowerGranularity"] == ["sim-public"]
    document = _engine_response(
        beacon_node, caller, "individuals", {"query": {"requestedGranularity": "count"}}
    )
    ids = [item["id"] for item in document["response"]["resultSets"]]
    assert ids == ["cineca-1kg", "sim-public"]
    assert "sim-controlled" not in str(document)


def test_one_person_paths_need_record_granularity(beacon_node):
    # sim-public gives anonymous callers booleans: whether one named person
    # carries a variant would still be that person's genotype.
    simulation = beacon_node.simulations["sim-public"]
    body = {"query": {"requestedGranularity": "boolean"}}
    first = f"{simulation.dataset_id}"
    document = _engine_response(
        beacon_node,
        ANONYMOUS,
        "g_variants",
        body,
        parent_type="individuals",
        parent_id=_first_individual(beacon_node, first),
    )
    assert document["responseSummary"] == {"exists": False}


def _first_individual(node, dataset_id: str) -> str:
    from sqlalchemy import select

    from genomenode.store.models import Individual

    with node.session() as session:
        return session.scalars(
            select(Individual.id).where(Individual.dataset_id == dataset_id).limit(1)
        ).one()


# -- every query kind, end to end -----------------------------------------------


def _count_for(beacon_node, caller, body) -> dict[str, int]:
    document = _engine_response(
        beacon_node,
        caller,
        "g_variants",
        {
            "query": {
                **body,
                "requestedGranularity": "count",
                "includeResultsetResponses": "ALL",
            }
        },
    )
    return {
        item["id"]: item["resultsCount"] for item in document["response"]["resultSets"]
    }


def _pysam_alleles(vcf_path, contig, start, end, keep=lambda record, alt: True) -> int:
    """ALT alleles of records whose REF overlaps [start, end) (0-based), by htslib."""
    with pysam.VariantFile(str(vcf_path)) as vcf:
        return sum(
            1
            for record in vcf.fetch(contig, start, end)
            for alternate in record.alts or ()
            if keep(record, alternate)
        )


REGISTERED = Caller(subject="r", registered=True)


def test_gene_query_equals_the_gene_interval(beacon_node):
    simulation = beacon_node.simulations["sim-public"]
    lines = [
        line.split("\t")
        for line in (simulation.genes_path.read_text().splitlines())
        if line and not line.startswith(("#", "gene_id"))
    ]
    gene_id, symbol, contig, start, end = lines[len(lines) // 2][:5]
    expected = _pysam_alleles(simulation.vcf_path, contig, int(start), int(end))
    assert expected > 0
    for name in (gene_id, symbol, symbol.lower()):
        counts = _count_for(
            beacon_node, REGISTERED, {"requestParameters": {"geneId": name}}
        )
        assert counts["sim-public"] == expected
        assert counts["cineca-1kg"] == 0  # no gene table: no match, not an error


def test_bracket_query_equals_a_filter_on_pysam(beacon_node):
    simulation = beacon_node.simulations["sim-public"]
    with pysam.VariantFile(str(simulation.vcf_path)) as vcf:
        positions = [record.pos for record in vcf.fetch()]
    low, high = positions[10] - 1, positions[40] - 1  # 0-based starts
    expected = _pysam_alleles(
        simulation.vcf_path,
        "1",
        low,
        high + 1,
        keep=lambda record, alt: low <= record.pos - 1 <= high,
    )
    body = {
        "requestParameters": {
            "referenceName": "1",
            "start": [low, high],
            "end": [low + 1, high + 1],
        }
    }
    assert _count_for(beacon_node, REGISTERED, body)["sim-public"] == expected


def test_hgvs_and_sequence_queries_agree(client):
    contig, position, reference, alternate = next(
        variant
        for variant in _first_variants(200)
        if len(variant[2]) == len(variant[3]) == 1
    )
    change = f"{reference}>{alternate}"
    by_sequence = count(
        client,
        "g_variants",
        {
            "requestParameters": {
                "referenceName": contig,
                "start": [position - 1],
                "referenceBases": reference,
                "alternateBases": alternate,
            }
        },
    )
    # The dataset is GRCh37: chromosome 1 is NC_000001.10.
    by_hgvs = count(
        client,
        "g_variants",
        {
            "requestParameters": {
                "genomicAlleleShortForm": f"NC_000001.10:g.{position}{change}"
            }
        },
    )
    assert by_sequence == by_hgvs == 1
    other_assembly = count(
        client,
        "g_variants",
        {
            "requestParameters": {
                "genomicAlleleShortForm": f"NC_000001.11:g.{position}{change}"
            }
        },
    )
    assert other_assembly == 0
    # GET with the official endpoints.json name (allele) answers the same.
    response = client.get(
        "/api/g_variants",
        params={
            "allele": f"NC_000001.10:g.{position}{change}",
            "requestedGranularity": "count",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["responseSummary"]["numTotalResults"] == 1


@pytest.mark.parametrize(
    "parameters",
    [
        {"g_variant": {"referenceName": "1", "start": [10000], "end": [60000]}},
        {"referenceName": "1", "start": [10000], "end": [60000]},
        {"referenceName": "chr1", "start": "10000", "end": "60000"},
        {"referenceName": "1", "start": ["10000"], "end": "60000"},
    ],
)
def test_request_shapes_peers_send(client, parameters):
    expected = count(
        client,
        "g_variants",
        {"requestParameters": {"referenceName": "1", "start": [10000], "end": [60000]}},
    )
    if isinstance(parameters.get("start"), str) and "," in parameters["start"]:
        # A bracket query: variants starting in [10000, 60000], ending in
        # [10001, 60001]; on this slice of SNVs and short indels it is the same set
        # minus variants overlapping only partly.
        assert (
            count(client, "g_variants", {"requestParameters": parameters}) <= expected
        )
        return
    assert count(client, "g_variants", {"requestParameters": parameters}) == expected


def test_assembly_id_leaves_out_other_assemblies(client):
    query = {
        "requestParameters": {"referenceName": "1", "start": [10000], "end": [60000]}
    }
    both = count(client, "g_variants", query)
    query["requestParameters"]["assemblyId"] = "hg19"
    assert count(client, "g_variants", query) == both > 0
    query["requestParameters"]["assemblyId"] = "GRCh38"
    assert count(client, "g_variants", query) in (0, None)


def test_allele_counts_at_once_equal_one_at_a_time(beacon_node):
    """The rare-allele policy reads (AC, AN) of every matched allele in one read;
    its slow twin reads them one by one."""
    from genomenode.beacon.engine import _allele_count, _allele_counts
    from genomenode.store.published import PublishedDatasets

    handle = PublishedDatasets(beacon_node).datasets()[0]
    rows = handle.facts.num_variants
    keys = [
        (row, allele)
        for row in range(0, rows, max(1, rows // 300))
        for allele in (1, 0)
    ]
    counts, totals = _allele_counts(handle, keys)
    assert [(int(c), int(t)) for c, t in zip(counts, totals, strict=True)] == [
        _allele_count(handle, key) for key in keys
    ]

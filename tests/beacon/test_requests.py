"""Parsing Beacon v2 GET parameters and POST bodies into one BeaconRequest."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from genomenode.beacon.query import BeaconRequest, Filter, RequestedSchema, VariantQuery
from genomenode.beacon.requests import parse_get, parse_post
from genomenode.beacon.schemas import validate
from genomenode.errors import BeaconRequestError, InputError

META = {"apiVersion": "v2.0.0"}


def body(query: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"meta": dict(META), **top}
    if query is not None:
        document["query"] = query
    return document


def valid_post(document: dict[str, Any]) -> BeaconRequest:
    """Check the body against the official schema first, then parse it."""
    validate(document, "beaconRequestBody")
    return parse_post(document)


def g_variant(**params: Any) -> dict[str, Any]:
    return body({"requestParameters": {"g_variant": params}})


def flat(**params: Any) -> dict[str, Any]:
    return body({"requestParameters": params})


def rejects(field: str, call: Any, *args: Any) -> BeaconRequestError:
    with pytest.raises(BeaconRequestError) as caught:
        call(*args)
    error = caught.value
    assert error.error_code == 400
    assert error.status == 400
    assert isinstance(error, InputError)
    assert field in str(error)
    assert error.field is not None and field in error.field
    return error


# ------------------------------------------------------------------ defaults, meta


def test_minimal_body_gives_schema_defaults() -> None:
    request = valid_post(body())
    assert request == BeaconRequest(api_version="v2.0.0")
    assert request.granularity == "boolean"
    assert request.include_resultset_responses == "HIT"
    assert (request.skip, request.limit, request.test_mode) == (0, 10, False)
    assert request.filters == () and request.variant is None


def test_empty_get_gives_schema_defaults() -> None:
    assert parse_get({}) == BeaconRequest()


def test_request_is_immutable() -> None:
    request = parse_get({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.limit = 5  # type: ignore[misc]


def test_meta_requested_schemas_and_dollar_schema() -> None:
    document = {
        "$schema": "beaconRequestBody.json",
        "meta": {
            "$schema": "beaconRequestMeta.json",
            "apiVersion": "v2.1.1",
            "requestedSchemas": [
                {"entityType": "genomicVariation", "schema": "beacon-g_variant-v2"},
                {"schema": "other"},
            ],
        },
    }
    request = valid_post(document)
    assert request.api_version == "v2.1.1"
    assert request.requested_schemas == (
        RequestedSchema("genomicVariation", "beacon-g_variant-v2"),
        RequestedSchema(None, "other"),
    )


def test_body_without_meta_is_accepted() -> None:
    assert parse_post({"query": {"testMode": True}}).test_mode is True


def test_full_query_settings_inside_query() -> None:
    request = valid_post(
        body(
            {
                "requestedGranularity": "record",
                "includeResultsetResponses": "ALL",
                "pagination": {"skip": 2, "limit": 0, "currentPage": "abc"},
                "testMode": True,
            }
        )
    )
    assert request.granularity == "record"
    assert request.include_resultset_responses == "ALL"
    assert (request.skip, request.limit, request.test_mode) == (2, 0, True)


def test_settings_at_top_level_equal_settings_in_query() -> None:
    settings = {
        "requestedGranularity": "count",
        "includeResultsetResponses": "MISS",
        "pagination": {"skip": 1, "limit": 5},
        "testMode": True,
    }
    inside = valid_post(body(dict(settings)))
    outside = parse_post(body(None, **settings))
    assert inside == outside
    assert outside.granularity == "count" and outside.limit == 5


def test_same_setting_in_both_places_must_agree() -> None:
    both = body({"requestedGranularity": "count"}, requestedGranularity="count")
    assert parse_post(both).granularity == "count"
    clash = body({"requestedGranularity": "count"}, requestedGranularity="record")
    rejects("requestedGranularity", parse_post, clash)


def test_null_optional_values_mean_absent() -> None:
    request = parse_post(
        body({"includeResultsetResponses": None, "filters": None}, testMode=None)
    )
    assert request == BeaconRequest(api_version="v2.0.0")


def test_lenient_case_and_strings() -> None:
    request = parse_post(
        body(
            {
                "requestedGranularity": "COUNT",
                "includeResultsetResponses": "all",
                "pagination": {"skip": "3", "limit": "20"},
                "testMode": "true",
            }
        )
    )
    assert request.granularity == "count"
    assert request.include_resultset_responses == "ALL"
    assert (request.skip, request.limit, request.test_mode) == (3, 20, True)


def test_get_settings() -> None:
    request = parse_get(
        {
            "requestedGranularity": "record",
            "includeResultsetResponses": "NONE",
            "skip": "4",
            "limit": ["7"],
            "testMode": "false",
            "apiVersion": "v2.0.0",
            "requestedSchema": "a,b",
        }
    )
    assert request.granularity == "record"
    assert request.include_resultset_responses == "NONE"
    assert (request.skip, request.limit, request.test_mode) == (4, 7, False)
    assert request.requested_schemas == (
        RequestedSchema(schema="a"),
        RequestedSchema(schema="b"),
    )


# ---------------------------------------------------------------------- variants


SEQUENCE = {
    "referenceName": "22",
    "start": [16050074],
    "referenceBases": "A",
    "alternateBases": "G",
    "assemblyId": "GRCh37",
}


def test_sequence_query_nested() -> None:
    variant = valid_post(g_variant(**SEQUENCE)).variant
    assert variant == VariantQuery(
        kind="sequence",
        reference_name="22",
        reference_name_original="22",
        assembly_id="GRCh37",
        start=(16050074,),
        reference_bases="A",
        alternate_bases="G",
    )


def test_flat_and_nested_request_parameters_are_the_same() -> None:
    assert parse_post(flat(**SEQUENCE)) == valid_post(g_variant(**SEQUENCE))


def test_flat_and_nested_may_be_mixed() -> None:
    document = body(
        {
            "requestParameters": {
                "$schema": "x",
                "referenceName": "22",
                "g_variant": {"start": [16050074], "alternateBases": "G"},
            }
        }
    )
    variant = parse_post(document).variant
    assert variant is not None and variant.kind == "sequence"


def test_sequence_reference_bases_are_optional() -> None:
    variant = valid_post(
        g_variant(referenceName="1", start=[5], alternateBases="T")
    ).variant
    assert variant is not None
    assert variant.kind == "sequence" and variant.reference_bases is None


def test_empty_bases_and_lowercase_bases() -> None:
    variant = parse_post(
        g_variant(referenceName="1", start=[5], referenceBases="acg", alternateBases="")
    ).variant
    assert variant is not None
    assert (variant.reference_bases, variant.alternate_bases) == ("ACG", "")


def test_chr_prefix_is_stripped_and_kept() -> None:
    variant = parse_post(
        g_variant(referenceName="chrX", start=[5], alternateBases="T")
    ).variant
    assert variant is not None
    assert variant.reference_name == "X"
    assert variant.reference_name_original == "chrX"
    refseq = parse_post(
        g_variant(referenceName="refseq:NC_000009.12", start=[5], alternateBases="T")
    ).variant
    assert refseq is not None and refseq.reference_name == "refseq:NC_000009.12"


def test_range_query() -> None:
    variant = valid_post(
        g_variant(
            referenceName="9",
            start=[21000000],
            end=[21975098],
            variantType="DEL",
            variantMinLength=1000,
            variantMaxLength=5000,
            mateName="13",
        )
    ).variant
    assert variant is not None
    assert variant.kind == "range"
    assert (variant.start, variant.end) == ((21000000,), (21975098,))
    assert variant.variant_type == "DEL"
    assert (variant.variant_min_length, variant.variant_max_length) == (1000, 5000)
    assert variant.mate_name == "13"


def test_range_query_with_alternate_bases() -> None:
    variant = valid_post(
        g_variant(referenceName="1", start=[10], end=[20], alternateBases="A")
    ).variant
    assert variant is not None and variant.kind == "range"


def test_bracket_query() -> None:
    variant = valid_post(
        g_variant(
            referenceName="17",
            start=[7572826, 7573000],
            end=[7579005, 7579100],
            variantType="EFO:0030067",
        )
    ).variant
    assert variant is not None
    assert variant.kind == "bracket"
    assert variant.start == (7572826, 7573000)
    assert variant.end == (7579005, 7579100)


def test_gene_query() -> None:
    variant = valid_post(
        g_variant(geneId="BRAF", aminoacidChange="V600E", variantType="SNP")
    ).variant
    assert variant is not None
    assert variant.kind == "gene"
    assert (variant.gene_id, variant.aminoacid_change) == ("BRAF", "V600E")


def test_hgvs_query() -> None:
    variant = valid_post(g_variant(genomicAlleleShortForm="NM_004006.2:c.4375C>T"))
    assert variant.variant is not None and variant.variant.kind == "hgvs"


def test_empty_request_parameters_mean_no_variant() -> None:
    assert valid_post(g_variant()).variant is None
    assert parse_post(body({"requestParameters": {}})).variant is None


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (100, 200, ((100,), (200,))),
        ("100", "200", ((100,), (200,))),
        ([100], [200], ((100,), (200,))),
        (["100"], ["200"], ((100,), (200,))),
        ([100, 150], [200, 250], ((100, 150), (200, 250))),
        (["100", "150"], ["200", 250], ((100, 150), (200, 250))),
        ("100,150", "200,250", ((100, 150), (200, 250))),
        (" 100 ", [" 200"], ((100,), (200,))),
    ],
)
def test_every_start_end_spelling(start: Any, end: Any, expected: Any) -> None:
    variant = parse_post(g_variant(referenceName="1", start=start, end=end)).variant
    assert variant is not None
    assert (variant.start, variant.end) == expected


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("100", "200"),
        (["100"], ["200"]),
        ("100,150", "200,250"),
        (["100", "150"], ["200", "250"]),
    ],
)
def test_get_start_end_spellings(start: Any, end: Any) -> None:
    request = parse_get({"referenceName": "1", "start": start, "end": end})
    assert request.variant is not None
    assert request.variant.start[0] == 100
    assert request.variant.end[0] == 200


# ------------------------------------------------------------------------ filters


def test_ontology_filter_defaults_and_options() -> None:
    request = valid_post(
        body(
            {
                "filters": [
                    {"id": "HP:0001627"},
                    {
                        "id": "NCIT:C20197",
                        "includeDescendantTerms": False,
                        "similarity": "high",
                        "scope": "individuals",
                    },
                ]
            }
        )
    )
    assert request.filters == (
        Filter(id="HP:0001627", kind="ontology"),
        Filter(
            id="NCIT:C20197",
            kind="ontology",
            scope="individuals",
            include_descendant_terms=False,
            similarity="high",
        ),
    )


@pytest.mark.parametrize("operator", ["=", "<", ">", "!", ">=", "<="])
def test_alphanumeric_filter_operators(operator: str) -> None:
    item = {"id": "LOINC:35925-4", "operator": operator, "value": "30"}
    (parsed,) = valid_post(body({"filters": [{**item, "scope": "x"}]})).filters
    assert parsed == Filter(
        id="LOINC:35925-4",
        kind="alphanumeric",
        scope="x",
        operator=operator,  # type: ignore[arg-type]
        value="30",
    )
    assert parsed.has_wildcard is False


def test_alphanumeric_wildcards() -> None:
    filters = valid_post(
        body(
            {
                "filters": [
                    {"id": "name", "operator": "=", "value": "Smi%"},
                    {"id": "name", "operator": "!", "value": "%son"},
                    {"id": "fraction", "operator": ">", "value": "30%"},
                ]
            }
        )
    ).filters
    assert [f.has_wildcard for f in filters] == [True, True, False]


def test_alphanumeric_operator_defaults_and_numeric_value() -> None:
    (parsed,) = valid_post(body({"filters": [{"id": "age", "value": "P70Y"}]})).filters
    assert (parsed.kind, parsed.operator, parsed.value) == ("alphanumeric", "=", "P70Y")
    (number,) = parse_post(
        body({"filters": [{"id": "age", "operator": ">", "value": 30}]})
    ).filters
    assert number.value == "30"


def test_custom_filters() -> None:
    filters = valid_post(
        body(
            {
                "filters": [
                    {"id": "demographic.ethnicity:asian", "scope": "individuals"},
                    {"id": "HP_0001252"},
                ]
            }
        )
    ).filters
    assert filters == (
        Filter(id="demographic.ethnicity:asian", kind="custom", scope="individuals"),
        Filter(id="HP_0001252", kind="custom"),
    )


def test_plain_string_filters() -> None:
    expected = (
        Filter(id="HP:0001627", kind="ontology"),
        Filter(id="NCIT:C3222", kind="ontology"),
        Filter(id="female", kind="custom"),
    )
    assert parse_get({"filters": "HP:0001627, NCIT:C3222,female"}).filters == expected
    assert parse_get({"filters": ["HP:0001627,NCIT:C3222", "female"]}).filters == (
        expected
    )
    strings = ["HP:0001627", "NCIT:C3222", "female"]
    assert parse_post(body({"filters": strings})).filters == expected


# --------------------------------------------------------------- GET == POST


EQUIVALENT = [
    (
        {
            "referenceName": "chr22",
            "start": "16050074",
            "referenceBases": "A",
            "alternateBases": "G",
            "assemblyId": "GRCh37",
            "filters": "NCIT:C20197,demographic.ethnicity:asian",
            "requestedGranularity": "count",
            "skip": "1",
            "limit": "5",
            "testMode": "true",
            "includeResultsetResponses": "ALL",
            "apiVersion": "v2.0.0",
            "requestedSchema": "beacon-g_variant-v2",
        },
        {
            "meta": {
                "apiVersion": "v2.0.0",
                "requestedSchemas": [{"schema": "beacon-g_variant-v2"}],
            },
            "query": {
                "requestParameters": {
                    "g_variant": {
                        "referenceName": "chr22",
                        "start": [16050074],
                        "referenceBases": "A",
                        "alternateBases": "G",
                        "assemblyId": "GRCh37",
                    }
                },
                "filters": [
                    {"id": "NCIT:C20197"},
                    {"id": "demographic.ethnicity:asian"},
                ],
                "requestedGranularity": "count",
                "pagination": {"skip": 1, "limit": 5},
                "testMode": True,
                "includeResultsetResponses": "ALL",
            },
        },
    ),
    (
        {"referenceName": "9", "start": "100,150", "end": "200,250"},
        {
            "meta": {},
            "query": {
                "requestParameters": {
                    "g_variant": {
                        "referenceName": "9",
                        "start": [100, 150],
                        "end": [200, 250],
                    }
                }
            },
        },
    ),
    (
        {"geneId": "SCN5A", "variantType": "DEL", "variantMinLength": "10"},
        {
            "meta": {},
            "query": {
                "requestParameters": {
                    "g_variant": {
                        "geneId": "SCN5A",
                        "variantType": "DEL",
                        "variantMinLength": 10,
                    }
                }
            },
        },
    ),
]


@pytest.mark.parametrize(("get", "post"), EQUIVALENT)
def test_get_and_post_give_the_same_request(get: Any, post: Any) -> None:
    if post["meta"]:
        validate(post, "beaconRequestBody")
    assert parse_get(get) == parse_post(post)


# ------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (body(None, extra=1), "extra"),
        (body({"where": 1}), "query.where"),
        ({"meta": {"apiVersion": "v2", "beaconId": "x"}}, "meta.beaconId"),
        (body({"pagination": {"page": 1}}), "query.pagination.page"),
        (flat(chromosome="1"), "query.requestParameters.chromosome"),
        (g_variant(position=5), "query.requestParameters.g_variant.position"),
        (body({"requestParameters": {"individuals": {}}}), "individuals"),
        (
            body({"filters": [{"id": "HP:1", "descendants": True}]}),
            "query.filters[0].descendants",
        ),
        (
            {"meta": {"apiVersion": "v2", "requestedSchemas": [{"x": 1}]}},
            "meta.requestedSchemas[0].x",
        ),
    ],
)
def test_unknown_parameters_are_rejected(document: Any, field: str) -> None:
    error = rejects(field, parse_post, document)
    assert "unknown" in str(error)


def test_unknown_get_parameter_is_rejected() -> None:
    rejects("chromosome", parse_get, {"chromosome": "1"})


@pytest.mark.parametrize("operator", ["==", "~", "like", "", 5])
def test_bad_operator(operator: Any) -> None:
    document = body({"filters": [{"id": "age", "operator": operator, "value": "3"}]})
    rejects("query.filters[0].operator", parse_post, document)


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"operator": ">", "value": "3"}, "query.filters[0].id"),
        ({"id": ""}, "query.filters[0].id"),
        ({"id": "age", "operator": ">"}, "query.filters[0].value"),
        ({"id": "HP:1", "includeDescendantTerms": "yes"}, "includeDescendantTerms"),
        ({"id": "HP:1", "similarity": "fuzzy"}, "query.filters[0].similarity"),
        ({"id": "HP:1", "similarity": "low", "value": "x"}, "similarity"),
        ({"id": 7}, "query.filters[0].id"),
        ({"id": "age", "value": True}, "query.filters[0].value"),
        (5, "query.filters[0]"),
    ],
)
def test_bad_filters(item: Any, field: str) -> None:
    rejects(field, parse_post, body({"filters": [item]}))


def test_filters_must_be_a_list() -> None:
    rejects("query.filters", parse_post, body({"filters": 5}))


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (body({"pagination": {"limit": -1}}), "query.pagination.limit"),
        (body({"pagination": {"skip": -3}}), "query.pagination.skip"),
        (body(None, pagination={"limit": "-1"}), "pagination.limit"),
        (body({"pagination": {"limit": 1.5}}), "query.pagination.limit"),
        (body({"pagination": {"limit": True}}), "query.pagination.limit"),
        (body({"pagination": [1]}), "query.pagination"),
        (body({"requestedGranularity": "all"}), "query.requestedGranularity"),
        (body({"includeResultsetResponses": "SOME"}), "includeResultsetResponses"),
        (body({"testMode": "maybe"}), "query.testMode"),
        (body({"testMode": 1}), "query.testMode"),
        ({"meta": {"apiVersion": 2}}, "meta.apiVersion"),
        ({"meta": []}, "meta"),
        ({"meta": META, "query": "x"}, "query"),
        (body({"requestParameters": [SEQUENCE]}), "query.requestParameters"),
        (body({"requestParameters": {"g_variant": "x"}}), "g_variant"),
    ],
)
def test_bad_settings_and_garbage_types(document: Any, field: str) -> None:
    rejects(field, parse_post, document)


@pytest.mark.parametrize("document", [[], "x", None, 5])
def test_body_must_be_an_object(document: Any) -> None:
    rejects("body", parse_post, document)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "-1"}, "limit"),
        ({"skip": "abc"}, "skip"),
        ({"limit": ["1", "2"]}, "limit"),
        ({"testMode": "yes"}, "testMode"),
        ({"requestedGranularity": "huge"}, "requestedGranularity"),
        ({"referenceName": "1", "start": "5", "alternateBases": "XZ"}, "alternate"),
        ({"filters": 5}, "filters"),
    ],
)
def test_bad_get_values(params: Any, field: str) -> None:
    rejects(field, parse_get, params)


V = "query.requestParameters.g_variant."


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"referenceName": "1", "start": [200], "end": [100]}, V + "end"),
        ({"referenceName": "1", "start": [200], "end": [200]}, V + "end"),
        ({"referenceName": "1", "start": [3, 2], "end": [5, 6]}, V + "start"),
        ({"referenceName": "1", "start": [1, 2], "end": [6, 5]}, V + "end"),
        ({"referenceName": "1", "start": [10, 20], "end": [5, 8]}, V + "end"),
        ({"referenceName": "1", "start": [1, 2], "end": [5]}, V + "end"),
        ({"referenceName": "1", "start": [1], "end": [5, 6]}, V + "end"),
        ({"referenceName": "1", "start": [1, 2]}, V + "end"),
        ({"start": [100], "alternateBases": "A"}, V + "referenceName"),
        ({"start": [100], "end": [200]}, V + "referenceName"),
        ({"referenceName": "1", "start": [100]}, V + "alternateBases"),
        ({"referenceName": "1", "end": [100]}, V + "start"),
        ({"referenceName": "1", "assemblyId": "GRCh38"}, V + "start"),
        ({"referenceName": "", "start": [1], "alternateBases": "A"}, "referenceName"),
        ({"referenceName": "1", "start": [1], "alternateBases": "XYZ"}, "alternate"),
        (
            {
                "referenceName": "1",
                "start": [1],
                "alternateBases": "A",
                "referenceBases": "A T",
            },
            "referenceBases",
        ),
        ({"referenceName": "1", "start": [-1], "alternateBases": "A"}, V + "start"),
        ({"referenceName": "1", "start": [0], "end": [0]}, V + "end"),
        ({"referenceName": "1", "start": [1, 2, 3], "end": [4]}, V + "start"),
        ({"referenceName": "1", "start": [], "end": [4]}, V + "start"),
        ({"referenceName": "1", "start": "ten", "end": [4]}, V + "start"),
        ({"referenceName": "1", "start": [1.5], "end": [4]}, V + "start"),
        ({"referenceName": "1", "start": [True], "end": [4]}, V + "start"),
        ({"referenceName": "1", "start": {"a": 1}, "end": [4]}, V + "start"),
        ({"referenceName": 22, "start": [1], "alternateBases": "A"}, "referenceName"),
        ({"referenceName": "1", "start": [1], "alternateBases": ["A"]}, "alternate"),
        ({"referenceName": "1", "start": [2**63], "alternateBases": "A"}, "start"),
        ({"geneId": "BRAF", "start": [1]}, V + "geneId"),
        ({"aminoacidChange": "V600E"}, V + "aminoacidChange"),
        ({"geneId": "X", "variantMinLength": 9, "variantMaxLength": 3}, "MinLength"),
        ({"geneId": "X", "variantMaxLength": 0}, V + "variantMaxLength"),
        ({"geneId": "X", "variantMinLength": -1}, V + "variantMinLength"),
    ],
)
def test_bad_variant_queries(params: Any, field: str) -> None:
    rejects(field, parse_post, g_variant(**params))


def test_parameter_given_flat_and_nested_is_rejected() -> None:
    document = body({"requestParameters": {"start": [1], "g_variant": {"start": [1]}}})
    rejects("start", parse_post, document)


def test_error_message_names_parameter_for_api() -> None:
    error = rejects("limit", parse_get, {"limit": "-5"})
    assert str(error).startswith("field 'limit'")
    assert "at least 0" in str(error)


@pytest.mark.parametrize("name", ["limit", "skip", "start", "end"])
@pytest.mark.parametrize("digits", [20, 5000])
def test_huge_numbers_are_refused_by_name(name, digits):
    params = {"referenceName": "1", "start": "1", "end": "2", name: "9" * digits}
    with pytest.raises(InputError, match="too large") as caught:
        parse_get(params)
    assert caught.value.field == name


def test_get_names_of_the_official_endpoints_json():
    """``geneid`` and ``allele`` (Beacon v2 ``endpoints.json``) are the request
    schema's ``geneId`` and ``genomicAlleleShortForm``."""
    gene = parse_get({"geneid": "BRAF"}).variant
    assert gene is not None and (gene.kind, gene.gene_id) == ("gene", "BRAF")
    assert parse_get({"geneid": "BRAF"}) == parse_get({"geneId": "BRAF"})
    hgvs = parse_get({"allele": "NC_000001.10:g.100A>G"})
    assert hgvs == parse_get({"genomicAlleleShortForm": "NC_000001.10:g.100A>G"})
    assert hgvs.variant is not None and hgvs.variant.kind == "hgvs"
    # Both names at once must agree.
    assert parse_get({"geneid": "BRAF", "geneId": "BRAF"}).variant == gene
    with pytest.raises(BeaconRequestError) as caught:
        parse_get({"geneid": "BRAF", "geneId": "KRAS"})
    assert caught.value.field == "geneid"
    # An error names the parameter as sent.
    with pytest.raises(BeaconRequestError) as caught:
        parse_get({"geneid": "BRAF", "start": "5"})
    assert "geneid" in str(caught.value) or caught.value.field == "geneid"


def test_get_parameters_cover_the_official_endpoints_json():
    """Every query parameter of the default model's ``endpoints.json`` files."""
    from genomenode.beacon.requests import GET_PARAMETERS

    official = {
        "allele",
        "alternateBases",
        "aminoacidChange",
        "assemblyId",
        "end",
        "filters",
        "geneid",
        "includeResultsetResponses",
        "limit",
        "referenceBases",
        "referenceName",
        "requestedSchema",
        "skip",
        "start",
        "variantMaxLength",
        "variantMinLength",
    }
    assert official <= GET_PARAMETERS

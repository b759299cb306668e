"""Offline validation against the vendored official Beacon v2.1.1 schemas."""

from __future__ import annotations

import copy
import json
import socket
import urllib.request
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from genomenode.beacon import schemas
from genomenode.beacon.schemas import (
    BASE_URI,
    SCHEMA_PATHS,
    BeaconSchemaError,
    BeaconValidationError,
    validate,
    validator,
)
from genomenode.errors import GenomenodeError

SCHEMA_ENTITY = {"entityType": "individual", "schema": "beacon-individual-v2.0.0"}

META: dict[str, Any] = {
    "beaconId": "org.example.genomenode",
    "apiVersion": "v2.0.0",
    "returnedGranularity": "boolean",
    "returnedSchemas": [SCHEMA_ENTITY],
    "receivedRequestSummary": {
        "apiVersion": "v2.0.0",
        "requestedSchemas": [SCHEMA_ENTITY],
        "pagination": {"skip": 0, "limit": 10},
        "requestedGranularity": "boolean",
    },
}

INFO_META: dict[str, Any] = {
    "beaconId": "org.example.genomenode",
    "apiVersion": "v2.0.0",
    "returnedSchemas": [],
}

BOOLEAN_RESPONSE: dict[str, Any] = {
    "meta": META,
    "responseSummary": {"exists": True},
}

COUNT_RESPONSE: dict[str, Any] = {
    "meta": {**META, "returnedGranularity": "count"},
    "responseSummary": {"exists": True, "numTotalResults": 3},
}

RESULTSETS_RESPONSE: dict[str, Any] = {
    "meta": {**META, "returnedGranularity": "record"},
    "responseSummary": {"exists": True, "numTotalResults": 1},
    "response": {
        "resultSets": [
            {
                "id": "dataset-1",
                "setType": "dataset",
                "exists": True,
                "resultsCount": 1,
                "results": [{"id": "ind-1", "sex": {"id": "NCIT:C20197"}}],
            }
        ]
    },
}

COLLECTIONS_RESPONSE: dict[str, Any] = {
    "meta": {**META, "returnedGranularity": "record"},
    "responseSummary": {"exists": True, "numTotalResults": 1},
    "response": {"collections": [{"id": "dataset-1", "name": "Synthetic cohort"}]},
}

ERROR_RESPONSE: dict[str, Any] = {
    "meta": META,
    "error": {"errorCode": 400, "errorMessage": "`start` is missing"},
}

SERVICE_INFO: dict[str, Any] = {
    "id": "org.example.genomenode",
    "name": "genomenode",
    "type": {"group": "org.ga4gh", "artifact": "beacon", "version": "v2.0.0"},
    "organization": {"name": "Example", "url": "https://example.org"},
    "version": "0.1.0",
}

BEACON_INFO: dict[str, Any] = {
    "id": "org.example.genomenode",
    "name": "genomenode",
    "apiVersion": "v2.0.0",
    "environment": "dev",
    "organization": {"id": "example", "name": "Example"},
}

ENTRY_TYPES: dict[str, Any] = {
    "entryTypes": {
        "individual": {
            "id": "individual",
            "name": "Individual",
            "ontologyTermForThisType": {"id": "NCIT:C25190", "label": "Person"},
            "partOfSpecification": "Beacon v2.0.0",
            "defaultSchema": {
                "id": "ga4gh-beacon-individual-v2.0.0",
                "name": "Default schema for an individual",
                "referenceToSchemaDefinition": "./individuals/defaultSchema.json",
                "schemaVersion": "v2.0.0",
            },
        }
    }
}

BEACON_MAP: dict[str, Any] = {
    "$schema": "../../configuration/beaconMapSchema.json",
    "endpointSets": {
        "individual": {
            "entryType": "individual",
            "rootUrl": "https://beacon.example.org/api/individuals",
        }
    },
}

REQUEST_BODY: dict[str, Any] = {
    "meta": {"apiVersion": "v2.0.0"},
    "query": {
        # The framework only fixes {name: object}; the model nests under g_variant.
        "requestParameters": {
            "g_variant": {"referenceName": "22", "start": [16050074]}
        },
        "filters": [{"id": "NCIT:C20197"}],
        "includeResultsetResponses": "HIT",
        "pagination": {"skip": 0, "limit": 10},
        "requestedGranularity": "count",
        "testMode": False,
    },
}

INDIVIDUAL: dict[str, Any] = {
    "id": "ind-1",
    "sex": {"id": "NCIT:C20197", "label": "male"},
}

GENOMIC_VARIATION: dict[str, Any] = {
    "variantInternalId": "GRCh38-22-16050075-A-G",
    "variation": {
        "variantType": "SNP",
        "referenceBases": "A",
        "alternateBases": "G",
        "location": {
            "type": "SequenceLocation",
            "sequence_id": "refseq:NC_000022.11",
            "interval": {
                "type": "SequenceInterval",
                "start": {"type": "Number", "value": 16050074},
                "end": {"type": "Number", "value": 16050075},
            },
        },
    },
}

VALID: list[tuple[str, dict[str, Any]]] = [
    ("beaconBooleanResponse", BOOLEAN_RESPONSE),
    ("beaconCountResponse", COUNT_RESPONSE),
    ("beaconResultsetsResponse", RESULTSETS_RESPONSE),
    ("beaconCollectionsResponse", COLLECTIONS_RESPONSE),
    ("beaconErrorResponse", ERROR_RESPONSE),
    ("beaconInfoResponse", {"meta": INFO_META, "response": BEACON_INFO}),
    ("beaconEntryTypesResponse", {"meta": INFO_META, "response": ENTRY_TYPES}),
    ("beaconMapResponse", {"meta": INFO_META, "response": BEACON_MAP}),
    (
        "beaconFilteringTermsResponse",
        {"meta": INFO_META, "response": {"filteringTerms": []}},
    ),
    ("ga4gh-service-info-1-0-0-schema", SERVICE_INFO),
    ("beaconRequestBody", REQUEST_BODY),
    ("individuals", INDIVIDUAL),
    ("genomicVariations", GENOMIC_VARIATION),
    ("datasets", {"id": "dataset-1", "name": "Synthetic cohort"}),
    (
        "cohorts",
        {"id": "cohort-1", "name": "All individuals", "cohortType": "study-defined"},
    ),
    ("runs", {"id": "run-1", "biosampleId": "bs-1", "runDate": "2021-10-18"}),
    (
        "analyses",
        {"id": "an-1", "analysisDate": "2021-10-17", "pipelineName": "gatk-4.5"},
    ),
    (
        "biosamples",
        {
            "id": "bs-1",
            "biosampleStatus": {"id": "EFO:0009654", "label": "reference sample"},
            "sampleOriginType": {"id": "OBI:0000655", "label": "blood specimen"},
        },
    ),
]


def _mutate(document: dict[str, Any], path: list[str | int], value: Any) -> Any:
    """Return a deep copy of ``document`` with ``path`` set (or deleted if ...)."""
    result = copy.deepcopy(document)
    target: Any = result
    for part in path[:-1]:
        target = target[part]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return result


INVALID: list[tuple[str, Any, str]] = [
    ("beaconBooleanResponse", _mutate(BOOLEAN_RESPONSE, ["meta"], ...), "$"),
    (
        "beaconBooleanResponse",
        _mutate(BOOLEAN_RESPONSE, ["responseSummary", "exists"], "yes"),
        "$.responseSummary.exists",
    ),
    (
        "beaconCountResponse",
        _mutate(COUNT_RESPONSE, ["responseSummary", "numTotalResults"], -1),
        "$.responseSummary.numTotalResults",
    ),
    (
        "beaconCountResponse",
        _mutate(COUNT_RESPONSE, ["responseSummary", "numTotalResults"], "3"),
        "$.responseSummary.numTotalResults",
    ),
    (
        "beaconCountResponse",
        _mutate(COUNT_RESPONSE, ["responseSummary", "numTotalResults"], ...),
        "$.responseSummary",
    ),
    (
        "beaconBooleanResponse",
        _mutate(BOOLEAN_RESPONSE, ["meta", "returnedGranularity"], "everything"),
        "$.meta.returnedGranularity",
    ),
    (
        "beaconResultsetsResponse",
        _mutate(RESULTSETS_RESPONSE, ["response", "resultSets", 0, "setType"], 42),
        "$.response.resultSets[0].setType",
    ),
    (
        "beaconResultsetsResponse",
        _mutate(RESULTSETS_RESPONSE, ["response", "resultSets", 0, "results"], ...),
        "$.response.resultSets[0]",
    ),
    (
        "beaconErrorResponse",
        _mutate(ERROR_RESPONSE, ["error", "errorCode"], ...),
        "$.error",
    ),
    (
        "beaconErrorResponse",
        _mutate(ERROR_RESPONSE, ["error", "errorCode"], "404"),
        "$.error.errorCode",
    ),
    ("beaconRequestBody", _mutate(REQUEST_BODY, ["meta"], ...), "$"),
    (
        "beaconRequestBody",
        _mutate(REQUEST_BODY, ["query", "requestedGranularity"], "all"),
        "$.query.requestedGranularity",
    ),
    ("individuals", _mutate(INDIVIDUAL, ["sex"], ...), "$"),
    ("individuals", _mutate(INDIVIDUAL, ["sex", "id"], "male"), "$.sex.id"),
    ("genomicVariations", _mutate(GENOMIC_VARIATION, ["variantInternalId"], ...), "$"),
    (
        "genomicVariations",
        _mutate(GENOMIC_VARIATION, ["variation"], "chr22:16050075A>G"),
        "$.variation",
    ),
    ("ga4gh-service-info-1-0-0-schema", _mutate(SERVICE_INFO, ["type"], ...), "$"),
]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make every network access fail loudly, and start from cold caches."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    caches = (schemas.validator, schemas.registry, schemas._load)
    for cache in caches:
        cache.cache_clear()
    yield
    for cache in caches:
        cache.cache_clear()


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _contents(relative: str) -> Any:
    text = schemas._file(relative).read_text(encoding="utf-8")
    return json.loads(text)


@pytest.mark.parametrize(("name", "document"), VALID, ids=[n for n, _ in VALID])
def test_valid_documents_pass(name: str, document: dict[str, Any]) -> None:
    validate(document, name)
    assert validator(name).is_valid(document)


@pytest.mark.parametrize(
    ("name", "document", "path"),
    INVALID,
    ids=[f"{name}-{path}" for name, _, path in INVALID],
)
def test_invalid_documents_name_the_path(name: str, document: Any, path: str) -> None:
    with pytest.raises(BeaconValidationError) as caught:
        validate(document, name)
    error = caught.value
    assert isinstance(error, GenomenodeError)
    assert path in error.paths
    assert f"  {path}: " in str(error)
    assert repr(name) in str(error)


def test_error_lists_every_failing_path() -> None:
    document = _mutate(COUNT_RESPONSE, ["responseSummary", "exists"], "yes")
    document["responseSummary"]["numTotalResults"] = -5
    document["meta"]["apiVersion"] = 2
    with pytest.raises(BeaconValidationError) as caught:
        validate(document, "beaconCountResponse")
    assert caught.value.paths == [
        "$.meta.apiVersion",
        "$.responseSummary.exists",
        "$.responseSummary.numTotalResults",
    ]


def test_set_type_is_not_an_enum_upstream() -> None:
    """The official schema takes any string as ``setType`` (only type-checked)."""
    document = _mutate(
        RESULTSETS_RESPONSE, ["response", "resultSets", 0, "setType"], "galaxy"
    )
    validate(document, "beaconResultsetsResponse")


def test_results_are_validated_separately_against_the_entity_schema() -> None:
    """A resultset only requires ``results`` to be objects; entries need their own."""
    bad = {"id": "ind-1"}
    document = _mutate(
        RESULTSETS_RESPONSE, ["response", "resultSets", 0, "results"], [bad]
    )
    validate(document, "beaconResultsetsResponse")
    with pytest.raises(BeaconValidationError):
        validate(bad, "individuals")


def test_info_json_alias_is_used_by_entity_schemas() -> None:
    """Entity schemas point at a missing ``../common/info.json``; it is mapped."""
    validate({**INDIVIDUAL, "info": {"anything": 1}}, "individuals")
    with pytest.raises(BeaconValidationError) as caught:
        validate({**INDIVIDUAL, "info": "not an object"}, "individuals")
    assert caught.value.paths == ["$.info"]


def test_unknown_schema_name() -> None:
    with pytest.raises(BeaconSchemaError, match="beaconBooleanResponse"):
        validator("beaconNoSuchResponse")


def test_vendored_path_accepted_as_name() -> None:
    validate({"id": "NCIT:C20197"}, "framework/json/common/ontologyTerm.json")


def test_validator_is_cached() -> None:
    assert validator("individuals") is validator("individuals")


def test_all_named_schemas_exist() -> None:
    files = set(schemas.schema_files())
    assert set(SCHEMA_PATHS.values()) <= files
    for name in SCHEMA_PATHS:
        assert validator(name).schema["$id"] == BASE_URI + SCHEMA_PATHS[name]


def test_vendored_tree_is_complete_and_small() -> None:
    files = schemas.schema_files()
    assert len(files) == 66
    assert not [f for f in files if "example" in f]
    total = sum(len(schemas._file(f).read_bytes()) for f in files)
    assert total < 2_000_000


DEREF_VARIATIONS = SCHEMA_PATHS["genomicVariations"]


@pytest.mark.parametrize("relative", schemas.schema_files())
def test_every_vendored_file_is_a_valid_schema(relative: str, no_network: None) -> None:
    contents = _contents(relative)
    assert contents["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    if relative != DEREF_VARIATIONS:
        jsonschema.Draft202012Validator.check_schema(contents)
        return
    # Upstream defect: the dereferenced genomicVariations schema holds a list in
    # four ``deprecated`` keywords (must be a boolean). ``deprecated`` is only an
    # annotation, so validation is unaffected; anything else must be clean.
    meta = jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA)
    problems = list(meta.iter_errors(contents))
    assert len(problems) == 4
    assert {p.absolute_path[-1] for p in problems} == {"deprecated"}


@pytest.mark.parametrize("relative", schemas.schema_files())
def test_every_ref_resolves_offline(relative: str, no_network: None) -> None:
    resolver = schemas.registry().resolver(base_uri=BASE_URI + relative)
    for ref in _refs(_contents(relative)):
        resolved = resolver.lookup(ref)
        assert isinstance(resolved.contents, dict | bool), ref


def test_validates_everything_without_network(no_network: None) -> None:
    for name, document in VALID:
        validate(document, name)
    for name, document, _ in INVALID:
        with pytest.raises(BeaconValidationError):
            validate(document, name)


def test_foreign_uris_are_refused_not_fetched(no_network: None) -> None:
    from referencing.exceptions import Unresolvable

    resolver = schemas.registry().resolver()
    with pytest.raises(Unresolvable):
        resolver.lookup("https://w3id.org/ga4gh/schema/vrs/1.3/vrs.json")
    with pytest.raises(Unresolvable):
        resolver.lookup(BASE_URI + "framework/json/no-such-file.json")

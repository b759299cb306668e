"""Turn Beacon v2 GET parameters and POST bodies into one normalised request.

Beacon clients and networks send the same question in several shapes. This module
accepts them all and hands the rest of genomenode a single, immutable
:class:`BeaconRequest`; anything it does not understand is rejected with a
:class:`BeaconRequestError` (HTTP 400) that names the offending parameter, so the API
can answer with a Beacon error response instead of silently ignoring it.

Accepted shapes (the official Beacon v2.1.1 schemas under
``genomenode/beacon/schemas/`` are the authority; anything valid there parses):

* ``requestParameters`` nested under ``g_variant`` (the default model's layout) or
  flat (``{"referenceName": "22", "start": [16050074], ...}``), or both at once as
  long as no parameter is given twice;
* ``start`` / ``end`` as an integer, a numeric string, a list of one or two integers
  or numeric strings, or a comma-joined string (``"100,200"``);
* ``requestedGranularity``, ``pagination``, ``includeResultsetResponses`` and
  ``testMode`` inside ``query`` (the schema's place) or at the top level of the body;
  given in both places they must agree;
* JSON ``null`` for an optional value means "not given";
* GET parameters as strings or lists of strings (repeated parameters); ``filters``
  and ``requestedSchema`` may be comma-separated and repeated; ``geneid`` and
  ``allele`` (the names of the official ``endpoints.json``) stand for ``geneId`` and
  ``genomicAlleleShortForm``.

Coordinates are kept exactly as the Beacon specification defines them: **0-based**,
``start`` inclusive and ``end`` exclusive (half-open). Nothing here converts them;
``start=[16050074]`` means the base VCF calls position 16050075.

``referenceName`` is normalised by stripping a leading ``chr`` (any case); the
original spelling is kept in :attr:`VariantQuery.reference_name_original`, and each
dataset finds its contig under any spelling of a chromosome (``22``, ``chr22``,
``NC_000022.11``, ``refseq:NC_000022.11``; :mod:`genomenode.vocab.contigs`).

Examples
--------
>>> request = parse_get({"referenceName": "chr22", "start": "16050074",
...                      "alternateBases": "A", "filters": "NCIT:C20197"})
>>> request.variant.kind, request.variant.reference_name, request.variant.start
('sequence', '22', (16050074,))
>>> request.filters[0].kind
'ontology'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from .query import (
    BeaconRequest,
    Filter,
    RequestedSchema,
)
from .request_fields import (
    VARIANT_PARAMETERS,
    _api_version,
    _boolean,
    _check_keys,
    _fail,
    _filters,
    _granularity,
    _include,
    _mapping,
    _one,
    _plain_filter,
    _Raw,
    _requested_schemas,
    _skip,
    _split_ids,
    _string,
    _type_name,
    _variant,
)

__all__ = ["GET_ALIASES", "GET_PARAMETERS", "parse_get", "parse_post"]

#: GET names of the official Beacon v2 ``endpoints.json`` (the OpenAPI clients are
#: generated from) that differ from the request schema's: both are accepted.
GET_ALIASES: Mapping[str, str] = {
    "allele": "genomicAlleleShortForm",
    "geneid": "geneId",
}

#: Every GET query-string parameter :func:`parse_get` understands.
GET_PARAMETERS: frozenset[str] = (
    VARIANT_PARAMETERS
    | GET_ALIASES.keys()
    | {
        "apiVersion",
        "filters",
        "includeResultsetResponses",
        "limit",
        "requestedGranularity",
        "requestedSchema",
        "requestedSchemas",
        "skip",
        "testMode",
    }
)


# ------------------------------------------------------------------------------ GET


def _get_values(name: str, value: object) -> list[str]:
    items = list(value) if isinstance(value, list | tuple) else [value]
    for item in items:
        if not isinstance(item, str):
            raise _fail(name, f"must be a string, got {_type_name(item)}")
    return cast(list[str], items)


def _get_scalar(name: str, value: object) -> str:
    items = _get_values(name, value)
    if not items or any(item != items[0] for item in items):
        raise _fail(name, f"must be given exactly once, got {items!r}")
    return items[0]


def parse_get(params: Mapping[str, str | list[str]]) -> BeaconRequest:
    """Parse the query string of a Beacon GET request.

    Parameters
    ----------
    params
        Parameter name to value, or to every value of a repeated parameter (as
        ``MultiDict``-style adapters give them). ``filters`` and
        ``requestedSchema`` may be comma-separated and repeated; ``start`` and
        ``end`` may be comma-joined (``start=100,200``) or repeated; any other
        parameter must be given once (or repeated with the same value).

    Returns
    -------
    BeaconRequest

    Raises
    ------
    BeaconRequestError
        Naming the parameter that is unknown or invalid.
    """
    if not isinstance(params, Mapping):
        raise _fail("query", f"must be a mapping, got {_type_name(params)}")
    for name in params:
        if name not in GET_PARAMETERS:
            raise _fail(str(name), f"unknown parameter {name!r}")

    def scalar(name: str) -> list[_Raw]:
        if name not in params:
            return []
        return [(_get_scalar(name, params[name]), name)]

    filters: list[Filter] = []
    if "filters" in params:
        for item in _get_values("filters", params["filters"]):
            filters.extend(_plain_filter(part) for part in _split_ids(item))
    schemas: list[RequestedSchema] = []
    for name in ("requestedSchema", "requestedSchemas"):
        if name in params:
            for item in _get_values(name, params[name]):
                schemas.extend(RequestedSchema(schema=s) for s in _split_ids(item))
    variant: dict[str, _Raw] = {}
    for name in VARIANT_PARAMETERS:
        if name not in params:
            continue
        if name in ("start", "end"):
            variant[name] = (",".join(_get_values(name, params[name])), name)
        else:
            variant[name] = (_get_scalar(name, params[name]), name)
    for alias, name in GET_ALIASES.items():
        if alias not in params:
            continue
        value = _get_scalar(alias, params[alias])
        if name in variant and variant[name][0] != value:
            raise _fail(
                alias, f"conflicts with {name} ({value!r} != {variant[name][0]!r})"
            )
        variant.setdefault(name, (value, alias))
    return BeaconRequest(
        api_version=_one(scalar("apiVersion"), _api_version, None),
        requested_schemas=tuple(schemas),
        granularity=_one(scalar("requestedGranularity"), _granularity, "boolean"),
        include_resultset_responses=_one(
            scalar("includeResultsetResponses"), _include, "HIT"
        ),
        skip=_one(scalar("skip"), _skip, 0),
        limit=_one(scalar("limit"), _skip, 10),
        test_mode=_one(scalar("testMode"), _boolean, False),
        filters=tuple(filters),
        variant=_variant(variant),
    )


# ----------------------------------------------------------------------------- POST

_SETTINGS = frozenset(
    {"includeResultsetResponses", "pagination", "requestedGranularity", "testMode"}
)
_TOP_KEYS = frozenset({"$schema", "meta", "query"}) | _SETTINGS
_META_KEYS = frozenset({"$schema", "apiVersion", "requestedSchemas"})
_QUERY_KEYS = frozenset({"filters", "requestParameters"}) | _SETTINGS
_PAGINATION_KEYS = frozenset(
    {"skip", "limit", "currentPage", "nextPage", "previousPage"}
)


def _request_parameters(value: object, field: str) -> dict[str, _Raw]:
    params = _mapping(value, field)
    found: dict[str, _Raw] = {}
    for key, item in params.items():
        if key == "$schema":
            continue
        if key == "g_variant":
            nested = _mapping(item, f"{field}.g_variant")
            for name, inner in nested.items():
                where = f"{field}.g_variant.{name}"
                if name == "$schema":
                    continue
                if name not in VARIANT_PARAMETERS:
                    raise _fail(where, f"unknown request parameter {name!r}")
                if name in found:
                    raise _fail(where, f"is given twice (also as {found[name][1]})")
                if inner is not None:
                    found[name] = (inner, where)
            continue
        where = f"{field}.{key}"
        if key not in VARIANT_PARAMETERS:
            raise _fail(where, f"unknown request parameter {key!r}")
        if key in found:
            raise _fail(where, f"is given twice (also as {found[key][1]})")
        if item is not None:
            found[key] = (item, where)
    return found


def parse_post(body: object) -> BeaconRequest:
    """Parse the decoded JSON body of a Beacon POST request.

    Every body valid against the official ``beaconRequestBody`` schema parses,
    provided it uses only the properties the schemas define (unknown keys are
    rejected, see the module docstring) and its ``requestParameters`` form a
    query the genomic-variation schema describes.

    Parameters
    ----------
    body
        The decoded JSON document.

    Returns
    -------
    BeaconRequest

    Raises
    ------
    BeaconRequestError
        Naming (as a dotted path, e.g. ``query.pagination.limit``) the parameter
        that is unknown or invalid.
    """
    top = _mapping(body, "body")
    _check_keys(top, _TOP_KEYS, "")
    meta: Mapping[str, object] = {}
    if top.get("meta") is not None:
        meta = _mapping(top["meta"], "meta")
        _check_keys(meta, _META_KEYS, "meta.")
    query: Mapping[str, object] = {}
    if top.get("query") is not None:
        query = _mapping(top["query"], "query")
        _check_keys(query, _QUERY_KEYS, "query.")

    def places(name: str) -> list[_Raw]:
        return [(query.get(name), f"query.{name}"), (top.get(name), name)]

    skips: list[_Raw] = []
    limits: list[_Raw] = []
    for value, field in places("pagination"):
        if value is None:
            continue
        pagination = _mapping(value, field)
        _check_keys(pagination, _PAGINATION_KEYS, f"{field}.")
        for key in ("currentPage", "nextPage", "previousPage"):
            if pagination.get(key) is not None:
                _string(pagination[key], f"{field}.{key}", allow_empty=True)
        skips.append((pagination.get("skip"), f"{field}.skip"))
        limits.append((pagination.get("limit"), f"{field}.limit"))

    variant: dict[str, _Raw] = {}
    if query.get("requestParameters") is not None:
        variant = _request_parameters(
            query["requestParameters"], "query.requestParameters"
        )
    filters: tuple[Filter, ...] = ()
    if query.get("filters") is not None:
        filters = _filters(query["filters"], "query.filters")
    schemas: tuple[RequestedSchema, ...] = ()
    if meta.get("requestedSchemas") is not None:
        schemas = _requested_schemas(meta["requestedSchemas"], "meta.requestedSchemas")
    return BeaconRequest(
        api_version=_one(
            [(meta.get("apiVersion"), "meta.apiVersion")], _api_version, None
        ),
        requested_schemas=schemas,
        granularity=_one(places("requestedGranularity"), _granularity, "boolean"),
        include_resultset_responses=_one(
            places("includeResultsetResponses"), _include, "HIT"
        ),
        skip=_one(skips, _skip, 0),
        limit=_one(limits, _skip, 10),
        test_mode=_one(places("testMode"), _boolean, False),
        filters=filters,
        variant=_variant(variant),
    )

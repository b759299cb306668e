"""Validate documents against the official GA4GH Beacon v2.1.1 JSON schemas, offline.

The schemas are vendored byte-identical under ``genomenode/beacon/schemas/`` (see its
``README.md`` for provenance and licence) with the upstream directory layout, so that
their relative ``$ref`` s keep working. Every ``$ref`` is resolved by a
:class:`referencing.Registry` whose ``retrieve`` function reads only those vendored
files; nothing is ever fetched from the network.

Each vendored file is registered under the URI it has upstream::

    https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main/<path in repo>

so relative references (``../common/info.json``) and the absolute
``raw.githubusercontent.com`` references used across the schemas both land on the
vendored copy. One upstream reference is broken: the default-model entity schemas
point at ``models/json/beacon-v2-default-model/common/info.json``, which does not
exist; it is mapped to ``framework/json/common/info.json``.

Examples
--------
>>> from genomenode.beacon.schemas import validate
>>> validate({"meta": {}}, "beaconBooleanResponse")  # doctest: +SKIP
Traceback (most recent call last):
BeaconValidationError: document does not match Beacon schema 'beaconBooleanResponse'...
"""

from __future__ import annotations

import functools
import json
import posixpath
from collections.abc import Iterable
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
from jsonschema.protocols import Validator
from referencing.jsonschema import DRAFT202012

from genomenode.errors import (
    BeaconSchemaError,
    BeaconValidationError,
    SchemaViolation,
)

__all__ = [
    "BASE_URI",
    "RESPONSE_SCHEMAS",
    "SCHEMA_PATHS",
    "BeaconSchemaError",
    "BeaconValidationError",
    "SchemaViolation",
    "openapi_components",
    "openapi_name",
    "registry",
    "schema_files",
    "schema_uri",
    "validate",
    "validator",
]

#: Where upstream publishes the schemas; the vendored tree mirrors the repository.
BASE_URI = "https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main/"

_PACKAGE = "genomenode.beacon"
_DATA_DIR = "schemas"
_RESPONSES = "framework/json/responses/"
_MODEL = "models/json/beacon-v2-default-model/"

#: Upstream references to files that do not exist, and the file that is meant.
_ALIASES: dict[str, str] = {
    _MODEL + "common/info.json": "framework/json/common/info.json",
}

#: The official response schemas (framework/json/responses/).
RESPONSE_SCHEMAS = (
    "beaconBooleanResponse",
    "beaconCollectionsResponse",
    "beaconConfigurationResponse",
    "beaconCountResponse",
    "beaconEntryTypesResponse",
    "beaconErrorResponse",
    "beaconFilteringTermsResponse",
    "beaconInfoResponse",
    "beaconMapResponse",
    "beaconResultsetsResponse",
    "ga4gh-service-info-1-0-0-schema",
)

#: Schema names accepted by :func:`validator`, and their path in the vendored tree.
SCHEMA_PATHS: dict[str, str] = {
    **{name: f"{_RESPONSES}{name}.json" for name in RESPONSE_SCHEMAS},
    "beaconRequestBody": "framework/json/requests/beaconRequestBody.json",
    "beaconRequestMeta": "framework/json/requests/beaconRequestMeta.json",
    "beaconConfigurationSchema": (
        "framework/json/configuration/beaconConfigurationSchema.json"
    ),
    "beaconMapSchema": "framework/json/configuration/beaconMapSchema.json",
    "entryTypesSchema": "framework/json/configuration/entryTypesSchema.json",
    "filteringTermsSchema": "framework/json/configuration/filteringTermsSchema.json",
    **{
        entity: f"{_MODEL}{entity}/defaultSchema.json"
        for entity in (
            "analyses",
            "biosamples",
            "cohorts",
            "datasets",
            "individuals",
            "runs",
        )
    },
    # The model's own genomicVariations schema references the GA4GH VRS 1.3 schema
    # outside the repository; upstream's dereferenced copy is self-contained.
    "genomicVariations": "bin/deref_schemas/genomicVariations/defaultSchema.json",
}


def _root() -> Traversable:
    return resources.files(_PACKAGE).joinpath(_DATA_DIR)


def _file(relative: str) -> Traversable:
    node = _root()
    for part in relative.split("/"):
        node = node.joinpath(part)
    return node


def schema_files() -> list[str]:
    """List every vendored schema file.

    Returns
    -------
    list of str
        Paths relative to the vendored tree (which mirrors the upstream repository),
        sorted, e.g. ``"framework/json/common/info.json"``.
    """

    def walk(node: Traversable, prefix: str) -> Iterable[str]:
        for child in node.iterdir():
            if child.is_dir():
                yield from walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".json"):
                yield f"{prefix}{child.name}"

    return sorted(walk(_root(), ""))


def schema_uri(name: str) -> str:
    """Return the URI a schema is registered under.

    Parameters
    ----------
    name
        A key of :data:`SCHEMA_PATHS`, or a vendored path such as
        ``"framework/json/common/ontologyTerm.json"``.

    Returns
    -------
    str
        The upstream ``raw.githubusercontent.com`` URI of that file.

    Raises
    ------
    BeaconSchemaError
        If ``name`` is neither a known schema name nor a vendored file.
    """
    relative = SCHEMA_PATHS.get(name, name)
    if not _file(relative).is_file():
        known = ", ".join(sorted(SCHEMA_PATHS))
        raise BeaconSchemaError(
            f"unknown Beacon schema {name!r}; known names: {known} "
            "(or a path under genomenode/beacon/schemas/)"
        )
    return BASE_URI + relative


@functools.cache
def _load(relative: str) -> referencing.Resource[Any]:
    text = _file(relative).read_text(encoding="utf-8")
    contents = json.loads(text)
    return referencing.Resource.from_contents(
        contents, default_specification=DRAFT202012
    )


def _retrieve(uri: str) -> referencing.Resource[Any]:
    """Map a URI to a vendored file; never touch the network."""
    if not uri.startswith(BASE_URI):
        raise referencing.exceptions.NoSuchResource(uri)
    relative = uri.removeprefix(BASE_URI)
    relative = _ALIASES.get(relative, relative)
    try:
        return _load(relative)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as error:
        raise referencing.exceptions.NoSuchResource(uri) from error


@functools.lru_cache(maxsize=1)
def registry() -> referencing.Registry[Any]:
    """Return the offline registry that resolves every Beacon ``$ref``.

    Returns
    -------
    referencing.Registry
        A registry whose ``retrieve`` serves the vendored files for URIs under
        :data:`BASE_URI` (with the upstream ``info.json`` alias) and refuses every
        other URI with :class:`referencing.exceptions.NoSuchResource`.
    """
    # Every vendored file is loaded and crawled up front: validation then finds
    # each $ref in the registry instead of retrieving it anew on every call
    # (about twice as fast; the network validates every node's answer).
    resources = [(BASE_URI + relative, _load(relative)) for relative in schema_files()]
    lazy = referencing.Registry(retrieve=_retrieve)  # type: ignore[call-arg]
    return lazy.with_resources(resources).crawl()


@functools.cache
def validator(name: str) -> Validator:
    """Return a validator for one Beacon schema (cached per name).

    Parameters
    ----------
    name
        A schema name from :data:`SCHEMA_PATHS` (``"beaconBooleanResponse"``,
        ``"beaconRequestBody"``, ``"individuals"``, ``"genomicVariations"``, ...),
        or a path of a vendored file such as ``"framework/json/common/info.json"``.

    Returns
    -------
    jsonschema.protocols.Validator
        A draft 2020-12 validator whose references resolve offline. ``format`` is
        an annotation only (as the draft specifies by default).

    Raises
    ------
    BeaconSchemaError
        If the name is unknown.
    """
    uri = schema_uri(name)
    schema = _load(uri.removeprefix(BASE_URI)).contents
    cls = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    # No upstream schema has an $id: give the root its upstream URI so that its
    # relative $refs resolve against it (the vendored file itself is unchanged).
    return cls(
        {**schema, "$id": schema.get("$id", uri)},
        registry=registry(),
    )


def _json_path(parts: Iterable[str | int]) -> str:
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier():
            path += f".{part}"
        else:
            path += f"[{json.dumps(part)}]"
    return path


def _violations(errors: Iterable[jsonschema.ValidationError]) -> list[SchemaViolation]:
    found: dict[tuple[str, str, str], SchemaViolation] = {}
    for error in errors:
        items = [error]
        if error.context:
            # A failed oneOf/anyOf: also name the branch that came closest.
            items.append(jsonschema.exceptions.best_match(error.context))
        for item in items:
            violation = SchemaViolation(
                path=_json_path(item.absolute_path),
                message=item.message,
                schema_path="/".join(str(p) for p in item.absolute_schema_path),
            )
            found[(violation.path, violation.schema_path, violation.message)] = (
                violation
            )
    return [found[key] for key in sorted(found)]


def validate(document: object, name: str) -> None:
    """Validate a document against a Beacon schema.

    Parameters
    ----------
    document
        The decoded JSON document (a response, a request body, an entry ...).
    name
        The schema to use; see :func:`validator`.

    Raises
    ------
    BeaconValidationError
        If the document does not match; its message lists every failing JSON path
        (``$.responseSummary.exists: 'yes' is not of type 'boolean'``) and its
        ``violations`` / ``paths`` attributes hold them for programs.
    BeaconSchemaError
        If the schema name is unknown.
    """
    errors = list(validator(name).iter_errors(document))
    if errors:
        raise BeaconValidationError(name, _violations(errors))


# -- OpenAPI ---------------------------------------------------------------------


def openapi_name(name: str) -> str:
    """The name of a schema (a key of :data:`SCHEMA_PATHS` or a vendored path)
    among an OpenAPI document's ``components.schemas``: its path in the vendored
    tree without ``framework/json/`` and ``.json``, dotted
    (``responses.beaconBooleanResponse``, ``common.beaconCommonComponents``)."""
    relative = SCHEMA_PATHS.get(name, name).removesuffix(".json")
    return relative.removeprefix("framework/json/").replace("/", ".")


def _local_ref(reference: str, relative: str) -> str:
    """A ``$ref`` of the vendored file ``relative`` as a reference into the
    OpenAPI document's ``components.schemas``."""
    target, _, fragment = reference.partition("#")
    if not target:
        target = relative
    elif target.startswith(BASE_URI):
        target = target.removeprefix(BASE_URI)
    else:
        target = posixpath.normpath(posixpath.join(posixpath.dirname(relative), target))
    target = _ALIASES.get(target, target)
    return f"#/components/schemas/{openapi_name(target)}{fragment}"


def _rewritten(node: Any, relative: str, found: set[str]) -> Any:
    if isinstance(node, dict):
        copy = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                local = _local_ref(value, relative)
                found.add(local.split("/")[3].split("#")[0])
                copy[key] = local
            else:
                copy[key] = _rewritten(value, relative, found)
        return copy
    if isinstance(node, list):
        return [_rewritten(item, relative, found) for item in node]
    return node


@functools.cache
def _openapi_components(names: tuple[str, ...]) -> dict[str, Any]:
    paths = {
        openapi_name(relative): relative
        for relative in schema_files()
        if relative.startswith("framework/")
    } | {openapi_name(name): SCHEMA_PATHS[name] for name in SCHEMA_PATHS}
    components: dict[str, Any] = {}
    pending = [openapi_name(name) for name in names]
    while pending:
        name = pending.pop()
        if name in components:
            continue
        relative = paths[name]
        found: set[str] = set()
        contents = dict(_load(relative).contents)
        # Each file becomes a subschema of the OpenAPI document: no dialect or
        # base URI of its own (a $defs entry named "$schema" stays).
        contents.pop("$schema", None)
        contents.pop("$id", None)
        components[name] = _rewritten(contents, relative, found)
        pending.extend(sorted(found - components.keys()))
    return dict(sorted(components.items()))


def openapi_components(names: Iterable[str]) -> dict[str, Any]:
    """The official schemas ``names`` and every schema they reference, as an
    OpenAPI 3.1 document's ``components.schemas``.

    Each vendored file becomes one component named by :func:`openapi_name`, its
    content unchanged but for its ``$ref`` s, which point into the components
    (``#/components/schemas/common.beaconCommonComponents/$defs/Skip``): the
    document is self-contained (the schemas dereferenced into it), and a
    response is described by reference,
    ``{"$ref": "#/components/schemas/responses.beaconBooleanResponse"}``.

    Parameters
    ----------
    names
        Keys of :data:`SCHEMA_PATHS` (``"beaconBooleanResponse"``...).
    """
    return json.loads(json.dumps(_openapi_components(tuple(sorted(names)))))

"""The fields of a Beacon request, each parsed strictly: values, the variant query,
filters and requested schemas.

:mod:`.requests` reads GET parameters and POST bodies in every shape peers send
and hands each field here; every error names the field at fault
(:class:`~genomenode.errors.BeaconRequestError`, HTTP 400). Coordinates stay as the
Beacon specification defines them (0-based, half-open); ``referenceName`` loses a
leading ``chr``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar, cast

from genomenode.errors import BeaconRequestError

from .query import (
    Filter,
    FilterKind,
    Granularity,
    IncludeResultsetResponses,
    Operator,
    RequestedSchema,
    Similarity,
    VariantKind,
    VariantQuery,
)

__all__ = ["ALPHANUMERIC_OPERATORS", "VARIANT_PARAMETERS"]

_GRANULARITIES: tuple[Granularity, ...] = ("boolean", "count", "record")
_INCLUDES: tuple[IncludeResultsetResponses, ...] = ("HIT", "MISS", "ALL", "NONE")
_SIMILARITIES: tuple[Similarity, ...] = ("exact", "high", "medium", "low")
#: Operators of an alphanumeric filter, as the filteringTerms schema lists them.
ALPHANUMERIC_OPERATORS: tuple[Operator, ...] = ("=", "<", ">", "!", ">=", "<=")

#: The genomic-variation request parameters of the Beacon v2 default model.
VARIANT_PARAMETERS: frozenset[str] = frozenset(
    {
        "alternateBases",
        "aminoacidChange",
        "assemblyId",
        "end",
        "geneId",
        "genomicAlleleShortForm",
        "mateName",
        "referenceBases",
        "referenceName",
        "start",
        "variantMaxLength",
        "variantMinLength",
        "variantType",
    }
)

_BASES = re.compile(r"^[ACGTUNRYSWKMBDHV\-.]*$")
_DIGITS = re.compile(r"^[0-9]+$")
#: A CURIE whose prefix looks like an ontology (``HP:0001627``, ``NCIT:C20197``);
#: ids such as ``demographic.ethnicity:asian`` are custom terms.
_CURIE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*:\S+$")
_INT64_MAX = 2**63 - 1

_T = TypeVar("_T")


# --------------------------------------------------------------------------- values


def _fail(field: str, message: str) -> BeaconRequestError:
    return BeaconRequestError(message, field=field)


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _string(value: object, field: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _fail(field, f"must be a string, got {_type_name(value)}")
    text = value.strip()
    if not text and not allow_empty:
        raise _fail(field, "must not be empty")
    return text


def _integer(value: object, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _fail(field, f"must be an integer, got {_type_name(value)}")
    if isinstance(value, str):
        text = value.strip()
        if len(text.lstrip("-")) > 19 and _DIGITS.match(text.lstrip("-")):
            # Past 64 bits either way; int() would refuse past 4,300 digits.
            raise _fail(field, f"is too large ({text[:20]}...)")
        if text.startswith("-") and _DIGITS.match(text[1:]):
            number = -int(text[1:])
        elif _DIGITS.match(text):
            number = int(text)
        else:
            raise _fail(field, f"must be an integer, got {value!r}")
    else:
        number = value
    if number < minimum:
        raise _fail(field, f"must be at least {minimum}, got {number}")
    if number > _INT64_MAX:
        raise _fail(field, f"is too large ({number})")
    return number


def _boolean(value: object, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _fail(field, f"must be true or false, got {_type_name(value)}")


def _choice(value: object, field: str, choices: tuple[_T, ...], upper: bool) -> _T:
    text = _string(value, field)
    text = text.upper() if upper else text.lower()
    for choice in choices:
        if choice == text:
            return choice
    allowed = ", ".join(repr(c) for c in choices)
    raise _fail(field, f"must be one of {allowed}, got {value!r}")


def _positions(value: object, field: str, minimum: int) -> tuple[int, ...]:
    """``start`` / ``end``: int, numeric string, "a,b", or a list of one or two."""
    items: list[object]
    if isinstance(value, str):
        items = [part for part in value.split(",")]
    elif isinstance(value, list | tuple):
        items = []
        for item in value:
            if isinstance(item, str):
                items.extend(item.split(","))
            else:
                items.append(item)
    else:
        items = [value]
    if not 1 <= len(items) <= 2:
        raise _fail(field, f"must have one or two positions, got {len(items)}")
    return tuple(_integer(item, field, minimum) for item in items)


def _bases(value: object, field: str) -> str:
    text = _string(value, field, allow_empty=True).upper()
    if not _BASES.match(text):
        raise _fail(
            field,
            f"must match ^([ACGTUNRYSWKMBDHV\\-\\.]*)$ (IUPAC bases), got {value!r}",
        )
    return text


# ------------------------------------------------------------------------- variants

#: A raw value and the path naming it in error messages.
_Raw = tuple[object, str]


def _strip_chr(name: str) -> str:
    if name[:3].lower() == "chr" and len(name) > 3:
        return name[3:]
    return name


def _variant(params: Mapping[str, _Raw]) -> VariantQuery | None:
    if not params:
        return None

    def text(name: str) -> str | None:
        if name not in params:
            return None
        value, field = params[name]
        return _string(value, field)

    def number(name: str, minimum: int) -> int | None:
        if name not in params:
            return None
        value, field = params[name]
        return _integer(value, field, minimum)

    def bases(name: str) -> str | None:
        if name not in params:
            return None
        value, field = params[name]
        return _bases(value, field)

    # A missing parameter is named where its siblings were sent.
    first, (_, first_path) = next(iter(params.items()))
    prefix = first_path[: len(first_path) - len(first)]

    def where(name: str) -> str:
        return params[name][1] if name in params else prefix + name

    start: tuple[int, ...] = ()
    end: tuple[int, ...] = ()
    if "start" in params:
        start = _positions(params["start"][0], params["start"][1], 0)
    if "end" in params:
        end = _positions(params["end"][0], params["end"][1], 1)
    original = text("referenceName")
    min_length = number("variantMinLength", 0)
    max_length = number("variantMaxLength", 1)
    if min_length is not None and max_length is not None and min_length > max_length:
        raise _fail(
            where("variantMinLength"),
            f"is larger than variantMaxLength ({min_length} > {max_length})",
        )
    query = VariantQuery(
        kind="range",
        reference_name=_strip_chr(original) if original is not None else None,
        reference_name_original=original,
        assembly_id=text("assemblyId"),
        start=start,
        end=end,
        reference_bases=bases("referenceBases"),
        alternate_bases=bases("alternateBases"),
        variant_type=text("variantType"),
        variant_min_length=min_length,
        variant_max_length=max_length,
        gene_id=text("geneId"),
        aminoacid_change=text("aminoacidChange"),
        genomic_allele_short_form=text("genomicAlleleShortForm"),
        mate_name=text("mateName"),
    )
    if query.aminoacid_change is not None and query.gene_id is None:
        raise _fail(where("aminoacidChange"), "needs geneId")
    kind: VariantKind
    if query.gene_id is not None:
        for name in ("start", "end", "referenceName"):
            if name in params:
                raise _fail(
                    where("geneId"), f"cannot be combined with {name} (gene query)"
                )
        kind = "gene"
    elif start:
        if original is None:
            raise _fail(where("referenceName"), "is required with start")
        kind = _coordinate_kind(query, where)
    elif end:
        raise _fail(where("start"), "is required with end")
    elif query.genomic_allele_short_form is not None:
        kind = "hgvs"
    else:
        given = ", ".join(sorted(params))
        raise _fail(
            where("start"),
            "a variant query needs start (with referenceName), geneId or "
            f"genomicAlleleShortForm; got only {given}",
        )
    return dataclasses.replace(query, kind=kind)


def _coordinate_kind(query: VariantQuery, where: Callable[[str], str]) -> VariantKind:
    start, end = query.start, query.end
    if not end:
        if len(start) == 2:
            raise _fail(where("end"), "a bracket query (two start values) needs end")
        if query.alternate_bases is None:
            raise _fail(
                where("alternateBases"),
                "is required for a sequence query (start without end)",
            )
        return "sequence"
    if len(start) != len(end):
        raise _fail(
            where("end"),
            f"must have as many values as start ({len(start)}) for a "
            + ("range" if len(start) == 1 else "bracket")
            + " query",
        )
    if len(start) == 1:
        if end[0] <= start[0]:
            raise _fail(
                where("end"),
                f"must be greater than start (0-based half-open), got start "
                f"{start[0]} and end {end[0]}",
            )
        return "range"
    if start[0] > start[1]:
        raise _fail(where("start"), f"minimum {start[0]} exceeds maximum {start[1]}")
    if end[0] > end[1]:
        raise _fail(where("end"), f"minimum {end[0]} exceeds maximum {end[1]}")
    if end[1] <= start[0]:
        raise _fail(
            where("end"),
            f"bracket ends ({end[1]}) before it starts ({start[0]})",
        )
    return "bracket"


# -------------------------------------------------------------------------- filters

_FILTER_KEYS = frozenset(
    {"id", "scope", "includeDescendantTerms", "similarity", "operator", "value"}
)


def _plain_filter(text: str) -> Filter:
    kind: FilterKind = "ontology" if _CURIE.match(text) else "custom"
    return Filter(id=text, kind=kind)


def _split_ids(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _filter(item: object, field: str) -> list[Filter]:
    if isinstance(item, str):
        return [_plain_filter(part) for part in _split_ids(item)]
    if not isinstance(item, Mapping):
        raise _fail(field, f"must be an object or a string, got {_type_name(item)}")
    for key in item:
        if key not in _FILTER_KEYS:
            raise _fail(f"{field}.{key}", f"unknown filter key {key!r}")
    present = {key for key, value in item.items() if value is not None}
    if "id" not in present:
        raise _fail(f"{field}.id", "is required")
    term = _string(item["id"], f"{field}.id")
    scope = _string(item["scope"], f"{field}.scope") if "scope" in present else None
    alphanumeric = present & {"operator", "value"}
    ontology = present & {"includeDescendantTerms", "similarity"}
    if alphanumeric and ontology:
        raise _fail(
            f"{field}.{min(ontology)}",
            f"cannot be combined with {min(alphanumeric)} in one filter",
        )
    if alphanumeric:
        if "value" not in present:
            raise _fail(f"{field}.value", "is required with operator")
        raw_value = item["value"]
        if isinstance(raw_value, int | float) and not isinstance(raw_value, bool):
            value = str(raw_value)
        else:
            value = _string(raw_value, f"{field}.value", allow_empty=True)
        operator: Operator = "="
        if "operator" in present:
            raw_operator = item["operator"]
            if not isinstance(raw_operator, str) or (
                raw_operator.strip() not in ALPHANUMERIC_OPERATORS
            ):
                allowed = " ".join(ALPHANUMERIC_OPERATORS)
                raise _fail(
                    f"{field}.operator",
                    f"unknown operator {raw_operator!r}; allowed: {allowed}",
                )
            operator = cast(Operator, raw_operator.strip())
        return [
            Filter(
                id=term,
                kind="alphanumeric",
                scope=scope,
                operator=operator,
                value=value,
            )
        ]
    if ontology or _CURIE.match(term):
        include = True
        if "includeDescendantTerms" in present:
            include = _boolean(
                item["includeDescendantTerms"], f"{field}.includeDescendantTerms"
            )
        similarity: Similarity = "exact"
        if "similarity" in present:
            similarity = _choice(
                item["similarity"], f"{field}.similarity", _SIMILARITIES, upper=False
            )
        return [
            Filter(
                id=term,
                kind="ontology",
                scope=scope,
                include_descendant_terms=include,
                similarity=similarity,
            )
        ]
    return [Filter(id=term, kind="custom", scope=scope)]


def _filters(value: object, field: str) -> tuple[Filter, ...]:
    if isinstance(value, str | Mapping):
        return tuple(_filter(value, field))
    if not isinstance(value, list | tuple):
        raise _fail(field, f"must be a list of filters, got {_type_name(value)}")
    found: list[Filter] = []
    for index, item in enumerate(value):
        found.extend(_filter(item, f"{field}[{index}]"))
    return tuple(found)


def _requested_schemas(value: object, field: str) -> tuple[RequestedSchema, ...]:
    if isinstance(value, str):
        return tuple(RequestedSchema(schema=s) for s in _split_ids(value))
    if not isinstance(value, list | tuple):
        raise _fail(field, f"must be a list, got {_type_name(value)}")
    found: list[RequestedSchema] = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if isinstance(item, str):
            found.extend(RequestedSchema(schema=s) for s in _split_ids(item))
            continue
        if not isinstance(item, Mapping):
            raise _fail(where, f"must be an object, got {_type_name(item)}")
        for key in item:
            if key not in ("entityType", "schema"):
                raise _fail(f"{where}.{key}", f"unknown key {key!r}")
        entity = item.get("entityType")
        schema = item.get("schema")
        found.append(
            RequestedSchema(
                entity_type=(
                    _string(entity, f"{where}.entityType")
                    if entity is not None
                    else None
                ),
                schema=(
                    _string(schema, f"{where}.schema") if schema is not None else None
                ),
            )
        )
    return tuple(found)


# --------------------------------------------------------------------------- common


def _one(
    candidates: Sequence[_Raw], convert: Callable[[object, str], _T], default: _T
) -> _T:
    """Convert every place a setting was given; they must agree."""
    chosen: tuple[_T, str] | None = None
    for value, field in candidates:
        if value is None:
            continue
        parsed = convert(value, field)
        if chosen is not None and chosen[0] != parsed:
            raise _fail(
                field,
                f"conflicts with {chosen[1]} ({parsed!r} != {chosen[0]!r})",
            )
        if chosen is None:
            chosen = (parsed, field)
    return default if chosen is None else chosen[0]


def _granularity(value: object, field: str) -> Granularity:
    return _choice(value, field, _GRANULARITIES, upper=False)


def _include(value: object, field: str) -> IncludeResultsetResponses:
    return _choice(value, field, _INCLUDES, upper=True)


def _skip(value: object, field: str) -> int:
    return _integer(value, field, 0)


def _api_version(value: object, field: str) -> str:
    return _string(value, field)


def _mapping(value: object, field: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise _fail(field, f"must be an object, got {_type_name(value)}")
    for key in value:
        if not isinstance(key, str):
            raise _fail(field, f"has a non-string key {key!r}")
    return cast(Mapping[str, object], value)


def _check_keys(
    value: Mapping[str, object], allowed: frozenset[str], prefix: str
) -> None:
    for key in value:
        if key not in allowed:
            raise _fail(f"{prefix}{key}", f"unknown parameter {key!r}")

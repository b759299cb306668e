"""Evaluate Beacon v2 filters: which individuals of a dataset satisfy them all.

Every filtering term of this node describes an **individual**; a query for another
entry type (biosamples, genomic variants, runs, analyses) is restricted to the
records linked to the matching individuals. Filters are combined with AND.

* **Ontology filters** match an individual that has the term, or (by default,
  ``includeDescendantTerms``) a term below it (see
  :mod:`genomenode.vocab.ontology`), as its sex, ethnicity, geographic origin, a
  disease, a phenotypic feature that is not excluded, or the assay of a measure.
  ``similarity`` widens the term to its ancestors up to 1 (``high``), 2
  (``medium``) or 3 (``low``) levels up, in hierarchical vocabularies; flat
  vocabularies match exactly whatever it says.
* **Alphanumeric filters** compare a field (:data:`ALPHANUMERIC_FIELDS`, or the id
  of a measure's assay such as ``LOINC:35925-4``) with a value. Numeric fields
  take every operator; text fields take ``=`` and ``!`` and ``%`` wildcards (SQL
  ``LIKE``, case-insensitive). An individual without the field never matches.
* **Custom filters** are terms ``<field>:<value>`` (:data:`CUSTOM_FIELDS`:
  ``sex:female``, ``countryOfBirth:FI``, ``ethnicity:South Asian``,
  ``geographicOrigin:Wales``) for the individual fields people query by label. A
  custom term is the alphanumeric text filter ``<field> = <value>`` (same columns,
  label or id) with ``%`` literal, and ``_`` read as a space on both sides
  (``ethnicity:South_Asian`` is ``ethnicity:South Asian``). :mod:`.requests` reads
  a CURIE-like id as an ontology term, so an "ontology" filter whose prefix is a
  custom field (never a vocabulary prefix) is taken as the custom term;
  ``similarity`` and ``includeDescendantTerms`` change nothing for it.

Unknown terms, fields, scopes and misuse raise
:class:`~genomenode.errors.BeaconRequestError` (HTTP 400) naming the filter; a known
term that no individual has simply matches nobody. ``docs/beacon-filters.md`` is
the user-facing description.

The set logic runs in SQL; the hierarchy is expanded in Python against the distinct
codes present in the dataset, so a query is a handful of indexed selects.
:func:`naive_individuals_matching` computes the same over JSON documents, slowly and
obviously, for the tests.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, func, not_, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from genomenode.errors import BeaconRequestError, NotFoundError
from genomenode.store.models import (
    Dataset,
    Disease,
    Individual,
    Measure,
    PhenotypicFeature,
    published_datasets,
)
from genomenode.web.blocking import check_cancelled
from genomenode.web.cpu import work_time

from ..vocab import ontology
from .query import Filter

__all__ = [
    "ALPHANUMERIC_FIELDS",
    "CUSTOM_FIELDS",
    "ENTRY_TYPES",
    "SIMILARITY_LEVELS",
    "cpu_budget",
    "individuals_matching",
    "naive_individuals_matching",
    "normalise_custom_value",
]

#: The entry types (endpoint names) a query may be for.
ENTRY_TYPES: tuple[str, ...] = (
    "individuals",
    "biosamples",
    "g_variants",
    "runs",
    "analyses",
)
#: ``scope`` spellings meaning "individuals": the endpoint and the entry type id.
_INDIVIDUAL_SCOPES = frozenset({"individuals", "individual"})
_OTHER_SCOPES = frozenset(
    {
        *ENTRY_TYPES[1:],
        *("biosample", "run", "analysis"),
        *("genomicVariation", "genomicVariations"),
    }
)
#: How many levels ``similarity`` goes up a hierarchy before expanding descendants.
SIMILARITY_LEVELS: dict[str, int] = {"exact": 0, "high": 1, "medium": 2, "low": 3}

#: Alphanumeric fields of individuals (besides measure assay ids), and what they are.
ALPHANUMERIC_FIELDS: dict[str, str] = {
    "age": "age in years (a number or an ISO 8601 duration such as P45Y)",
    "sex": "sex: male, female, intersex, unknown, or an NCIT id",
    "countryOfBirth": "country of birth, ISO 3166-1 alpha-2 code",
    "ethnicity": "ethnicity, label or ontology id",
    "geographicOrigin": "geographic origin, label or ontology id",
}
_NUMERIC_FIELDS = frozenset({"age"})
#: The fields a custom term ``<field>:<value>`` can name: the text fields above.
CUSTOM_FIELDS: tuple[str, ...] = (
    "sex",
    "countryOfBirth",
    "ethnicity",
    "geographicOrigin",
)
_ISO_AGE = re.compile(
    r"^P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+)W)?(?:(\d+)D)?$"
)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


# (work time at the start, seconds allowed) of the request being answered.
_budget: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "genomenode_filter_budget", default=None
)


@contextlib.contextmanager
def cpu_budget(seconds: float) -> Iterator[None]:
    """Limit the CPU time filters may take in this thread (the whole request).

    Ontology filters expand to subtrees and are matched against every code of a
    dataset; hundreds of them cost seconds. Inside this block,
    :func:`individuals_matching` refuses to go on past ``seconds`` of the
    thread's CPU time (:class:`~genomenode.errors.BeaconRequestError`), garbage
    collections left out (:func:`~genomenode.web.cpu.work_time`).
    """
    token = _budget.set((work_time(), seconds))
    try:
        yield
    finally:
        _budget.reset(token)


def _spend() -> None:
    """Stop here if the request is abandoned or its filters cost too much."""
    check_cancelled()
    budget = _budget.get()
    if budget is not None and work_time() - budget[0] > budget[1]:
        raise BeaconRequestError(
            f"the filters cost more than {budget[1]:g} s of CPU to evaluate "
            "(beacon_filter_cpu_seconds); ask with fewer or narrower terms",
            field="filters",
        )


def _fail(index: int, item: Filter, message: str) -> BeaconRequestError:
    return BeaconRequestError(
        f"filter {item.id!r}: {message}", field=f"filters[{index}]"
    )


def normalise_custom_value(value: str) -> str:
    """The form in which custom-term values are compared: ``"South asian"``.

    ``_`` becomes a space, surrounding spaces are dropped and case is ignored, so
    ``South_Asian`` and ``south asian`` name the same term.
    """
    # The SQL side does the same: trim(replace(lower(column), '_', ' ')).
    return value.lower().replace("_", " ").strip(" ")


@dataclasses.dataclass(frozen=True)
class _TextTest:
    """A text field compared with a value, case-insensitively; ``=`` or ``!``.

    Alphanumeric text filters and custom terms are both read into one of these,
    so the two share their SQL and their naive twin.
    """

    field: str
    operator: str
    value: str
    wildcard: bool = False
    underscore_is_space: bool = False

    def fold(self, text: str) -> str:
        """A value of the field as this test compares it."""
        if self.underscore_is_space:
            return normalise_custom_value(text)
        return text.lower()


# ----------------------------------------------------------------- shared checks


def _check_scope(index: int, item: Filter) -> None:
    if item.scope is None or item.scope in _INDIVIDUAL_SCOPES:
        return
    if item.scope in _OTHER_SCOPES:
        raise _fail(
            index,
            item,
            f"scope {item.scope!r} has no filtering terms on this node; "
            "all terms describe individuals (scope 'individuals')",
        )
    raise _fail(index, item, f"scope {item.scope!r} is not an entry type of this node")


def _ontology_terms(index: int, item: Filter) -> frozenset[str]:
    """The filter's term and the ancestors its ``similarity`` adds; checks the term."""
    found = ontology.vocabulary(item.id)
    if found is None:
        known = ", ".join(sorted(ontology.VOCABULARIES))
        fields = ", ".join(f"{field}:" for field in CUSTOM_FIELDS)
        raise _fail(
            index,
            item,
            f"unknown vocabulary prefix (this node knows {known}) and not a custom "
            f"term ({fields})",
        )
    if not ontology.is_known(item.id):
        if found.hierarchy == "hpo":
            raise _fail(index, item, f"not a term of HPO {ontology.HPO_VERSION}")
        raise _fail(index, item, f"not a well-formed {found.prefix} code")
    levels = SIMILARITY_LEVELS[item.similarity]
    return frozenset({item.id}) | ontology.ancestors(item.id, levels)


def _code_matcher(index: int, item: Filter) -> Callable[[str], bool]:
    """A predicate: does an annotation's code satisfy this ontology filter?"""
    terms = _ontology_terms(index, item)
    related = (
        ontology.is_descendant
        if item.include_descendant_terms
        else (ontology.same_term)
    )
    return lambda code: any(related(code, term) for term in terms)


def _number(index: int, item: Filter, age: bool) -> float:
    value = (item.value or "").strip()
    if _NUMBER.match(value):
        return float(value)
    match = _ISO_AGE.match(value.upper()) if age else None
    if match is not None and any(match.groups()):
        years, months, weeks, days = (float(part or 0) for part in match.groups())
        return years + months / 12 + (weeks * 7 + days) / 365.25
    wanted = "a number or an ISO 8601 duration (P45Y)" if age else "a number"
    raise _fail(index, item, f"value {item.value!r} is not {wanted}")


def _alphanumeric_kind(index: int, item: Filter, assays: Iterable[str]) -> str:
    """``"numeric"``, ``"measure"`` or ``"text"``; checks field, operator, value."""
    if item.id in ALPHANUMERIC_FIELDS:
        kind = "numeric" if item.id in _NUMERIC_FIELDS else "text"
    elif ontology.prefix(item.id) == "LOINC" or item.id in set(assays):
        kind = "measure"
    else:
        fields = ", ".join(ALPHANUMERIC_FIELDS)
        raise _fail(
            index,
            item,
            f"not an alphanumeric field of this node ({fields}, or a measure's "
            "assay id such as LOINC:35925-4)",
        )
    if kind == "text" and item.operator not in ("=", "!"):
        raise _fail(index, item, f"operator {item.operator!r} needs a numeric field")
    if kind != "text" and item.has_wildcard:
        raise _fail(index, item, "% wildcards apply to text fields only")
    return kind


def _alphanumeric_text(item: Filter) -> _TextTest:
    return _TextTest(
        field=item.id,
        operator=item.operator or "=",
        value=(item.value or "").strip(),
        wildcard=item.has_wildcard,
    )


def _custom_term(index: int, item: Filter) -> _TextTest | None:
    """The test a custom term stands for (None for other filters); checks it."""
    if item.kind == "alphanumeric":
        return None
    field, colon, value = item.id.partition(":")
    # requests.py reads every CURIE-like id as an ontology term, `sex:female`
    # included; a vocabulary prefix keeps its meaning.
    if item.kind == "ontology" and (
        field not in CUSTOM_FIELDS or field in ontology.VOCABULARIES
    ):
        return None
    fields = ", ".join(CUSTOM_FIELDS)
    if not colon:
        raise _fail(
            index,
            item,
            "not a custom term of this node: custom terms are <field>:<value>, "
            f"<field> one of {fields} (see /filtering_terms)",
        )
    if field not in CUSTOM_FIELDS:
        raise _fail(
            index, item, f"unknown custom field {field!r} (this node has {fields})"
        )
    if not normalise_custom_value(value):
        raise _fail(index, item, f"custom term needs a value after '{field}:'")
    return _TextTest(field=field, operator="=", value=value, underscore_is_space=True)


def _check_filters(filters: Sequence[Filter]) -> list[_TextTest | None]:
    """Checks scopes and custom terms; the custom term of each filter, if it is one."""
    for index, item in enumerate(filters):
        _check_scope(index, item)
    return [_custom_term(index, item) for index, item in enumerate(filters)]


# ---------------------------------------------------------------------- SQL path


@dataclasses.dataclass
class _DatasetCodes:
    """The distinct codes of one dataset, per place a term can be; read lazily."""

    session: Session
    dataset_id: str
    cache: dict[str, frozenset[str]] = dataclasses.field(default_factory=dict)

    def get(self, column: InstrumentedAttribute[Any]) -> frozenset[str]:
        key = str(column)
        if key not in self.cache:
            table = column.class_
            query = select(column).where(table.dataset_id == self.dataset_id)
            if table is PhenotypicFeature:
                query = query.where(PhenotypicFeature.excluded.is_(False))
            rows = self.session.scalars(query.distinct())
            self.cache[key] = frozenset(code for code in rows if code is not None)
        return self.cache[key]


_INDIVIDUAL_COLUMNS = (
    Individual.sex_id,
    Individual.ethnicity_id,
    Individual.geographic_origin_id,
)
_LINKED_COLUMNS = (Disease.term_id, PhenotypicFeature.term_id, Measure.assay_id)
_TEXT_COLUMNS: dict[str, tuple[InstrumentedAttribute[Any], ...]] = {
    "sex": (Individual.sex_id, Individual.sex_label),
    "countryOfBirth": (Individual.country_of_birth,),
    "ethnicity": (Individual.ethnicity_id, Individual.ethnicity_label),
    "geographicOrigin": (
        Individual.geographic_origin_id,
        Individual.geographic_origin_label,
    ),
}


def _linked(dataset_id: str, column: InstrumentedAttribute[Any], *where: Any) -> Any:
    table = column.class_
    linked = select(table.individual_id).where(table.dataset_id == dataset_id, *where)
    if table is PhenotypicFeature:
        linked = linked.where(PhenotypicFeature.excluded.is_(False))
    return Individual.id.in_(linked)


def _compare(column: Any, operator: str, number: float) -> ColumnElement[bool]:
    comparisons: dict[str, Callable[[], ColumnElement[bool]]] = {
        "=": lambda: column == number,
        "!": lambda: column != number,
        "<": lambda: column < number,
        ">": lambda: column > number,
        "<=": lambda: column <= number,
        ">=": lambda: column >= number,
    }
    return comparisons[operator]()


def _like_pattern(value: str) -> str:
    # Only % is a Beacon wildcard: _ and the escape character are literal.
    escaped = value.lower().replace("\\", "\\\\").replace("_", "\\_")
    return escaped


def _text_condition(test: _TextTest) -> ColumnElement[bool]:
    columns = _TEXT_COLUMNS[test.field]
    value = test.fold(test.value)
    matches = []
    for column in columns:
        folded: Any = func.lower(column)
        if test.underscore_is_space:
            folded = func.trim(func.replace(folded, "_", " "))
        matches.append(
            folded.like(_like_pattern(value), escape="\\")
            if test.wildcard
            else folded == value
        )
    if test.operator == "=":
        return or_(*matches)
    return and_(columns[0].is_not(None), not_(or_(*matches)))


def individuals_matching(
    session: Session,
    dataset_id: str,
    filters: Sequence[Filter],
    *,
    entry_type: str,
) -> frozenset[str] | None:
    """The ids of a dataset's individuals that satisfy every filter.

    Parameters
    ----------
    session
        A session on the node's metadata database.
    dataset_id
        A published dataset.
    filters
        The request's filters (combined with AND).
    entry_type
        The entry type queried, one of :data:`ENTRY_TYPES`; for types other than
        ``individuals`` the caller keeps the records linked to the ids returned.

    Returns
    -------
    frozenset of str or None
        None when there are no filters (no restriction), else the matching ids,
        possibly none.

    Raises
    ------
    BeaconRequestError
        For a filter this node does not understand: an unknown vocabulary, HP
        term, alphanumeric or custom field or scope, a custom filter that is not
        ``<field>:<value>``, a wrong operator or value.
    NotFoundError
        If the dataset is not published.
    ValueError
        If ``entry_type`` is not one of :data:`ENTRY_TYPES`.
    """
    if entry_type not in ENTRY_TYPES:
        raise ValueError(f"unknown entry type {entry_type!r}")
    if not filters:
        return None
    custom_terms = _check_filters(filters)
    published = published_datasets().where(Dataset.id == dataset_id)
    if session.scalars(published).first() is None:
        raise NotFoundError(f"dataset {dataset_id!r} is not published")
    codes = _DatasetCodes(session, dataset_id)
    conditions: list[ColumnElement[bool]] = []
    for index, (item, custom) in enumerate(zip(filters, custom_terms, strict=True)):
        _spend()
        if custom is not None:
            conditions.append(_text_condition(custom))
            continue
        if item.kind == "ontology":
            matches = _code_matcher(index, item)
            options = []
            for column in (*_INDIVIDUAL_COLUMNS, *_LINKED_COLUMNS):
                _spend()
                found = sorted(filter(matches, codes.get(column)))
                if not found:
                    continue
                if column.class_ is Individual:
                    options.append(column.in_(found))
                else:
                    options.append(_linked(dataset_id, column, column.in_(found)))
            if not options:
                # A known term no one here has: nothing can match.
                return frozenset()
            conditions.append(or_(*options))
            continue
        kind = _alphanumeric_kind(index, item, codes.get(Measure.assay_id))
        operator = item.operator or "="
        if kind == "text":
            conditions.append(_text_condition(_alphanumeric_text(item)))
        elif kind == "numeric":
            number = _number(index, item, age=True)
            conditions.append(_compare(Individual.age_years, operator, number))
        else:
            number = _number(index, item, age=False)
            conditions.append(
                _linked(
                    dataset_id,
                    Measure.assay_id,
                    Measure.assay_id == item.id,
                    _compare(Measure.value, operator, number),
                )
            )
    query = select(Individual.id).where(Individual.dataset_id == dataset_id)
    return frozenset(session.scalars(query.where(*conditions)))


# -------------------------------------------------------------------- naive twin


def _term_ids(record: dict[str, Any]) -> list[str]:
    """Every ontology id an individual document carries, where filters look."""
    ids = [record.get(key, {}).get("id") for key in ("sex", "ethnicity")]
    ids.append(record.get("geographicOrigin", {}).get("id"))
    ids += [d["diseaseCode"]["id"] for d in record.get("diseases", [])]
    ids += [
        f["featureType"]["id"]
        for f in record.get("phenotypicFeatures", [])
        if not f.get("excluded", False)
    ]
    ids += [m["assayCode"]["id"] for m in record.get("measures", [])]
    return [term for term in ids if term is not None]


def _naive_text(test: _TextTest, record: dict[str, Any]) -> bool:
    if test.field == "countryOfBirth":
        values = [record.get("country_of_birth")]
    else:
        term = record.get(test.field)
        values = [term.get("id"), term.get("label")] if term else [None]
    if values[0] is None:
        return False
    wanted = test.fold(test.value)
    if test.wildcard:
        pattern = ".*".join(re.escape(part) for part in wanted.split("%"))
        found = any(re.fullmatch(pattern, test.fold(v), re.S) for v in values if v)
    else:
        found = any(test.fold(v) == wanted for v in values if v)
    return found if test.operator == "=" else not found


def _naive_compare(value: float | None, operator: str, number: float) -> bool:
    if value is None:
        return False
    return {
        "=": value == number,
        "!": value != number,
        "<": value < number,
        ">": value > number,
        "<=": value <= number,
        ">=": value >= number,
    }[operator]


def _naive_test(
    index: int, item: Filter, custom: _TextTest | None, assays: set[str]
) -> Callable[[dict[str, Any]], bool]:
    """Whether one document satisfies one filter."""
    if custom is not None:
        return lambda record: _naive_text(custom, record)
    if item.kind == "ontology":
        matches = _code_matcher(index, item)
        return lambda record: any(map(matches, _term_ids(record)))
    kind = _alphanumeric_kind(index, item, assays)
    operator = item.operator or "="
    if kind == "text":
        text = _alphanumeric_text(item)
        return lambda record: _naive_text(text, record)
    number = _number(index, item, age=kind == "numeric")
    if kind == "numeric":
        return lambda record: _naive_compare(record.get("age_years"), operator, number)
    return lambda record: any(
        _naive_compare(measure["measurementValue"].get("value"), operator, number)
        for measure in record.get("measures", [])
        if measure["assayCode"]["id"] == item.id
    )


def naive_individuals_matching(
    records: list[dict[str, Any]], filters: Sequence[Filter]
) -> frozenset[str] | None:
    """:func:`individuals_matching`, computed by reading every document.

    Parameters
    ----------
    records
        Beacon v2 individual documents (as in ``tests/data/cineca/individuals.json``).
        Age and country of birth are not in the Beacon v2 individual model; they are
        read from the optional keys ``age_years`` (a number) and
        ``country_of_birth``, which mirror the node's columns.
    filters
        The filters, combined with AND.

    Returns
    -------
    frozenset of str or None
        As :func:`individuals_matching`.
    """
    if not filters:
        return None
    custom_terms = _check_filters(filters)
    assays = {m["assayCode"]["id"] for r in records for m in r.get("measures", [])}
    tests = [
        _naive_test(index, item, custom, assays)
        for index, (item, custom) in enumerate(zip(filters, custom_terms, strict=True))
    ]
    return frozenset(
        record["id"] for record in records if all(test(record) for test in tests)
    )

"""Hypothesis strategies for hostile HTTP input, and how much of it to send.

A :class:`Hostile` is one request body with its content type and whether the
server must refuse it (a 4xx) or only survive it (no 5xx): a body that is not
UTF-8, JSON nested past any sane depth, integers of thousands of digits, huge
arrays, ten thousand Beacon filters, ids with NUL, lone surrogates (as JSON
escapes) and bidirectional marks, empty bodies, wrong content types, and JSON
that is a list, string or number where an object belongs.

How many examples each fuzz test runs: a bounded default (CI), or
``GENOMENODE_FUZZ_EXAMPLES`` for every test (a developer's longer run, which also
shrinks what fails). Examples are derandomised under CI so a red run names the
same input the next time.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import string
import urllib.parse

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from genomenode.beacon.requests import GET_PARAMETERS
from genomenode.vocab import ontology

#: Set to fuzz longer: every fuzz test runs this many examples.
EXAMPLES_VARIABLE = "GENOMENODE_FUZZ_EXAMPLES"

#: Longer than any integer a request needs (limits are ~100 digits) and than
#: Python's own 4,300-digit conversion limit.
HUGE_DIGITS = 5_000
#: Deeper than any JSON a request needs (the nesting limit is ~64).
DEEP_LEVELS = 1_000
HUGE_ARRAY = 100_000
MANY_FILTERS = 10_000


def fuzz_settings(default_examples: int) -> settings:
    """Settings for one fuzz test: ``default_examples`` unless overridden.

    The bounded run does not shrink a failing example (shrinking several distinct
    failures can take minutes); a run with ``GENOMENODE_FUZZ_EXAMPLES`` does.
    """
    chosen = os.environ.get(EXAMPLES_VARIABLE)
    examples = int(chosen or default_examples)
    phases = list(Phase) if chosen else [p for p in Phase if p is not Phase.shrink]
    return settings(
        max_examples=examples,
        phases=phases,
        deadline=None,
        derandomize=bool(os.environ.get("CI")),
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
        print_blob=True,
    )


@dataclasses.dataclass(frozen=True)
class Hostile:
    """A hostile request body.

    Attributes
    ----------
    kind
        What it is, for the failure message.
    body
        The raw bytes sent.
    content_type
        The Content-Type header sent (None: none).
    refused
        The server must answer a 4xx; otherwise it must only not fail (a body
        like ``{}`` with an odd Content-Type may well be served).
    """

    kind: str
    body: bytes
    content_type: str | None = "application/json"
    refused: bool = True

    def headers(self) -> dict[str, str]:
        return {"content-type": self.content_type} if self.content_type else {}

    def __repr__(self) -> str:
        return (
            f"Hostile({self.kind!r}, {len(self.body)} bytes {self.body[:60]!r}..., "
            f"{self.content_type!r}, refused={self.refused})"
        )


# Pieces.

#: Characters that break naive id handling: NUL, bidi overrides and marks,
#: zero-width and BOM, a combining mark, an astral character, line breaks.
ODD_CHARACTERS = "\x00\u202e\u202d\u200f\u200e\u2066\u200b\ufeff\u0301\U0001f9ec\n\r"
#: Lone UTF-16 surrogates: valid as JSON escapes, not encodable as UTF-8.
SURROGATE_ESCAPES = ("\\ud800", "\\udfff", "\\udbff", "\\ud83e")
#: Byte sequences that are never UTF-8.
NOT_UTF8 = (b"\xd4", b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80")


@st.composite
def huge_integers(draw: st.DrawFn, *, min_digits: int = HUGE_DIGITS) -> str:
    """The text of an integer with thousands of digits, maybe negative."""
    digits = draw(st.integers(min_value=min_digits, max_value=min_digits + 1_000))
    first = draw(st.sampled_from("123456789"))
    sign = draw(st.sampled_from(["", "-"]))
    return sign + first + "9" * (digits - 1)


def odd_text(*, min_size: int = 1, max_size: int = 40) -> st.SearchStrategy[str]:
    """Text rich in the characters that break id handling (no surrogates)."""
    return st.text(
        alphabet=st.one_of(
            st.sampled_from(ODD_CHARACTERS),
            st.sampled_from(string.ascii_letters + string.digits + ":-_./%"),
            st.characters(blacklist_categories=("Cs",)),
        ),
        min_size=min_size,
        max_size=max_size,
    )


@st.composite
def odd_json_strings(draw: st.DrawFn) -> str:
    """A JSON string literal with odd characters and maybe a lone surrogate."""
    literal = json.dumps(draw(odd_text()))
    if draw(st.booleans()):
        escape = draw(st.sampled_from(SURROGATE_ESCAPES))
        at = draw(st.integers(1, len(literal) - 1))
        literal = literal[:at] + escape + literal[at:]
    return literal


def _deep(levels: int, opener: str) -> bytes:
    if opener == "[":
        return ("[" * levels + "]" * levels).encode()
    return ('{"a":' * levels + "1" + "}" * levels).encode()


# Bodies.


@st.composite
def not_utf8_bodies(draw: st.DrawFn) -> Hostile:
    before = draw(st.sampled_from([b"", b'{"query": "', b"[", b'{"subject": "x']))
    bad = draw(st.sampled_from(NOT_UTF8))
    after = draw(st.binary(max_size=16))
    return Hostile("not UTF-8", before + bad + after)


@st.composite
def deep_bodies(draw: st.DrawFn) -> Hostile:
    levels = draw(st.integers(DEEP_LEVELS, 4 * DEEP_LEVELS))
    opener = draw(st.sampled_from(["[", "{"]))
    body = _deep(levels, opener)
    if draw(st.booleans()):
        # Deep inside an object a route reads.
        body = b'{"query": {"filters": ' + body + b"}}"
    return Hostile(f"nested {levels} levels", body)


@st.composite
def huge_integer_bodies(draw: st.DrawFn, fields: tuple[str, ...]) -> Hostile:
    number = draw(huge_integers())
    field = draw(st.sampled_from((*fields, "limit", "skip", "start", "end")))
    shape = draw(st.sampled_from(["flat", "beacon", "list"]))
    if shape == "flat":
        text = f'{{"{field}": {number}}}'
    elif shape == "beacon":
        text = f'{{"query": {{"pagination": {{"{field}": {number}}}}}}}'
    else:
        text = f'{{"{field}": [{number}]}}'
    return Hostile(f"{len(number)}-digit integer", text.encode())


def not_object_bodies() -> st.SearchStrategy[Hostile]:
    return st.sampled_from(
        [
            Hostile("a list", b"[]"),
            Hostile("a list of objects", b'[{"query": {}}]'),
            Hostile("a string", b'"{}"'),
            Hostile("a number", b"42"),
            Hostile("a float", b"1e308"),
            Hostile("true", b"true"),
            # null may reasonably mean "no body".
            Hostile("null", b"null", refused=False),
        ]
    )


@st.composite
def huge_array_bodies(draw: st.DrawFn, list_field: str | None) -> Hostile:
    size = draw(st.integers(HUGE_ARRAY, HUGE_ARRAY + 10))
    item = draw(st.sampled_from(['"a"', "0", "{}", '{"id": "HP:0000118"}']))
    array = "[" + ",".join([item] * size) + "]"
    if list_field is None or draw(st.booleans()):
        # At the top: not an object either way.
        return Hostile(f"{size}-item array", array.encode())
    return Hostile(f"{size}-item {list_field}", f'{{"{list_field}": {array}}}'.encode())


@functools.cache
def hpo_terms() -> tuple[str, ...]:
    """Every HPO phenotype term id: filters that pass the ontology check, so
    only their number can make a request bad."""
    return tuple(sorted(ontology.descendants("HP:0000118")))


def many_filters_body(count: int = MANY_FILTERS) -> bytes:
    """A Beacon body with ``count`` distinct, valid HPO filters."""
    filters = [{"id": term} for term in hpo_terms()[:count]]
    assert len(filters) == count
    return json.dumps({"query": {"filters": filters}}).encode()


@st.composite
def odd_id_bodies(draw: st.DrawFn, id_fields: tuple[str, ...]) -> Hostile:
    """Ids with NUL, surrogates and bidi marks where the route reads an id."""
    literal = draw(odd_json_strings())
    field = draw(st.sampled_from(id_fields))
    if field == "filters":
        text = f'{{"query": {{"filters": [{{"id": {literal}}}]}}}}'
    elif field == "regions":
        text = f'{{"regions": [{{"referenceName": {literal}}}]}}'
    elif field in ("bulk_object_ids", "members", "visas"):
        text = f'{{"{field}": [{literal}]}}'
    elif field == "apiVersion":
        text = f'{{"meta": {{"apiVersion": {literal}}}}}'
    elif field == "referenceName":
        text = f'{{"query": {{"requestParameters": {{"referenceName": {literal}}}}}}}'
    else:
        text = f'{{"{field}": {literal}}}'
    return Hostile("odd id", text.encode("utf-8"), refused=False)


MULTIPART = b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n'


def content_type_bodies() -> st.SearchStrategy[Hostile]:
    return st.sampled_from(
        [
            Hostile("XML", b"<query><id>1</id></query>", "application/xml"),
            Hostile("a form", b"a=1&b=%ff&c", "application/x-www-form-urlencoded"),
            Hostile(
                "multipart",
                MULTIPART,
                "multipart/form-data; boundary=x",
            ),
            Hostile("binary", bytes(range(256)), "application/octet-stream"),
            Hostile("latin-1 JSON", '{"subject": "é"}'.encode("latin-1")),
            # RFC 8259 asks for UTF-8, but Python's json reads UTF-16 too.
            Hostile("UTF-16 JSON", "{}".encode("utf-16"), refused=False),
            Hostile("garbage type", b"{}", "application/json; charset=\x7f", False),
            Hostile("no type", b"{}", None, refused=False),
            Hostile("text JSON", b"{}", "text/plain", refused=False),
        ]
    )


def empty_bodies() -> st.SearchStrategy[Hostile]:
    return st.sampled_from(
        [
            Hostile("empty", b"", refused=False),
            Hostile("whitespace", b" \r\n\t ", refused=False),
            Hostile("empty, no type", b"", None, refused=False),
        ]
    )


def hostile_bodies(
    *,
    id_fields: tuple[str, ...] = ("id",),
    list_field: str | None = None,
    beacon: bool = False,
    costly: bool = True,
) -> st.SearchStrategy[Hostile]:
    """Any hostile body for a route that reads ``id_fields`` and ``list_field``;
    ``beacon``: also ten thousand filters; ``costly``: also the kinds that take
    seconds where they are not refused at once (huge arrays, many filters)."""
    choices = [
        not_utf8_bodies(),
        deep_bodies(),
        huge_integer_bodies(id_fields),
        not_object_bodies(),
        odd_id_bodies(id_fields),
        content_type_bodies(),
        empty_bodies(),
    ]
    if costly:
        choices.append(huge_array_bodies(list_field))
    if costly and beacon:
        choices.append(
            st.builds(lambda: Hostile(f"{MANY_FILTERS} filters", many_filters_body()))
        )
    return st.one_of(choices)


#: Bodies any POST route should take (or refuse politely), for the tests whose
#: hostile part is elsewhere.
PLAIN_BODIES = (
    b"",
    b"{}",
    b'{"query": {}}',
    b'{"query": {"requestedGranularity": "record"}}',
)


# Query strings and path segments.

#: The query parameters each API reads (by path prefix), the numeric ones apart.
QUERY_PARAMETERS = {
    "/api": sorted(GET_PARAMETERS),
    "/htsget": ["referenceName", "start", "end", "format", "class", "fields", "tags"],
    "/ga4gh/drs": ["expand", "link"],
    "/access": ["dataset", "state", "all"],
    "/catalogue": ["q", "country", "duo", "disease", "format"],
    "/network": ["node"],
    "/dev-idp": ["subject"],
}
NUMERIC_PARAMETERS = frozenset(
    {"limit", "skip", "start", "end", "variantMinLength", "variantMaxLength"}
)


def numbers_as_text() -> st.SearchStrategy[str]:
    """Numbers a parameter may not take: huge, negative, beyond int64, odd."""
    return st.one_of(
        huge_integers(min_digits=101),
        huge_integers(),
        st.integers().map(str),
        st.sampled_from(
            ["-1", "0", "9223372036854775808", "-9223372036854775809", "1e999"]
        ),
        st.sampled_from(["NaN", "inf", "1.5", "0x10", "\uff11", "1_000", " 1"]),
    )


def parameter_values() -> st.SearchStrategy[str]:
    return st.one_of(
        numbers_as_text(),
        st.sampled_from(["", ",", ",,,", "HP:0000118," * 500, "true", "record"]),
        odd_text(max_size=60),
    )


def query_parameters(path: str) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Query parameters for ``path``: mostly ones its API reads (numbers where
    numbers go), now and then one it does not know."""
    known = next(
        (
            names
            for prefix, names in QUERY_PARAMETERS.items()
            if path.startswith(prefix)
        ),
        ["x"],
    )
    # One name in ten unknown: most APIs refuse those before reading the rest.
    names = st.integers(0, 9).flatmap(
        lambda pick: odd_text(max_size=10) if pick == 0 else st.sampled_from(known)
    )
    pair = names.flatmap(
        lambda name: st.tuples(
            st.just(name),
            numbers_as_text() if name in NUMERIC_PARAMETERS else parameter_values(),
        )
    )
    return st.lists(pair, max_size=4)


def path_segments(real: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    """A percent-encoded path segment: a real id, mangled or not, or junk."""
    plain = st.one_of(
        odd_text(max_size=60),
        huge_integers(min_digits=20),
        st.sampled_from(["9223372036854775808", "-1", "0", "..", ".", "%2e%2e"]),
    )
    encoded = plain.map(lambda text: _quote(text))
    raw = st.sampled_from(
        ["%00", "%ff%fe", "%ed%a0%80", "%2e%2e", "%2F", "a%2Fb", "%25", "%c0%af"]
    )
    choices = [encoded, raw]
    if real:
        choices.append(st.sampled_from(real).map(_quote))
        choices.append(
            st.tuples(st.sampled_from(real), st.sampled_from(ODD_CHARACTERS)).map(
                lambda pair: _quote(pair[0] + pair[1])
            )
        )
    return st.one_of(choices)


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")

"""BAM records as htsget's ``fields``, ``tags`` and ``notags`` ask for them.

Each kept record is re-encoded: a field not asked for gets its SAM "missing" value
(QNAME ``*``, MAPQ 255, CIGAR ``*``, RNEXT ``*``, PNEXT 0, TLEN 0, SEQ ``*``, QUAL
``*``); FLAG, RNAME and POS are always kept, since they place the record (the slice
stays sorted and indexable). QUAL without SEQ keeps the qualities and replaces the
bases by ``N`` (BAM ties the length of QUAL to SEQ). Used by :mod:`.reads` (BAM)
and :mod:`.cram`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable

from ..errors import (
    InputError,
    StoreError,
)
from .bam_index import reg2bin

__all__ = [
    "READ_FIELDS",
    "RECORD_CORE",
    "read_parameters_change_records",
    "record_filter",
]

#: The htsget 1.3 field names of a read.
READ_FIELDS = frozenset(
    {"QNAME", "FLAG", "RNAME", "POS", "MAPQ", "CIGAR"}
    | {"RNEXT", "PNEXT", "TLEN", "SEQ", "QUAL"}
)
#: The fixed part of a BAM record after its length (SAMv1 §4.2).
RECORD_CORE = struct.Struct("<iiBBHHHiiii")
_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9]$")
_AUX_SIZES = {
    ord("A"): 1,
    ord("c"): 1,
    ord("C"): 1,
    ord("s"): 2,
    ord("S"): 2,
    ord("i"): 4,
    ord("I"): 4,
    ord("f"): 4,
}


def read_parameters_change_records(
    fields: frozenset[str] | None, tags: frozenset[str] | None, notags: frozenset[str]
) -> bool:
    """Check htsget's ``fields``, ``tags`` and ``notags``; whether records change.

    Raises
    ------
    InputError
        An unknown field, a malformed tag name, or a tag in both lists.
    """
    if fields is not None:
        unknown = sorted(set(fields) - READ_FIELDS)
        if unknown:
            raise InputError(
                f"unknown field {unknown[0]!r}; use {', '.join(sorted(READ_FIELDS))}",
                field="fields",
            )
    for name, names in (("tags", tags or frozenset()), ("notags", notags)):
        for tag in sorted(names):
            if not _TAG.match(tag):
                raise InputError(f"{tag!r} is not a tag name", field=name)
    if tags is not None and tags & notags:
        raise InputError(
            f"tag {sorted(tags & notags)[0]!r} is in both tags and notags",
            field="notags",
        )
    every_field = fields is None or fields >= READ_FIELDS
    return not (every_field and tags is None and not notags)


def record_filter(
    fields: frozenset[str] | None, tags: frozenset[str] | None, notags: frozenset[str]
) -> Callable[[bytes], bytes] | None:
    """A re-encoder of records for these parameters; ``None`` keeps them as they are."""
    if not read_parameters_change_records(fields, tags, notags):
        return None
    wanted = READ_FIELDS if fields is None else fields

    def keep_tag(tag: bytes) -> bool:
        name = tag.decode("ascii", "replace")
        return (tags is None or name in tags) and name not in notags

    return lambda record: _reencode(record, wanted, keep_tag)


def _reencode(
    record: bytes, fields: frozenset[str], keep_tag: Callable[[bytes], bool]
) -> bytes:
    (
        tid,
        position,
        name_length,
        mapq,
        bin_number,
        num_cigar,
        flag,
        sequence_length,
        next_tid,
        next_position,
        template_length,
    ) = RECORD_CORE.unpack_from(record, 4)
    offset = 4 + RECORD_CORE.size
    name = record[offset : offset + name_length]
    offset += name_length
    cigar = record[offset : offset + 4 * num_cigar]
    offset += 4 * num_cigar
    sequence = record[offset : offset + (sequence_length + 1) // 2]
    offset += (sequence_length + 1) // 2
    quality = record[offset : offset + sequence_length]
    offset += sequence_length
    tag_items = _aux_items(record, offset)
    # A CIGAR of more than 65535 operations lives in the CG tag, the record's
    # CIGAR a placeholder: it stays with the CIGAR, whatever the tag filter says.
    kept_tags = [
        item
        for tag, item in tag_items
        if keep_tag(tag) or (tag == b"CG" and "CIGAR" in fields)
    ]
    if "CIGAR" not in fields:
        kept_tags = [item for item in kept_tags if item[:2] != b"CG"]
    if "QNAME" not in fields:
        name = b"*\0"
    if "MAPQ" not in fields:
        mapq = 255
    if "CIGAR" not in fields and num_cigar:
        cigar, num_cigar = b"", 0
        bin_number = reg2bin(max(position, 0), max(position, 0) + 1)
    if "RNEXT" not in fields:
        next_tid = -1
    if "PNEXT" not in fields:
        next_position = -1
    if "TLEN" not in fields:
        template_length = 0
    if "SEQ" not in fields and "QUAL" not in fields:
        sequence, quality, sequence_length = b"", b"", 0
    elif "SEQ" not in fields:
        sequence = b"\xff" * len(sequence)  # N, base code 15
    elif "QUAL" not in fields:
        quality = b"\xff" * sequence_length
    body = b"".join(
        [
            RECORD_CORE.pack(
                tid,
                position,
                len(name),
                mapq,
                bin_number,
                num_cigar,
                flag,
                sequence_length,
                next_tid,
                next_position,
                template_length,
            ),
            name,
            cigar,
            sequence,
            quality,
            *kept_tags,
        ]
    )
    return struct.pack("<i", len(body)) + body


def _aux_items(record: bytes, offset: int) -> list[tuple[bytes, bytes]]:
    """(tag, the tag's bytes) of each optional field from ``offset`` on."""
    items = []
    while offset < len(record):
        start = offset
        tag = record[offset : offset + 2]
        kind = record[offset + 2]
        offset += 3
        if kind in _AUX_SIZES:
            offset += _AUX_SIZES[kind]
        elif kind in (ord("Z"), ord("H")):
            offset = record.index(b"\0", offset) + 1
        elif kind == ord("B"):
            subtype = record[offset]
            (count,) = struct.unpack_from("<i", record, offset + 1)
            offset += 5 + count * _AUX_SIZES.get(subtype, 0)
            if subtype not in _AUX_SIZES:
                raise StoreError(f"damaged BAM: tag {tag!r} has array type {subtype}")
        else:
            raise StoreError(f"damaged BAM: tag {tag!r} has type {kind}")
        if offset > len(record):
            raise StoreError(f"damaged BAM: tag {tag!r} runs past its record")
        items.append((tag, record[start:offset]))
    return items

"""GA4GH htsget 1.3: tickets for slices of granted variant and read files.

Routes (:mod:`genomenode.transfer.htsget_http`, mounted under ``/htsget``):

- ``GET|POST /variants/{id}``: ``id`` is a dataset id (its joint-called VCF) or the
  id of a stored VCF; ``format`` VCF (default) or BCF;
- ``GET|POST /reads/{id}``: ``id`` is the id of a stored BAM; ``format`` BAM;
  ``fields``, ``tags``, ``notags``;
- ``GET /blocks/{kind}/{id}``: the bytes behind a ticket's URLs (not in the spec's
  API; reached through the ticket).
- ``GET /variants/service-info``, ``GET /reads/service-info``: GA4GH service-info
  of type ``org.ga4gh:htsget:1.3.0`` (:func:`service_info`).

A GET's parameters are its query string, each given once; a POST's are its JSON
body alone (URL parameters are refused), with ``regions`` (when given) naming at
least one region, each with a ``referenceName`` and JSON-integer positions.

A ticket (``{"htsget": {"format", "urls": [...]}}``) lists, in order: the header as
an inline ``data:`` URI, one URL per region served by the node, and the BGZF
end-of-file block inline; concatenated they are a valid file holding exactly the
records overlapping the regions. Each URL carries a short-lived signed link in its
``Authorization`` header (the caller's passport never travels in a ticket), and each
block request is authorised again, so a grant revoked after the ticket stops the
blocks requested after it.
Ticket URLs are absolute under the node's ``public_url`` setting, never under the
request's ``Host``.

Parameters follow the spec: ``start`` is 0-based inclusive, ``end`` 0-based
exclusive, and a range holds at least one base (``start < end``);
``class=header`` asks for the header only and takes no other parameter than
``format``. Errors are htsget error documents (``{"htsget": {"error":
"InvalidRange", "message": ...}}``) made in the node's one error handler.

This module is the protocol: :func:`parse_query` validates a request,
:func:`ticket` answers it, :func:`block_chunks` streams a block; the routes read
the request and call them.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from ..access.decision import Caller
from ..errors import (
    InputError,
    InvalidRangeError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedFormatError,
)
from .cram import StoredCram
from .reads import ReadRegion, StoredReads
from .service import StoredObject, TransferService
from .variants import Region, StoredVariants, regions_as_named

__all__ = [
    "FORMATS",
    "HTSGET_MEDIA_TYPE",
    "MAX_REGIONS",
    "HtsgetFiles",
    "HtsgetQuery",
    "block_chunks",
    "block_resource",
    "parse_query",
    "service_info",
    "ticket",
]

HTSGET_MEDIA_TYPE = "application/vnd.ga4gh.htsget.v1.3.0+json"
HTSGET_VERSION = "1.3.0"
#: More regions than this in one POST is a PayloadTooLarge (the default of the
#: ``htsget_max_regions`` setting).
MAX_REGIONS = 100
#: The output formats of each kind of file (the first is the default).
FORMATS = {"variants": ("VCF", "BCF"), "reads": ("BAM", "CRAM")}
_READ_FIELDS = frozenset(
    {"QNAME", "FLAG", "RNAME", "POS", "MAPQ", "CIGAR", "RNEXT", "PNEXT", "TLEN"}
    | {"SEQ", "QUAL"}
)
_MEDIA = {
    "VCF": "application/vnd.ga4gh.vcf",
    "BCF": "application/vnd.ga4gh.bcf",
    "BAM": "application/vnd.ga4gh.bam",
    "CRAM": "application/vnd.ga4gh.cram",
}

Kind = Literal["variants", "reads"]


@dataclasses.dataclass(frozen=True)
class HtsgetQuery:
    """One ticket request, validated."""

    kind: Kind
    format: str
    header_only: bool
    regions: tuple[ReadRegion, ...] | None  # None: the whole file
    fields: frozenset[str] | None = None
    tags: frozenset[str] | None = None
    notags: frozenset[str] = frozenset()


def _integer(value: object, name: str, *, post: bool) -> int:
    # A GET parameter is text; a POST's is a JSON number, and only an integer
    # one (10.5, "10" and true are not positions).
    if isinstance(value, bool) or (post and not isinstance(value, int)):
        raise InputError(
            f"{name} must be an integer, not {str(value)[:40]!r}", field=name
        )
    if isinstance(value, str) and len(value.strip()) > 20:
        raise InputError(f"{name} is too long to be a position", field=name)
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise InputError(
            f"{name} must be an integer, not {str(value)[:40]!r}", field=name
        ) from None
    if number < 0:
        raise InvalidRangeError(f"{name} must not be negative", field=name)
    if number > _MAX_POSITION:
        raise InvalidRangeError(f"{name} is past any reference ({number})", field=name)
    return number


#: Positions are 64-bit in htsget and every index format.
_MAX_POSITION = 2**63 - 1


_REGION_KEYS = frozenset({"referenceName", "start", "end"})


def _region(
    kind: Kind, document: Mapping[str, Any], where: str, *, post: bool
) -> ReadRegion:
    name = document.get("referenceName")
    start = document.get("start")
    end = document.get("end")
    if post:
        unknown = sorted(set(document) - _REGION_KEYS)
        if unknown:
            raise InputError(
                f"{where}unknown key {unknown[0]!r} in a region", field="regions"
            )
        if name is None:
            raise InputError(f"{where}a region needs a referenceName", field="regions")
    if name is None:
        if start is not None or end is not None:
            raise InputError(
                f"{where}start and end need a referenceName", field="start"
            )
        return ReadRegion(None)
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}referenceName must be a name", field="referenceName")
    if name == "*" and kind == "variants":
        raise InputError(
            "referenceName '*' is for unplaced reads only", field="referenceName"
        )
    if name == "*" and (start is not None or end is not None):
        raise InputError("referenceName '*' takes no start or end", field="start")
    first = None if start is None else _integer(start, "start", post=post)
    last = None if end is None else _integer(end, "end", post=post)
    if first is not None and last is not None and first >= last:
        # start == end is a range of no bases: nothing can be in it.
        raise InvalidRangeError(
            f"{where}start {first} is not before end {last}", field="start"
        )
    return ReadRegion(name, first, last)


def _names(value: object, name: str, *, post: bool = False) -> frozenset[str] | None:
    # GET: comma-separated text (empty: none); POST: a JSON array of strings.
    if value is None:
        return None
    if isinstance(value, str) and not post:
        items = [item for item in value.split(",") if item]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = list(value)
    else:
        form = "an array of strings" if post else "a comma-separated list"
        raise InputError(f"{name} must be {form}", field=name)
    return frozenset(items)


def parse_query(
    kind: Kind,
    parameters: Mapping[str, Any],
    *,
    post: bool,
    max_regions: int = MAX_REGIONS,
) -> HtsgetQuery:
    """Validate a GET query string or POST body into an :class:`HtsgetQuery`.

    A POST may name at most ``max_regions`` regions (the ``htsget_max_regions``
    setting).

    Raises
    ------
    UnsupportedFormatError, InvalidRangeError, InputError, PayloadTooLargeError
        As the htsget errors of the same names (InputError is InvalidInput).
    """
    known = {"format", "class", "fields", "tags", "notags"}
    known |= {"regions"} if post else {"referenceName", "start", "end"}
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise InputError(f"unknown parameter {unknown[0]!r}", field=unknown[0])
    requested_format = parameters.get("format")
    if requested_format is not None and not isinstance(requested_format, str):
        raise InputError("format must be a string", field="format")
    output_format = (requested_format or FORMATS[kind][0]).upper()
    if output_format not in FORMATS[kind]:
        raise UnsupportedFormatError(
            f"format {output_format!r} is not served for {kind} "
            f"({', '.join(FORMATS[kind])})",
            field="format",
        )
    request_class = parameters.get("class")
    if request_class not in (None, "header"):
        raise InputError(
            f"class must be 'header', not {request_class!r}", field="class"
        )
    fields = _names(parameters.get("fields"), "fields", post=post)
    tags = _names(parameters.get("tags"), "tags", post=post)
    given_notags = _names(parameters.get("notags"), "notags", post=post)
    notags = given_notags or frozenset()
    if kind == "variants" and (
        fields is not None or tags is not None or given_notags is not None
    ):
        raise InputError("fields, tags and notags are for reads only", field="fields")
    if fields is not None and fields - _READ_FIELDS:
        bad = sorted(fields - _READ_FIELDS)[0]
        raise InputError(f"unknown field {bad!r}", field="fields")
    if tags is not None and tags & notags:
        raise InputError("a tag may not be in both tags and notags", field="tags")
    if post:
        raw_regions = parameters.get("regions")
        if raw_regions is None:
            regions: tuple[ReadRegion, ...] | None = None
        elif not isinstance(raw_regions, list) or not all(
            isinstance(item, dict) for item in raw_regions
        ):
            raise InputError("regions must be a list of objects", field="regions")
        elif not raw_regions:
            raise InputError(
                "regions must name at least one region (leave it out for the "
                "whole file)",
                field="regions",
            )
        elif len(raw_regions) > max_regions:
            raise PayloadTooLargeError(
                f"{len(raw_regions)} regions in one request (at most {max_regions}, "
                "htsget_max_regions)"
            )
        else:
            regions = tuple(
                _region(kind, item, f"regions[{number}]: ", post=True)
                for number, item in enumerate(raw_regions)
            )
    else:
        region = _region(kind, parameters, "", post=False)
        regions = None if region.reference_name is None else (region,)
    if request_class == "header" and (
        regions is not None
        or fields is not None
        or tags is not None
        or given_notags is not None
    ):
        raise InputError(
            "class=header takes no other parameter than format", field="class"
        )
    return HtsgetQuery(
        kind=kind,
        format=output_format,
        header_only=request_class == "header",
        regions=regions,
        fields=fields,
        tags=tags,
        notags=notags,
    )


def service_info(
    kind: Kind,
    *,
    node_id: str,
    version: str,
    organisation_name: str,
    organisation_url: str,
    environment: str,
) -> dict[str, Any]:
    """The GA4GH service-info of the ``kind`` endpoint (htsget 1.3.0's
    ``/reads/service-info`` and ``/variants/service-info``).

    The ``htsget`` object says what the endpoint serves: its ``datatype``, its
    ``formats`` and whether ``fields`` and ``tags``/``notags`` take effect
    (they do for reads, and are refused for variants).
    """
    effective = kind == "reads"
    return {
        "id": f"org.genomenode.{node_id}.htsget.{kind}",
        "name": f"genomenode htsget {kind} {node_id}",
        "type": {"group": "org.ga4gh", "artifact": "htsget", "version": HTSGET_VERSION},
        "description": (
            f"GA4GH htsget {HTSGET_VERSION} {kind} of the genomenode node {node_id}: "
            "slices of the files of its published datasets, for callers a data "
            "access committee has granted access."
        ),
        "organization": {"name": organisation_name, "url": organisation_url},
        "version": version,
        "environment": environment,
        "htsget": {
            "datatype": kind,
            "formats": list(FORMATS[kind]),
            "fieldsParametersEffective": effective,
            "tagsParametersEffective": effective,
        },
    }


def _data_uri(media: str, payload: bytes) -> str:
    return f"data:{media};base64,{base64.b64encode(payload).decode()}"


def _region_text(region: ReadRegion | None) -> str:
    if region is None or region.reference_name is None:
        return "all"
    start = "" if region.start is None else str(region.start)
    end = "" if region.end is None else str(region.end)
    return f"{region.reference_name}:{start}-{end}"


def _region_of(text: str) -> ReadRegion | None:
    if text == "all":
        return None
    name, _, span = text.rpartition(":")
    start, _, end = span.partition("-")
    return ReadRegion(name, int(start) if start else None, int(end) if end else None)


def _regions_text(regions: Sequence[ReadRegion] | None) -> str:
    if regions is None:
        return "all"
    return ";".join(_region_text(item) for item in regions)


def _regions_of(text: str) -> list[ReadRegion] | None:
    if text == "all":
        return None
    if text == "header":
        return []
    return [region for item in text.split(";") if (region := _region_of(item))]


def _block_parameters(
    query: HtsgetQuery, regions: Sequence[ReadRegion] | None
) -> dict[str, str]:
    parameters = {"format": query.format, "region": _regions_text(regions)}
    if query.fields is not None:
        parameters["fields"] = ",".join(sorted(query.fields))
    if query.tags is not None:
        parameters["tags"] = ",".join(sorted(query.tags))
    if query.notags:
        parameters["notags"] = ",".join(sorted(query.notags))
    return parameters


def block_resource(kind: str, object_id: str, parameters: Mapping[str, str]) -> str:
    """What a block link opens: the object and every parameter of the block."""
    return f"htsget:{kind}:{object_id}:" + json.dumps(parameters, sort_keys=True)


class HtsgetFiles:
    """The stored object behind an htsget id, and its slicer (one per app:
    ``app.state.htsget_files``)."""

    def __init__(self, service: TransferService) -> None:
        self.service = service
        # Published files never change: one slicer (and its parsed index) each.
        self._variants: dict[str, StoredVariants] = {}
        self._reads: dict[str, StoredReads | StoredCram] = {}

    def variants_object(self, identifier: str) -> StoredObject:
        if ":" not in identifier:
            found = self.service.objects(identifier, role="genotypes")
            if not found:
                raise NotFoundError(f"dataset {identifier!r} has no stored VCF")
            return found[0]
        stored = self.service.object(identifier)
        if stored.role != "genotypes":
            raise NotFoundError(f"{identifier!r} is not a variants file")
        return stored

    def reads_object(self, identifier: str) -> StoredObject:
        stored = self.service.object(identifier)
        if stored.role != "alignments":
            raise NotFoundError(f"{identifier!r} is not a reads file")
        return stored

    def _read_index(self, index_object: StoredObject) -> tuple[bytes, str]:
        """An index file's bytes (decrypted in memory) and its kind (suffix)."""
        reader = self.service.reader(index_object)
        kind = index_object.name.rsplit(".", 1)[-1].lower()
        return reader.read(0, reader.plaintext_size), kind

    def _vcf_index(self, stored: StoredObject) -> tuple[bytes | None, Any]:
        for candidate in self.service.objects(
            stored.dataset_id, role="genotypes-index"
        ):
            if candidate.name.rsplit(".", 1)[0] == stored.name:
                return self._read_index(candidate)
        return None, None

    def variants(self, stored: StoredObject) -> StoredVariants:
        if stored.id not in self._variants:
            index, kind = self._vcf_index(stored)
            reader = self.service.reader(stored)
            self._variants[stored.id] = StoredVariants(
                reader.read, reader.plaintext_size, index=index, index_kind=kind
            )
        return self._variants[stored.id]

    def reads(self, stored: StoredObject) -> StoredReads | StoredCram:
        if stored.id not in self._reads:
            self._reads[stored.id] = self._open_reads(stored)
        return self._reads[stored.id]

    def _open_reads(self, stored: StoredObject) -> StoredReads | StoredCram:
        # dataset.json ties each alignment file to its index and (CRAM) reference.
        manifest = self.service.node.dataset_manifest(stored.dataset_id)
        entry: dict[str, Any] = next(
            (
                item
                for item in manifest.get("alignments") or []
                if item.get("file") == stored.id
            ),
            {},
        )
        index: bytes | None = None
        kind: str | None = None
        if entry.get("index"):
            index, kind = self._read_index(self.service.object(str(entry["index"])))
        reader = self.service.reader(stored)
        if stored.file_format.upper() == "CRAM":
            if not entry.get("reference"):
                raise UnsupportedFormatError(
                    f"{stored.id!r} is CRAM without a stored reference", field="format"
                )
            # htslib opens the reference FASTA (and its .fai) by name: a local
            # copy when the dataset lives in an object store.
            reference = self.service.node.local_file(
                stored.dataset_id,
                str(manifest["fingerprint"]),
                str(entry["reference"]),
                companions=(".fai", ".gzi"),
            )
            return StoredCram(
                reader.read, reader.plaintext_size, index=index, reference=reference
            )
        return StoredReads(
            reader.read,
            reader.plaintext_size,
            index=index,
            index_kind=kind if kind in ("bai", "csi") else None,  # type: ignore[arg-type]
        )


def _public_base(files: HtsgetFiles) -> str:
    """Where ticket URLs point: the node's configured ``public_url``.

    Never the request's ``Host`` (or ``base_url``): a caller choosing the Host
    header would otherwise get signed links aimed at a server of their choice.
    """
    return files.service.access.issuer.rstrip("/")


def _variant_regions(regions: Sequence[ReadRegion] | None) -> list[Region] | None:
    if regions is None:
        return None
    return [Region(str(item.reference_name), item.start, item.end) for item in regions]


def _named_as_in_file(
    files: HtsgetFiles, stored: StoredObject, query: HtsgetQuery, known: set[str]
) -> HtsgetQuery:
    """``query`` with its regions named as the file names them: any spelling of a
    chromosome (``22`` of a ``chr22`` file, a RefSeq accession of the dataset's
    assembly) finds it."""
    handle = files.service.published.get(stored.dataset_id)
    assembly = None if handle is None else handle.facts.assembly
    regions = regions_as_named(query.regions, known, assembly)
    return dataclasses.replace(query, regions=regions)


def _whole_file_ticket(
    files: HtsgetFiles,
    caller: Caller,
    stored: StoredObject,
    query: HtsgetQuery,
    known: set[str],
) -> dict[str, Any]:
    """A ticket of one URL serving a whole file (CRAM: its parts cannot be served
    apart and concatenated)."""
    for region in query.regions or ():
        if region.reference_name not in known:
            raise NotFoundError(
                f"reference {region.reference_name!r} is not in {stored.id!r}"
            )
    block = _block_parameters(query, query.regions)
    if query.header_only:
        block["region"] = "header"
    link = files.service.link(
        caller, stored.dataset_id, block_resource("reads", stored.id, block)
    )
    address = (
        f"{_public_base(files)}/htsget/blocks/reads/"
        f"{urllib.parse.quote(stored.id, safe='')}?" + urllib.parse.urlencode(block)
    )
    url = {"url": address, "headers": {"Authorization": f"Bearer {link}"}}
    return {"htsget": {"format": query.format, "urls": [url]}}


def ticket(
    files: HtsgetFiles,
    caller: Caller,
    stored: StoredObject,
    query: HtsgetQuery,
    *,
    object_id: str,
) -> dict[str, Any]:
    """The ticket answering ``query`` for ``stored``, for a caller who may have it.

    Parameters
    ----------
    files
        The app's files and slicers.
    caller
        Who asked (authorised to download from ``stored``'s dataset): each block
        URL carries a link signed for them.
    stored
        The file sliced.
    query
        The validated request (its ``kind`` is ``stored``'s).
    object_id
        The id asked for, as errors name it (a dataset id names its VCF).

    Raises
    ------
    NotFoundError
        A region names a reference the file does not have.
    UnsupportedFormatError
        CRAM output of a BAM.
    """
    kind = query.kind
    base = _public_base(files)
    media = _MEDIA[query.format]
    if kind == "variants":
        slicer_v = files.variants(stored)
        known = set(slicer_v.reference_names())
        query = _named_as_in_file(files, stored, query, known)
        header = slicer_v.header_part(query.format)  # type: ignore[arg-type]
        eof = slicer_v.eof()
    else:
        slicer_r = files.reads(stored)
        known = set(slicer_r.reference_names()) | {"*"}
        query = _named_as_in_file(files, stored, query, known)
        if isinstance(slicer_r, StoredCram):
            return _whole_file_ticket(files, caller, stored, query, known)
        if query.format != "BAM":
            raise UnsupportedFormatError(
                f"{stored.id!r} is BAM; CRAM output needs a reference",
                field="format",
            )
        header = slicer_r.header_part()
        eof = slicer_r.eof()
    for region in query.regions or ():
        if region.reference_name not in known:
            raise NotFoundError(
                f"reference {region.reference_name!r} is not in {object_id!r}"
            )
    urls: list[dict[str, Any]] = [{"url": _data_uri(media, header), "class": "header"}]
    if not query.header_only:
        # Variants: one URL for all regions, so that a record overlapping two of
        # them is sent once. Reads: one URL per region.
        groups: list[Sequence[ReadRegion] | None]
        if kind == "variants" or query.regions is None:
            groups = [query.regions]
        else:
            groups = [(region,) for region in query.regions]
        for group in groups:
            block = _block_parameters(query, group)
            link = files.service.link(
                caller, stored.dataset_id, block_resource(kind, stored.id, block)
            )
            address = (
                f"{base}/htsget/blocks/{kind}/"
                f"{urllib.parse.quote(stored.id, safe='')}?"
                + urllib.parse.urlencode(block)
            )
            urls.append(
                {
                    "url": address,
                    "headers": {"Authorization": f"Bearer {link}"},
                    "class": "body",
                }
            )
    urls.append({"url": _data_uri(media, eof), "class": "body"})
    return {"htsget": {"format": query.format, "urls": urls}}


def block_chunks(
    files: HtsgetFiles, kind: str, object_id: str, parameters: Mapping[str, str]
) -> Iterator[bytes]:
    """The bytes of one block of a ticket (its link already checked); ``kind`` is
    ``variants`` or else ``reads``.

    ``parameters`` are the block URL's (``format``, ``region``, ``fields``,
    ``tags``, ``notags``). A CRAM block is a whole file, header and EOF included;
    any other block is the records only.
    """
    regions = _regions_of(parameters.get("region", "all"))
    output_format = parameters.get("format", "")
    if kind == "variants":
        slicer_v = files.variants(files.variants_object(object_id))
        return slicer_v.slice(
            _variant_regions(regions),
            output_format=output_format,  # type: ignore[arg-type]
            include_header=False,
        )
    slicer_r = files.reads(files.reads_object(object_id))
    fields = _names(parameters.get("fields"), "fields")
    tags = _names(parameters.get("tags"), "tags")
    notags = _names(parameters.get("notags"), "notags") or frozenset()
    if isinstance(slicer_r, StoredCram):
        return slicer_r.slice(
            regions,
            output_format=output_format,  # type: ignore[arg-type]
            fields=fields,
            tags=tags,
            notags=notags,
        )
    return slicer_r.body_part(
        regions[0] if regions else ReadRegion(None),
        fields=fields,
        tags=tags,
        notags=notags,
    )

"""GA4GH DRS 1.4: the stored files of published datasets as DRS objects.

Routes (:mod:`genomenode.transfer.drs_http`, mounted under ``/ga4gh/drs/v1``):

===============================================  ==================================
``GET  /service-info``                           service-info, type ``drs`` 1.4.0,
                                                 with the ``drs`` statistics block
                                                 (of the objects the caller may
                                                 fetch only)
``GET|POST /objects/{object_id}``                a stored file (a blob) or, for a
                                                 dataset id, the dataset (a bundle)
``POST /objects``                                several objects at once (bulk)
``GET|POST /objects/{object_id}/access/{id}``    an ``AccessURL`` for the bytes
``POST /objects/access``                         several ``AccessURL`` s (bulk)
``GET  /download/{object_id}``                   the bytes behind an ``AccessURL``
                                                 (not in the spec; reached from it)
===============================================  ==================================

A blob's ``size`` and ``sha-256`` checksum are those of the original file. Its one
access method (``https``, ``access_id`` ``crypt4gh``) delivers the file
Crypt4GH-encrypted to a key the caller names in the ``Crypt4GH-Public-Key``
header: the node writes a new header for that key in front of the stored body,
untouched, so nothing but the header is decrypted and only the caller can read
the bytes. Decrypted, they hold the checksum.

Every object, bundle, access URL and download is authorised like a download
(:meth:`TransferService.require`) and audited (``drs.object``, ``drs.access``,
``drs.download``); a POST may carry the passport in its body
(``{"passports": [jwt]}``, DRS's ``PassportAuth``) instead of the
``Authorization`` header. An access URL carries a short-lived signed link for one
object; the download that follows it is authorised again with the caller's grants
as they are then, so a revoked grant stops it. Errors are DRS error documents
(``{"msg", "status_code"}``) made in the node's one error handler.

This module is the protocol: the documents, the bulk answers and the download;
each function that decides for a caller takes the request, whose caller
:func:`~genomenode.access.callers.caller_of` verifies when a decision needs it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from ..access.callers import caller_of, required_access_service
from ..access.decision import authorize, dataset_access
from ..errors import (
    GenomenodeError,
    InputError,
    NotFoundError,
    PayloadTooLargeError,
    StoreError,
)
from ..store.objects import open_binary
from ..version import __version__
from .crypt4gh import PUBLIC_KEY_FIELD, Crypt4GHReader, public_key_from_text
from .service import StoredObject, transfer_service

__all__ = [
    "ACCESS_ID",
    "DOWNLOAD_ROUTE",
    "DRS_VERSION",
    "MAX_BULK_REQUEST_LENGTH",
    "access_url",
    "bundle_checksum",
    "check_expand",
    "download_response",
    "object_document",
    "prepare_passports",
    "resolve_access_urls",
    "resolve_objects",
    "service_info_document",
    "use_passports",
]

DRS_VERSION = "1.4.0"
#: The one access method of every blob: Crypt4GH to the caller's key, over https.
ACCESS_ID = "crypt4gh"
#: Most object ids in one bulk request; more is a 413.
MAX_BULK_REQUEST_LENGTH = 100
#: The name of the download route, which access URLs point to.
DOWNLOAD_ROUTE = "drs_download"
#: A POST body larger than this is a 413 (a few passports and object ids).
MAX_BODY_BYTES = 1 << 20
_CHUNK_BYTES = 1 << 20
_MIME_TYPES = {
    "JSON": "application/json",
    "JSONL": "application/x-ndjson",
    "CSV": "text/csv",
    "TSV": "text/tab-separated-values",
    "TAR": "application/x-tar",
    "YAML": "application/yaml",
}
_GZIP_SUFFIXES = (".gz", ".bgz", ".bcf", ".tbi", ".csi", ".bam")


@dataclasses.dataclass(frozen=True)
class _Origin:
    """The node answering: its public URL, the host of its ``drs://`` URIs, its
    id and country."""

    base_url: str
    host: str
    node_id: str
    country: str


def _origin(request: Request) -> _Origin:
    transfer = transfer_service(request)
    access = required_access_service(request)
    # The node's configured public URL (also the issuer of its visas); not the
    # request's Host, which a proxy in front of the node may rewrite.
    base_url = access.issuer.rstrip("/")
    return _Origin(
        base_url=base_url,
        host=urllib.parse.urlsplit(base_url).netloc,
        node_id=transfer.node.config.node_id,
        country=transfer.node.config.country,
    )


def _quoted(object_id: str) -> str:
    # DRS ids outside [A-Za-z0-9.-_~] are percent-encoded wherever they are used;
    # the ':' of a stored file id would otherwise read as a compact identifier.
    return urllib.parse.quote(object_id, safe="")


def _drs_uri(origin: _Origin, object_id: str) -> str:
    return f"drs://{origin.host}/{_quoted(object_id)}"


def _rfc3339(value: Any) -> str:
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, dt.datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    # Naive datetimes come from SQLite, which drops the zone genomenode stored: UTC.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    text = moment.astimezone(dt.UTC).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def _mime_type(stored: StoredObject) -> str:
    known = _MIME_TYPES.get(stored.file_format.upper())
    if known is not None:
        return known
    name = stored.name.lower()
    if name.endswith(_GZIP_SUFFIXES):
        # VCF.gz, BCF, BAM and their indexes are BGZF: gzip-compatible.
        return "application/gzip"
    if name.endswith(".vcf"):
        return "text/plain"
    return "application/octet-stream"


def _blob_document(stored: StoredObject, origin: _Origin) -> dict[str, Any]:
    """The DrsObject of one stored file (sizes and checksum of the plaintext)."""
    return {
        "id": stored.id,
        "name": stored.name,
        "self_uri": _drs_uri(origin, stored.id),
        "size": stored.size,
        "created_time": _rfc3339(stored.created_at),
        "updated_time": _rfc3339(stored.created_at),
        "version": stored.sha256,
        "mime_type": _mime_type(stored),
        "checksums": [{"type": "sha-256", "checksum": stored.sha256}],
        "description": (
            f"{stored.file_format} file ({stored.role}) of dataset "
            f"{stored.dataset_id} on node {origin.node_id}. The https access method "
            f"({ACCESS_ID!r}) delivers it Crypt4GH-encrypted to the public key sent "
            f"in the {PUBLIC_KEY_FIELD} header; size and checksum are those of the "
            "decrypted file."
        ),
        "access_methods": [
            {"type": "https", "access_id": ACCESS_ID, "region": origin.country}
        ],
    }


def bundle_checksum(checksums: Iterable[str]) -> str:
    """A bundle's sha-256 as DRS defines it: over its members' hex sha-256
    checksums, sorted and concatenated (names left out, not recursive)."""
    return hashlib.sha256("".join(sorted(checksums)).encode("ascii")).hexdigest()


def _member_names(members: list[StoredObject]) -> dict[str, str]:
    """Object id → a name unique within the bundle (the original file name, or
    the stored name where two inputs shared one)."""
    counts: dict[str, int] = {}
    for stored in members:
        counts[stored.name] = counts.get(stored.name, 0) + 1
    return {
        stored.id: (
            stored.name if counts[stored.name] == 1 else stored.id.split(":", 1)[1]
        )
        for stored in members
    }


def _bundle_document(
    dataset_id: str, created_at: Any, members: list[StoredObject], origin: _Origin
) -> dict[str, Any]:
    """The DrsObject of a dataset: a bundle of its stored files."""
    names = _member_names(members)
    return {
        "id": dataset_id,
        "name": dataset_id,
        "self_uri": _drs_uri(origin, dataset_id),
        "size": sum(stored.size for stored in members),
        "created_time": _rfc3339(created_at),
        "updated_time": _rfc3339(created_at),
        "checksums": [
            {
                "type": "sha-256",
                "checksum": bundle_checksum(stored.sha256 for stored in members),
            }
        ],
        "description": (
            f"The {len(members)} stored files of dataset {dataset_id} on node "
            f"{origin.node_id}; fetch each through its own DRS object."
        ),
        "contents": [
            {
                "name": names[stored.id],
                "id": stored.id,
                "drs_uri": [_drs_uri(origin, stored.id)],
            }
            for stored in members
        ],
    }


async def prepare_passports(request: Request, body: Mapping[str, Any]) -> None:
    """Fetch, without blocking, what verifying the body's passport will need
    (its keys; see :func:`~genomenode.access.callers.prepared`)."""
    passports = body.get("passports")
    if isinstance(passports, list) and passports and isinstance(passports[0], str):
        access = required_access_service(request)
        await access.authoriser.prepare("Bearer " + passports[0].strip())


def use_passports(request: Request, body: Mapping[str, Any]) -> None:
    """Make the body's first passport the request's caller (DRS ``PassportAuth``).

    It is verified (and a bad one audited) exactly as a bearer token would be;
    without ``passports`` the ``Authorization`` header speaks for the request.
    """
    passports = body.get("passports")
    if passports is None:
        return
    if (
        not isinstance(passports, list)
        or not passports
        or not all(isinstance(item, str) and item.strip() for item in passports)
    ):
        raise InputError(
            "passports must be a non-empty list of passport JWTs", field="passports"
        )
    access = required_access_service(request)
    identity, caller = access.authenticate("Bearer " + passports[0].strip())
    # caller_of reads these first: every later decision sees this caller.
    request.state.identity = identity
    request.state.caller = caller


def check_expand(value: object) -> bool:
    """The ``expand`` flag of a request (a dataset bundle holds only blobs:
    nothing nests, so it is only validated).

    Raises
    ------
    InputError
        ``value`` is neither a boolean nor ``true``/``false``.
    """
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InputError(f"expand must be true or false, not {value!r}", field="expand")


def object_document(request: Request, object_id: str) -> dict[str, Any]:
    """The DrsObject of ``object_id`` (a stored file or a dataset), if the
    caller may download it (blocking).

    Raises
    ------
    NotFoundError
        No such object.
    PermissionDenied
        The caller may not download it (audited).
    """
    transfer = transfer_service(request)
    origin = _origin(request)
    if ":" not in object_id:
        # Dataset ids never hold ':'; stored file ids always do.
        transfer.require(request, object_id, what="drs.object")
        handle = transfer.published.get(object_id)
        if handle is None:
            raise NotFoundError(f"no object {object_id!r}")
        return _bundle_document(
            object_id, handle.facts.published_at, transfer.objects(object_id), origin
        )
    stored = transfer.object(object_id)
    transfer.require(request, stored.dataset_id, what="drs.object")
    return _blob_document(stored, origin)


def _fetchable_objects(request: Request) -> list[StoredObject]:
    """The stored files the caller could fetch: what service-info may count.

    Counting every file would tell anyone that (and how much) data the caller
    may not even see exists, CONTROLLED datasets included.
    """
    transfer = transfer_service(request)
    caller = caller_of(request)
    return [
        stored
        for handle in transfer.published.datasets()
        if authorize(caller, "download", dataset_access(handle)).allowed
        for stored in transfer.objects(handle.facts.id)
    ]


def access_url(request: Request, object_id: str, access_id: str) -> dict[str, Any]:
    """The AccessURL of one object, if the caller may download it (blocking).

    Raises
    ------
    NotFoundError
        No such object or access method, or a bundle (said only to a caller
        who may fetch it).
    PermissionDenied
        The caller may not download it (audited).
    """
    transfer = transfer_service(request)
    if ":" not in object_id:
        # Dataset ids never hold ':'. Only a dataset the caller may fetch is
        # named a bundle; any other id is no object at all.
        if transfer.published.get(object_id) is None:
            raise NotFoundError(f"no object {object_id!r}")
        transfer.require(request, object_id, what="drs.access")
        raise NotFoundError(f"{object_id!r} is a bundle: fetch its contents one by one")
    stored = transfer.object(object_id)
    if access_id != ACCESS_ID:
        raise NotFoundError(
            f"no access method {access_id!r} for {object_id!r} (use {ACCESS_ID!r})"
        )
    caller = transfer.require(request, stored.dataset_id, what="drs.access")
    link = transfer.link(caller, stored.dataset_id, _resource(stored.id))
    path = request.app.url_path_for(DOWNLOAD_ROUTE, object_id=_quoted(stored.id))
    return {
        "url": f"{_origin(request).base_url}{path}?"
        + urllib.parse.urlencode({"link": link}),
        "headers": [f"{PUBLIC_KEY_FIELD}: <put your base64 public key here>"],
    }


def _resource(object_id: str) -> str:
    """What a download link opens."""
    return f"drs:{object_id}"


def _bulk_ids(body: Mapping[str, Any], name: str) -> list[Any]:
    items = body.get(name)
    if not isinstance(items, list) or not items:
        raise InputError(f"{name} must be a non-empty list", field=name)
    if len(items) > MAX_BULK_REQUEST_LENGTH:
        raise PayloadTooLargeError(
            f"{len(items)} objects in one request "
            f"(at most {MAX_BULK_REQUEST_LENGTH}; see /service-info)"
        )
    return items


def _access_requests(items: list[Any]) -> list[tuple[str, str]]:
    """(object id, access id) pairs of a bulk access request's items."""
    wanted: list[tuple[str, str]] = []
    for item in items:
        if not isinstance(item, dict):
            item = {}
        object_id = item.get("bulk_object_id")
        access_ids = item.get("bulk_access_ids", [ACCESS_ID])
        if (
            not isinstance(object_id, str)
            or not isinstance(access_ids, list)
            or not all(isinstance(name, str) for name in access_ids)
        ):
            raise InputError(
                "each item needs a bulk_object_id (and bulk_access_ids, a list)",
                field="bulk_object_access_ids",
            )
        wanted.extend((object_id, access_id) for access_id in access_ids)
    if len(wanted) > MAX_BULK_REQUEST_LENGTH:
        raise PayloadTooLargeError(
            f"{len(wanted)} access URLs in one request "
            f"(at most {MAX_BULK_REQUEST_LENGTH}; see /service-info)"
        )
    return wanted


def _bulk_answer(
    key: str, resolved: list[dict[str, Any]], failed: dict[int, list[str]]
) -> dict[str, Any]:
    num_unresolved = sum(len(ids) for ids in failed.values())
    return {
        "summary": {
            "requested": len(resolved) + num_unresolved,
            "resolved": len(resolved),
            "unresolved": num_unresolved,
        },
        key: resolved,
        "unresolved_drs_objects": [
            {"error_code": status, "object_ids": ids}
            for status, ids in sorted(failed.items())
        ],
    }


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive span of a single ``Range: bytes=a-b`` (or ``a-``, ``-n``).

    Returns
    -------
    tuple of int, or None
        ``None`` for a header the download ignores (none, several ranges, another
        unit, bad syntax): the whole stream is sent, as HTTP allows.

    Raises
    ------
    ValueError
        A well-formed range that starts past the end (416).
    """
    if header is None:
        return None
    unit, _, spans = header.partition("=")
    first_text, dash, last_text = spans.strip().partition("-")
    if unit.strip().lower() != "bytes" or "," in spans or not dash:
        return None
    try:
        if not first_text:
            suffix = int(last_text)  # bytes=-N: the last N bytes
            return (max(size - suffix, 0), size - 1) if suffix > 0 else None
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first >= size:
        raise ValueError(f"range starts at {first}, past the last byte {size - 1}")
    if first < 0 or last < first:
        return None
    return first, min(last, size - 1)


def _head(chunks: Iterator[bytes], num_bytes: int) -> Iterator[bytes]:
    """The first ``num_bytes`` bytes of a stream of chunks."""
    for chunk in chunks:
        if num_bytes <= 0:
            break
        yield chunk[:num_bytes]
        num_bytes -= len(chunk)


def _stored_bytes(
    reader: Crypt4GHReader, first: int, last: int, chunk_bytes: int = _CHUNK_BYTES
) -> Iterator[bytes]:
    """Bytes ``first`` to ``last`` (inclusive) of the stored body, read in place."""
    remaining = last - first + 1
    with open_binary(reader.path) as stream:
        stream.seek(reader.header_size + first)
        while remaining:
            chunk = stream.read(min(chunk_bytes, remaining))
            if not chunk:
                raise StoreError(f"{reader.path}: shorter than when it was opened")
            remaining -= len(chunk)
            yield chunk


def _download_response(
    reader: Crypt4GHReader,
    recipient: bytes,
    range_header: str | None,
    headers: dict[str, str],
) -> Response:
    """The file re-encrypted for ``recipient``: whole, or the one range asked."""
    size = reader.reencrypted_size(recipient)
    header_size = size - reader.encrypted_body_size
    headers = {"Accept-Ranges": "bytes", **headers}
    try:
        span = _byte_range(range_header, size)
    except ValueError:
        headers["Content-Range"] = f"bytes */{size}"
        return Response(status_code=416, headers=headers)
    # Each response carries a new header (fresh nonces, same length): a range that
    # starts inside it could splice two different headers, so it gets the whole
    # file. Ranges from 0, or within the body (a resumed download), are consistent.
    if span is not None and 0 < span[0] < header_size:
        span = None
    if span is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(
            reader.iter_reencrypted(recipient, chunk_bytes=_CHUNK_BYTES),
            media_type="application/octet-stream",
            headers=headers,
        )
    first, last = span
    if first == 0:
        chunks = _head(
            reader.iter_reencrypted(recipient, chunk_bytes=_CHUNK_BYTES), last + 1
        )
    else:
        chunks = _stored_bytes(reader, first - header_size, last - header_size)
    headers["Content-Length"] = str(last - first + 1)
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return StreamingResponse(
        chunks,
        status_code=206,
        media_type="application/octet-stream",
        headers=headers,
    )


def service_info_document(request: Request) -> dict[str, Any]:
    """The DRS service-info, counting only the objects the caller may fetch
    (blocking)."""
    origin = _origin(request)
    members = _fetchable_objects(request)
    beacon = getattr(request.app.state, "beacon", None)
    identity = getattr(beacon, "identity", None)
    organisation_name = getattr(
        identity, "organisation_name", f"genomenode node {origin.node_id}"
    )
    organisation_url = getattr(identity, "organisation_url", origin.base_url)
    return {
        "id": f"org.genomenode.{origin.node_id}.drs",
        "name": f"genomenode DRS {origin.node_id}",
        "type": {"group": "org.ga4gh", "artifact": "drs", "version": DRS_VERSION},
        "description": (
            f"DRS 1.4 of the genomenode node {origin.node_id} ({origin.country}): "
            "the stored files of its published datasets, delivered "
            "Crypt4GH-encrypted to the caller's key once a data access "
            "committee has granted access."
        ),
        "organization": {"name": organisation_name, "url": organisation_url},
        "version": __version__,
        "environment": getattr(identity, "environment", "dev"),
        "maxBulkRequestLength": MAX_BULK_REQUEST_LENGTH,
        "drs": {
            "maxBulkRequestLength": MAX_BULK_REQUEST_LENGTH,
            "objectCount": len(members),
            "totalObjectSize": sum(stored.size for stored in members),
        },
    }


def resolve_objects(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """The answer to a bulk object request: the DrsObjects the caller may have,
    and the ids of the others by status (blocking).

    Raises
    ------
    InputError
        The body is not a bulk object request.
    PayloadTooLargeError
        More than :data:`MAX_BULK_REQUEST_LENGTH` ids.
    TokenError
        A passport (in the body or the header) does not verify.
    """
    check_expand(body.get("expand"))
    identifiers = _bulk_ids(body, "bulk_object_ids")
    if not all(isinstance(item, str) for item in identifiers):
        raise InputError("bulk_object_ids must be object ids", field="bulk_object_ids")
    use_passports(request, body)
    resolved: list[dict[str, Any]] = []
    failed: dict[int, list[str]] = {}
    for object_id in identifiers:
        try:
            resolved.append(object_document(request, object_id))
        except GenomenodeError as error:
            if error.status >= 500 or error.status == 401:
                raise
            failed.setdefault(error.status, []).append(object_id)
    return _bulk_answer("resolved_drs_object", resolved, failed)


def resolve_access_urls(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """The answer to a bulk access request: the AccessURLs the caller may have,
    and the object ids of the others by status (blocking).

    Raises
    ------
    InputError
        The body is not a bulk access request.
    PayloadTooLargeError
        More than :data:`MAX_BULK_REQUEST_LENGTH` access URLs asked.
    TokenError
        A passport (in the body or the header) does not verify.
    """
    wanted = _access_requests(_bulk_ids(body, "bulk_object_access_ids"))
    use_passports(request, body)
    resolved: list[dict[str, Any]] = []
    failed: dict[int, list[str]] = {}
    for object_id, access_id in wanted:
        try:
            found = access_url(request, object_id, access_id)
        except GenomenodeError as error:
            if error.status >= 500 or error.status == 401:
                raise
            failed.setdefault(error.status, []).append(object_id)
            continue
        resolved.append(
            {"drs_object_id": object_id, "drs_access_id": access_id, **found}
        )
    return _bulk_answer("resolved_drs_object_access_urls", resolved, failed)


def download_response(request: Request, object_id: str) -> Response:
    """The file behind an AccessURL (or asked with a passport), Crypt4GH-encrypted
    to the key in the request's ``Crypt4GH-Public-Key`` header (blocking: the
    checks and opening the file; the body streams from the thread pool).

    Raises
    ------
    InputError
        No public key, or not one.
    TokenError
        The link is forged, expired or for another object.
    PermissionDenied
        The caller may not (or no longer) download it.
    """
    transfer = transfer_service(request)
    # The key is checked first: an allowed download in the audit log is one whose
    # bytes went out.
    key_text = request.headers.get(PUBLIC_KEY_FIELD)
    if not key_text:
        raise InputError(
            "a download needs the public key to encrypt to: send "
            f"'{PUBLIC_KEY_FIELD}: <base64 Crypt4GH public key>'",
            field=PUBLIC_KEY_FIELD,
        )
    recipient = public_key_from_text(key_text)
    link = request.query_params.get("link")
    if link:
        transfer.require_link(link, resource=_resource(object_id), what="drs.download")
        stored = transfer.object(object_id)
    else:
        stored = transfer.object(object_id)
        transfer.require(request, stored.dataset_id, what="drs.download")
    return _download_response(
        transfer.reader(stored),
        recipient,
        request.headers.get("range"),
        {
            "Content-Disposition": f'attachment; filename="{stored.name}.c4gh"',
            "Cache-Control": "no-store",
        },
    )

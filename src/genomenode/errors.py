"""The one error tree of genomenode.

Every error genomenode raises on purpose is a ``GenomenodeError``::

    GenomenodeError                 base; ``status`` is the HTTP status it maps to
    ├── ConfigError                 node configuration or settings are wrong (500)
    ├── InputError                  a user-supplied file or value is wrong (400)
    │   ├── VcfError                the genotype file (names file, line, field)
    │   ├── ClinicalDataError       a clinical record (names file, record, field)
    │   ├── DatasetDescriptionError dataset.yaml (names file and field)
    │   ├── BeaconRequestError      a Beacon request parameter (names the parameter)
    │   ├── UnsupportedFormatError  a file format the server does not serve (htsget)
    │   └── InvalidRangeError       a genomic range that cannot be (start > end...)
    ├── StoreError                  the node store is damaged or another version (500)
    │   └── FormatVersionError      an on-disk file has an unsupported format_version
    ├── BeaconSchemaError           a vendored Beacon schema is unknown or unreadable
    ├── BeaconValidationError       a document breaks its Beacon schema (lists paths)
    ├── IngestError                 an ingest cannot go on (409): conflict or lock
    ├── Stopped                     work its caller asked to stop (an ingest step when
    │                               another failed: that one's error is reported)
    ├── TokenError                  a token claims to be from a trusted issuer but
    │                               fails verification (401); never holds the token
    ├── AuthenticationRequired      the action needs a verified identity (401)
    ├── PermissionDenied            a verified identity may not do this (403)
    ├── ConflictError               an action does not fit the current state of an
    │                               application or grant, or lost a race (409)
    ├── PayloadTooLargeError        a request for more data than one answer may hold,
    │                               or a body over the size limit (413)
    ├── RequestTimeoutError         a client too slow to send its request (408)
    ├── NotFoundError               a named dataset or node does not exist (404)
    ├── TooManyRequests             the caller must wait before asking this again (429)
    └── ClientDisconnected          the caller went away before the answer; its
                                    work was cancelled (499, never delivered)

Input errors carry where the problem is (``path``, ``line``, ``field``) so that the
message always names them; the CLI prints ``str(error)`` and exits non-zero, and the
HTTP layer turns ``status`` into the response in one place.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Iterable

__all__ = [
    "AuthenticationRequired",
    "BeaconRequestError",
    "BeaconSchemaError",
    "BeaconValidationError",
    "ClientDisconnected",
    "ClinicalDataError",
    "ConfigError",
    "ConflictError",
    "DatasetDescriptionError",
    "FormatVersionError",
    "GenomenodeError",
    "IngestError",
    "InputError",
    "InvalidRangeError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDenied",
    "RequestTimeoutError",
    "SchemaViolation",
    "StoreError",
    "TokenError",
    "TooManyRequests",
    "UnsupportedFormatError",
    "VcfError",
    "did_you_mean",
]


class GenomenodeError(Exception):
    """Base of every error genomenode raises on purpose."""

    status: int = 500


class ConfigError(GenomenodeError):
    """The node configuration or a setting is wrong."""


class InputError(GenomenodeError):
    """A user-supplied input is wrong; the message names where.

    Parameters
    ----------
    message
        What is wrong, in words a node operator understands.
    path
        The file the problem is in, if any.
    line
        1-based line number in that file, if known.
    field
        The field (VCF column, JSON path, YAML key) at fault, if known.
    """

    status = 400

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """The message prefixed by file, line and field."""
        where = []
        if self.path is not None:
            where.append(self.path)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message

    def __reduce__(self):
        # Errors cross process boundaries (ingest workers); keep the keywords.
        return (
            _rebuild_input_error,
            (type(self), self.message, self.path, self.line, self.field),
        )


def _rebuild_input_error(
    cls: type[InputError],
    message: str,
    path: str | None,
    line: int | None,
    field: str | None,
) -> InputError:
    return cls(message, path=path, line=line, field=field)


class VcfError(InputError):
    """The genotype file is malformed or breaks an ingest rule."""


class ClinicalDataError(InputError):
    """A clinical record is malformed or inconsistent with the genotypes."""


class DatasetDescriptionError(InputError):
    """dataset.yaml is malformed or has an invalid value."""


class BeaconRequestError(InputError):
    """A Beacon request is malformed; ``field`` names the offending parameter.

    Attributes
    ----------
    error_code : int
        The HTTP status (400) to put in the Beacon error response's ``errorCode``.
    """

    error_code: int = 400


class UnsupportedFormatError(InputError):
    """A file format the server does not serve for this data (htsget
    ``UnsupportedFormat``)."""


class InvalidRangeError(InputError):
    """A genomic range that cannot be: start after end, negative, or not on the
    reference (htsget ``InvalidRange``)."""


class PayloadTooLargeError(GenomenodeError):
    """More data than one answer may hold (htsget ``PayloadTooLarge``)."""

    status = 413


class RequestTimeoutError(GenomenodeError):
    """A client took longer than the server allows to send its request."""

    status = 408


class StoreError(GenomenodeError):
    """The node store is damaged or not a genomenode store."""


class FormatVersionError(StoreError):
    """An on-disk file carries a format_version this genomenode cannot read."""


class IngestError(GenomenodeError):
    """An ingest cannot proceed: a conflicting published dataset, or a lock."""

    status = 409


class Stopped(GenomenodeError):
    """Work stopped because its caller asked (set the event it was given)."""


class TokenError(GenomenodeError):
    """A passport or visa from a trusted issuer that does not verify.

    The message says why (expired, bad signature, untrusted ``jku``...) and never
    contains the token itself.
    """

    status = 401


class AuthenticationRequired(GenomenodeError):
    """The action needs a verified identity and the request carried none."""

    status = 401


class PermissionDenied(GenomenodeError):
    """A verified identity may not do this (not a DAC member, not the applicant...)."""

    status = 403


class ConflictError(GenomenodeError):
    """The action does not fit the current state (approving a rejected application,
    editing a submitted one), or a concurrent change got there first."""

    status = 409


class NotFoundError(GenomenodeError):
    """A named dataset, file or node does not exist."""

    status = 404


class TooManyRequests(GenomenodeError):
    """The caller asked for this too often; the message says when to retry, and
    ``retry_after_seconds`` (when known) becomes the ``Retry-After`` header."""

    status = 429

    def __init__(self, message: str, *, retry_after_seconds: int | None = None):
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    @property
    def headers(self) -> dict[str, str]:
        """The response headers this error adds (``Retry-After``)."""
        if self.retry_after_seconds is None:
            return {}
        return {"Retry-After": str(max(1, int(self.retry_after_seconds)))}


class ClientDisconnected(GenomenodeError):
    """The client disconnected before its answer; the work for it was cancelled.

    The status is nginx's 499 ("client closed request"): the response is never
    delivered, so it only names the outcome for logs.
    """

    status = 499


def did_you_mean(name: object, candidates: Iterable[str]) -> str:
    """``"; did you mean 'fi-sim-7'?"``: the closest ``candidates`` to a name that
    was not found (difflib), to end a :class:`NotFoundError`'s message; ``""``
    when none is close. Only for names the caller may know exist."""
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(item) for item in close) + "?"


class BeaconSchemaError(GenomenodeError):
    """A Beacon schema is unknown or cannot be loaded from the vendored files."""


@dataclasses.dataclass(frozen=True)
class SchemaViolation:
    """One place where a document breaks its schema.

    Parameters
    ----------
    path
        JSONPath of the offending value in the document, e.g. ``$.meta.apiVersion``.
    message
        What the schema requires there.
    schema_path
        Path of the failing keyword in the schema, e.g. ``properties/meta/required``.
    """

    path: str
    message: str
    schema_path: str


class BeaconValidationError(GenomenodeError):
    """A document does not match its Beacon schema.

    Parameters
    ----------
    schema
        The schema name the document was validated against.
    violations
        Every violation found, sorted by document path.

    Attributes
    ----------
    paths : list of str
        The JSON paths of the failing values, in the order of ``violations``.
    """

    def __init__(self, schema: str, violations: list[SchemaViolation]) -> None:
        self.schema = schema
        self.violations = violations
        self.paths = [violation.path for violation in violations]
        lines = "\n".join(f"  {v.path}: {v.message}" for v in violations)
        super().__init__(
            f"document does not match Beacon schema {schema!r} "
            f"({len(violations)} error(s)):\n{lines}"
        )

"""The one access decision of the node: may this caller query this dataset, and how.

Every Beacon answer goes through :func:`allowed_granularity`; nothing else in the
code decides who sees a dataset. Deny by default: a dataset whose security level
is unknown, or a caller kind the dataset does not admit, gets ``None`` and the
dataset is left out of the answer entirely (not even its existence is shown).

Three kinds of caller (decided per dataset):

- *anonymous*: no valid passport;
- *registered*: a valid passport with a ResearcherStatus or AcceptedTermsAndPolicies
  visa;
- *granted*: a ControlledAccessGrants visa for this dataset.

Security levels admit callers as follows: PUBLIC everyone, REGISTERED registered
and granted callers, CONTROLLED only callers granted that dataset. The dataset's
``beacon`` block in ``dataset.yaml`` then caps the granularity per kind of caller
(defaults: anonymous boolean, registered count, granted record).

Until passports are verified (the access issue), the HTTP layer only ever builds
:data:`ANONYMOUS`; a bearer token it cannot verify never raises a caller's rights.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Literal

__all__ = [
    "ANONYMOUS",
    "DEFAULT_GRANULARITY",
    "GRANULARITY_ORDER",
    "Caller",
    "CallerKind",
    "DatasetAccess",
    "allowed_granularity",
    "caller_kind",
    "lower_granularity",
]

CallerKind = Literal["anonymous", "registered", "granted"]
Granularity = Literal["boolean", "count", "record"]

GRANULARITY_ORDER: tuple[Granularity, ...] = ("boolean", "count", "record")
DEFAULT_GRANULARITY: Mapping[str, str] = {
    "anonymous": "boolean",
    "registered": "count",
    "granted": "record",
}
_ADMITTED: Mapping[str, frozenset[CallerKind]] = {
    "PUBLIC": frozenset({"anonymous", "registered", "granted"}),
    "REGISTERED": frozenset({"registered", "granted"}),
    "CONTROLLED": frozenset({"granted"}),
}

_audit = logging.getLogger("genomenode.audit")


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who is asking, as verified from their passport (never from claims alone).

    Attributes
    ----------
    subject
        The passport's ``sub`` (None when anonymous); logged, never a token.
    registered
        True when a valid ResearcherStatus or AcceptedTermsAndPolicies visa was seen.
    granted_datasets
        Dataset ids of valid ControlledAccessGrants visas.
    """

    subject: str | None = None
    registered: bool = False
    granted_datasets: frozenset[str] = frozenset()


ANONYMOUS = Caller()


@dataclasses.dataclass(frozen=True)
class DatasetAccess:
    """What the decision needs to know of a dataset."""

    id: str
    security_level: str
    granularity: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: {**DEFAULT_GRANULARITY}
    )


def caller_kind(caller: Caller, dataset_id: str) -> CallerKind:
    """The kind of ``caller`` with respect to one dataset."""
    if dataset_id in caller.granted_datasets:
        return "granted"
    if caller.registered:
        return "registered"
    return "anonymous"


def lower_granularity(first: str, second: str) -> Granularity:
    """The less revealing of two granularities."""
    order: tuple[str, ...] = GRANULARITY_ORDER
    return GRANULARITY_ORDER[min(order.index(first), order.index(second))]


def allowed_granularity(caller: Caller, dataset: DatasetAccess) -> Granularity | None:
    """The highest granularity ``caller`` may get from ``dataset``; None: not at all.

    Every decision is written to the ``genomenode.audit`` logger (subject, dataset,
    kind, outcome), never with a token.
    """
    kind = caller_kind(caller, dataset.id)
    admitted = _ADMITTED.get(dataset.security_level.upper(), frozenset())
    decision: Granularity | None = None
    if kind in admitted:
        configured = dataset.granularity.get(kind, DEFAULT_GRANULARITY[kind])
        for known in GRANULARITY_ORDER:
            if configured == known:
                decision = known
    _audit.debug(
        "beacon access subject=%s dataset=%s kind=%s decision=%s",
        caller.subject or "-",
        dataset.id,
        kind,
        decision or "deny",
    )
    return decision

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

Analyses without a grant: a dataset whose ``dataset.yaml`` says
``analysis: {without_grant: true}`` also admits, for the ``analyse`` action only
(aggregates under disclosure control), a *registered* caller who declares a
research purpose that its DUO data-use conditions allow — the rules of
:func:`genomenode.access.duo.match`, and only its ``approve`` (a condition that
needs the committee, ``abstain``, is a deny here). Without that line, or
without a declared purpose, nothing changes.

The HTTP layer builds callers in one place (:mod:`genomenode.access.authorize`):
from a verified passport, with grants read from the node's entitlements on every
request. :func:`authorize` answers "may this caller do this action on this dataset
at this granularity" for every service (Beacon, downloads, analyses) on top of
:func:`allowed_granularity`.

Decisions are also collected per request (:func:`collecting_decisions`) so that
the request's audit entry names each dataset and what was decided for it.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Literal

from .duo import DataUseCondition, ResearchPurpose, match

if TYPE_CHECKING:
    from ..store.published import PublishedDataset

__all__ = [
    "ACTIONS",
    "ANONYMOUS",
    "DEFAULT_GRANULARITY",
    "GRANULARITY_ORDER",
    "Caller",
    "CallerKind",
    "DatasetAccess",
    "Decision",
    "DecisionRecord",
    "allowed_granularity",
    "authorize",
    "caller_kind",
    "collecting_decisions",
    "dataset_access",
    "lower_granularity",
    "start_collecting",
    "stop_collecting",
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

Action = Literal["discover", "download", "analyse"]
#: What each action needs at least: discovery the granularity asked for, a
#: download the records themselves, an analysis aggregates (counts).
ACTIONS: Mapping[str, Granularity | None] = {
    "discover": None,
    "download": "record",
    "analyse": "count",
}


@dataclasses.dataclass(frozen=True)
class DecisionRecord:
    """One decision, as the request's audit entry reports it."""

    dataset_id: str
    kind: CallerKind
    granularity: Granularity | None


_collected: contextvars.ContextVar[list[DecisionRecord] | None] = (
    contextvars.ContextVar("genomenode_decisions", default=None)
)


def start_collecting() -> list[DecisionRecord]:
    """Collect the decisions made from now on in this context (one request).

    Each request runs in its own task with its own copy of the context, so the
    collection ends with the request; :func:`stop_collecting` ends it earlier.
    """
    decisions: list[DecisionRecord] = []
    _collected.set(decisions)
    return decisions


def stop_collecting() -> None:
    """Stop collecting decisions in this context."""
    _collected.set(None)


@contextlib.contextmanager
def collecting_decisions() -> Iterator[list[DecisionRecord]]:
    """Collect every decision made inside the block."""
    token = _collected.set([])
    try:
        decisions = _collected.get()
        assert decisions is not None
        yield decisions
    finally:
        _collected.reset(token)


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
    purpose
        The research purpose declared with the request, if any.
    """

    subject: str | None = None
    registered: bool = False
    granted_datasets: frozenset[str] = frozenset()
    #: The research purpose the caller declared for this request (an analysis
    #: request's ``purpose``), weighed only where a dataset allows analyses
    #: without a grant; never a right on its own.
    purpose: ResearchPurpose | None = None


ANONYMOUS = Caller()


@dataclasses.dataclass(frozen=True)
class DatasetAccess:
    """What the decision needs to know of a dataset."""

    id: str
    security_level: str
    granularity: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: {**DEFAULT_GRANULARITY}
    )
    #: ``analysis: {without_grant: true}`` in its dataset.yaml.
    analyse_without_grant: bool = False
    data_use: tuple[DataUseCondition, ...] = ()


def dataset_access(dataset: PublishedDataset) -> DatasetAccess:
    """What the decision needs of a published dataset: its security level and the
    Beacon granularities its description sets over :data:`DEFAULT_GRANULARITY`."""
    facts = dataset.facts
    granularity: dict[str, str] = {**DEFAULT_GRANULARITY}
    configured = facts.description_document.get("beacon") or {}
    if isinstance(configured, Mapping):
        granularity.update({str(k): str(v) for k, v in configured.items()})
    analysis = facts.description_document.get("analysis")
    # Anything but a literal true leaves the dataset to its grants (fail closed).
    without_grant = (
        isinstance(analysis, Mapping) and analysis.get("without_grant") is True
    )
    return DatasetAccess(
        id=facts.id,
        security_level=facts.security_level,
        granularity=granularity,
        analyse_without_grant=without_grant,
        data_use=tuple(
            DataUseCondition(term["id"], term.get("disease"))
            for term in (dataset.data_use if without_grant else [])
        ),
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
    collected = _collected.get()
    if collected is not None:
        collected.append(DecisionRecord(dataset.id, kind, decision))
    _audit.debug(
        "access subject=%s dataset=%s kind=%s decision=%s",
        caller.subject or "-",
        dataset.id,
        kind,
        decision or "deny",
    )
    return decision


@dataclasses.dataclass(frozen=True)
class Decision:
    """The answer of :func:`authorize`, with the reason for the audit log."""

    allowed: bool
    granularity: Granularity | None
    reason: str


def authorize(
    caller: Caller,
    action: Action,
    dataset: DatasetAccess,
    granularity: Granularity | None = None,
) -> Decision:
    """May ``caller`` do ``action`` on ``dataset`` at ``granularity``?

    The one authorisation question of the node. ``discover`` needs the
    granularity asked for (default boolean), ``download`` record granularity,
    ``analyse`` count granularity; everything else is denied. An ``analyse``
    the grants deny may still be allowed by the caller's declared purpose on a
    dataset that permits analyses without a grant (the module docstring).
    """
    decision = _by_level(caller, action, dataset, granularity)
    if decision.allowed or action != "analyse" or not dataset.analyse_without_grant:
        return decision
    return _analyse_by_purpose(caller, dataset) or decision


def _by_level(
    caller: Caller,
    action: Action,
    dataset: DatasetAccess,
    granularity: Granularity | None,
) -> Decision:
    """:func:`authorize` by security level, granularity and grants."""
    if action not in ACTIONS:
        return Decision(False, None, f"unknown action {action!r}")
    allowed = allowed_granularity(caller, dataset)
    kind = caller_kind(caller, dataset.id)
    needed = ACTIONS[action] or granularity or "boolean"
    if granularity is not None and granularity not in GRANULARITY_ORDER:
        return Decision(False, allowed, f"unknown granularity {granularity!r}")
    if granularity is not None:
        needed = GRANULARITY_ORDER[
            max(GRANULARITY_ORDER.index(needed), GRANULARITY_ORDER.index(granularity))
        ]
    if allowed is None:
        return Decision(
            False,
            None,
            f"{dataset.security_level} dataset {dataset.id} does not admit {kind} "
            "callers",
        )
    if GRANULARITY_ORDER.index(allowed) < GRANULARITY_ORDER.index(needed):
        return Decision(
            False,
            allowed,
            f"{action} needs {needed} granularity; {kind} callers get {allowed}",
        )
    return Decision(True, allowed, f"{kind} caller, {allowed} granularity allowed")


def _analyse_by_purpose(caller: Caller, dataset: DatasetAccess) -> Decision | None:
    """The decision for an analysis without a grant on a dataset that allows
    them; None when the caller declared no purpose (the grant rules decide)."""
    if caller.purpose is None:
        return None
    if caller_kind(caller, dataset.id) == "anonymous":
        return Decision(
            False,
            None,
            f"analysis without a grant of dataset {dataset.id} needs a registered "
            "researcher's passport",
        )
    recommendation = match(caller.purpose, dataset.data_use)
    reasons = "; ".join(recommendation.reasons)
    if recommendation.outcome != "approve":
        return Decision(
            False,
            None,
            f"the declared purpose {caller.purpose.term} is not allowed by the "
            f"data-use conditions of dataset {dataset.id} "
            f"({recommendation.outcome}: {reasons})",
        )
    return Decision(
        True,
        "count",
        f"registered caller, purpose {caller.purpose.term} allowed by the "
        f"dataset's data-use conditions ({reasons}); aggregates only",
    )

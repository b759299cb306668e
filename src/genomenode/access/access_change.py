"""Changing who may see a dataset and how much: :func:`set_access`.

A new security level, new Beacon granularities per kind of caller, new DUO terms,
each checked as dataset.yaml's fields are. Before anything is written, the change
is compared with the one access decision
(:func:`~genomenode.access.decision.allowed_granularity`) and the DUO matching the
committee sees (:func:`~genomenode.access.duo.match`), kind of caller by kind of
caller and grant by grant. A change that lets callers without a grant see more of a
CONTROLLED dataset, or takes from active grants what they gave, needs ``force``; the
grants and open applications it touches are listed either way, in the result and
in the audit entry. See docs/datasets.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from ..dataset import (
    SECURITY_LEVELS,
    DataUseTerm,
    check_beacon_granularity,
    check_data_use,
)
from ..errors import InputError
from ..store.generation import bump_generation
from ..store.locks import dataset_lock
from ..store.models import STATUS_PUBLISHED, STATUS_UNPUBLISHED, Dataset
from ..store.models import DataUseTerm as DataUseTermRow
from ..store.node import Node
from .audit import add_entry
from .decision import (
    DEFAULT_GRANULARITY,
    GRANULARITY_ORDER,
    Caller,
    DatasetAccess,
    allowed_granularity,
)
from .duo import DataUseCondition, match
from .lifecycle import (
    AffectedApplication,
    AffectedGrant,
    DatasetChange,
    _active_grants,
    _application,
    _dataset_row,
    _grant,
    _open_applications,
    _Refusal,
    _refuse,
)
from .transactions import in_transaction

__all__ = ["set_access"]

_UNGRANTED = ("anonymous", "registered")


@dataclasses.dataclass(frozen=True)
class _Settings:
    """A dataset's access settings: what the decision and the DUO match read."""

    dataset_id: str
    security_level: str
    beacon: Mapping[str, str]
    conditions: tuple[DataUseCondition, ...]

    def allowed(self) -> dict[str, str | None]:
        """The granularity each kind of caller gets (None: nothing)."""
        dataset = DatasetAccess(self.dataset_id, self.security_level, self.beacon)
        callers = {
            "anonymous": Caller(),
            "registered": Caller(subject="-", registered=True),
            "granted": Caller(subject="-", granted_datasets=frozenset({dataset.id})),
        }
        return {
            kind: allowed_granularity(caller, dataset)
            for kind, caller in callers.items()
        }


def _rank(granularity: str | None) -> int:
    order: tuple[str, ...] = GRANULARITY_ORDER
    return -1 if granularity is None else order.index(granularity)


def _data_use_document(
    conditions: Sequence[DataUseCondition],
) -> list[dict[str, str]]:
    """DUO terms as dataset.yaml's ``data_use:`` lists them."""
    return [
        {"id": item.term, **({"disease": item.disease} if item.disease else {})}
        for item in conditions
    ]


def _current(session: Session, row: Dataset) -> _Settings:
    document = row.description_document or {}
    terms = session.scalars(
        select(DataUseTermRow)
        .where(DataUseTermRow.dataset_id == row.id)
        .order_by(DataUseTermRow.id)
    )
    return _Settings(
        row.id,
        row.security_level,
        {**DEFAULT_GRANULARITY, **(document.get("beacon") or {})},
        tuple(DataUseCondition(term.term_id, term.disease_id) for term in terms),
    )


def _changes(old: _Settings, new: _Settings) -> dict[str, tuple[Any, Any]]:
    """Each field that differs, with its value before and after."""
    changes: dict[str, tuple[Any, Any]] = {}
    if new.security_level != old.security_level:
        changes["security_level"] = (old.security_level, new.security_level)
    if new.beacon != old.beacon:
        changes["beacon"] = (dict(old.beacon), dict(new.beacon))
    if new.conditions != old.conditions:
        changes["data_use"] = (
            _data_use_document(old.conditions),
            _data_use_document(new.conditions),
        )
    return changes


def _affected(
    session: Session, old: _Settings, new: _Settings
) -> tuple[list[AffectedGrant], list[AffectedApplication], list[str]]:
    """The grants and open applications the change touches, and why it needs
    ``force`` (empty: it does not)."""
    before, after = old.allowed(), new.allowed()
    opened = [kind for kind in _UNGRANTED if _rank(after[kind]) > _rank(before[kind])]
    widens_controlled = old.security_level == "CONTROLLED" and bool(opened)
    granted_drops = _rank(after["granted"]) < _rank(before["granted"])
    grants: list[AffectedGrant] = []
    unfitting = False
    for entitlement, application in _active_grants(session, old.dataset_id):
        why = []
        if widens_controlled:
            shown = " and ".join(f"{kind}: {after[kind]}" for kind in opened)
            why.append(f"callers without a grant now get something ({shown})")
        if granted_drops:
            why.append(
                f"grant holders get {after['granted'] or 'nothing'} instead of "
                f"{before['granted']}"
            )
        fits_after = match(application.purpose, new.conditions)
        if (
            fits_after.outcome == "deny"
            and match(application.purpose, old.conditions).outcome != "deny"
        ):
            unfitting = True
            why.append(
                "its purpose no longer fits the DUO terms: "
                + "; ".join(fits_after.reasons)
            )
        if why:
            grants.append(_grant(entitlement, "; ".join(why)))
    applications = []
    for application in _open_applications(session, old.dataset_id):
        now_says = match(application.purpose, new.conditions).outcome
        if widens_controlled:
            applications.append(
                _application(application, "access no longer needs a grant")
            )
        elif now_says != application.recommendation.outcome:
            applications.append(
                _application(
                    application,
                    f"DUO now says {now_says} "
                    f"(was {application.recommendation.outcome})",
                )
            )
    needs_force = []
    if widens_controlled:
        needs_force.append(
            f"CONTROLLED data would be shown to {' and '.join(opened)} callers "
            "without a grant"
        )
    if granted_drops and grants:
        needs_force.append("grant holders would get less than they were granted")
    if unfitting:
        needs_force.append("active grants would no longer fit the DUO terms")
    return grants, applications, needs_force


def _write(
    session: Session,
    row: Dataset,
    new: _Settings,
    terms: Sequence[DataUseTerm] | None,
) -> None:
    """Store ``new`` in the dataset's row, its description and its DUO terms."""
    document = dict(row.description_document or {})
    document["security_level"] = new.security_level
    document["beacon"] = dict(new.beacon)
    if terms is not None:
        document["data_use"] = _data_use_document(new.conditions)
        session.execute(
            delete(DataUseTermRow).where(DataUseTermRow.dataset_id == row.id)
        )
        session.execute(
            insert(DataUseTermRow),
            [
                {
                    "dataset_id": row.id,
                    "term_id": term.id,
                    "label": term.label,
                    "disease_id": term.disease,
                }
                for term in terms
            ],
        )
    session.execute(
        update(Dataset)
        .where(Dataset.id == row.id)
        .values(security_level=new.security_level, description_document=document)
    )
    bump_generation(session)


def set_access(
    node: Node,
    dataset_id: str,
    *,
    actor: str,
    security_level: str | None = None,
    beacon: Mapping[str, str] | None = None,
    data_use: Sequence[str | Mapping[str, Any]] | None = None,
    force: bool = False,
) -> DatasetChange:
    """Change who may see a dataset and what: its security level, its Beacon
    granularities per kind of caller, its DUO terms.

    Parameters
    ----------
    node
        The node holding the dataset (published or unpublished).
    dataset_id
        The dataset.
    actor
        Who changes it (``operator:<login>``), for the audit log.
    security_level
        ``PUBLIC``, ``REGISTERED`` or ``CONTROLLED``; None keeps it.
    beacon
        Granularities to change, e.g. ``{"anonymous": "count"}``, merged over the
        current ones and checked as dataset.yaml's ``beacon:`` block is (a more
        trusted caller never sees less); None keeps them.
    data_use
        The new DUO terms, replacing the current ones, as dataset.yaml's
        ``data_use:`` takes them (``"DUO:0000042"`` or ``{"id": "DUO:0000007",
        "disease": "ICD10:I25.1"}``); None keeps them.
    force
        Make a change that needs it (see Raises).

    Returns
    -------
    DatasetChange
        The fields changed (before, after) and the grants and open applications
        the change touches: grants whose granularity drops or whose purpose no
        longer fits the DUO terms, applications whose DUO recommendation changes,
        and every grant and open application when a CONTROLLED dataset opens up.
        ``changed`` is False (and nothing is audited) when nothing differs.

    Raises
    ------
    InputError
        A value is not valid (the error names it).
    NotFoundError
        No such dataset.
    ConflictError
        Without ``force``: the change lets callers without a grant see a CONTROLLED
        dataset (more than before), or takes from active grants what they gave
        (record granularity, a purpose the DUO terms allowed). Audited; nothing is
        changed. Also for a dataset being removed.
    """
    if security_level is not None and security_level not in SECURITY_LEVELS:
        raise InputError(
            f"{security_level!r}: use one of {', '.join(SECURITY_LEVELS)}",
            field="security_level",
        )
    terms = check_data_use(list(data_use)) if data_use is not None else None

    def work(session: Session) -> DatasetChange | _Refusal:
        row = _dataset_row(
            session, dataset_id, allowed=(STATUS_PUBLISHED, STATUS_UNPUBLISHED)
        )
        old = _current(session, row)
        new = _Settings(
            dataset_id,
            security_level or old.security_level,
            check_beacon_granularity({**old.beacon, **beacon})
            if beacon is not None
            else old.beacon,
            tuple(DataUseCondition(term.id, term.disease) for term in terms)
            if terms is not None
            else old.conditions,
        )
        changes = _changes(old, new)
        if not changes:
            return DatasetChange(dataset_id, "set_access", False, row.status)
        grants, applications, needs_force = _affected(session, old, new)
        change = DatasetChange(
            dataset_id,
            "set_access",
            True,
            row.status,
            changes,
            tuple(grants),
            tuple(applications),
        )
        if needs_force and not force:
            return _Refusal(change, "; ".join(needs_force))
        _write(session, row, new, terms)
        add_entry(
            session,
            actor=actor,
            action="dataset.set_access",
            outcome="allow",
            reason="access changed by an operator ("
            + ", ".join(sorted(changes))
            + (", forced: " + "; ".join(needs_force) if needs_force else "")
            + ")",
            dataset_id=dataset_id,
            details=change.audit_details(force=force),
        )
        return change

    with dataset_lock(node.staging_dir, dataset_id):
        result = in_transaction(node.engine, work)
    if isinstance(result, _Refusal):
        raise _refuse(node, result.change, actor=actor, reason=result.reason)
    return result

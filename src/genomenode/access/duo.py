"""Match a research purpose against a dataset's data-use conditions (DUO).

The data access committee decides; this gives it a recommendation with the rules
applied: ``approve`` (every condition is met), ``deny`` (a condition is broken) or
``abstain`` (a condition needs a person: an ethics approval, a collaboration, a
geographic or institutional restriction, or a disease the node cannot place in a
hierarchy). Any deny wins over abstain, any abstain over approve.

The purpose is described the way the dataset is: one DUO permission term for what
the research is (GRU, HMB, DS with its disease, POA), plus facts the conditions ask
about (commercial, for-profit organisation, methods development, genetic study)
and the conditions the applicant accepts (publication, return of results...).

Permission rules (the dataset's term → purposes it admits):

===========  ==============================================================
NRES, GRU    any research purpose
HMB          HMB, or DS (disease research is health research)
DS(disease)  DS whose disease is that disease or below it in its hierarchy
POA          POA only
===========  ==============================================================

Modifier rules: NCU and NPUNCU deny commercial use, NPU and NPUNCU deny for-profit
organisations, NPOA denies POA purposes, NMDS denies methods development, GSO denies
purposes that are not genetic studies; CC allows clinical care use, which is denied
without it; PUB, RTN, MOR
and TS must be accepted by the applicant; IRB, COL, GS, US, PS, IS and RS need the
committee (abstain).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..errors import InputError
from ..vocab import ontology
from ..vocab.duo import (
    CC,
    DS,
    GRU,
    HMB,
    NRES,
    PERMISSIONS,
    POA,
    PURPOSE_TERMS,
    duo_terms,
)

__all__ = [
    "DataUseCondition",
    "Recommendation",
    "ResearchPurpose",
    "checked_purpose",
    "match",
    "purpose_from_json",
    "purpose_to_json",
]

Outcome = Literal["approve", "deny", "abstain"]

# Modifiers the applicant must accept.
_ACCEPTED_BY_APPLICANT = ("DUO:0000019", "DUO:0000029", "DUO:0000024", "DUO:0000025")
# Modifiers checked against the purpose's facts (denials are handled one by one).
_CHECKED_MODIFIERS = {
    "DUO:0000046",
    "DUO:0000045",
    "DUO:0000018",
    "DUO:0000015",
    "DUO:0000016",
}
# Modifiers only the committee can judge.
_FOR_THE_COMMITTEE = (
    "DUO:0000021",
    "DUO:0000020",
    "DUO:0000022",
    "DUO:0000026",
    "DUO:0000027",
    "DUO:0000028",
    "DUO:0000012",
)


def _label(term: str) -> str:
    return duo_terms()[term]["label"]


_PURPOSE_FLAGS = (
    "commercial",
    "for_profit",
    "methods_development",
    "genetic_study",
    "clinical_care",
)
_CURIE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*:\S+$")


@dataclasses.dataclass(frozen=True)
class DataUseCondition:
    """One DUO term of a dataset, with its disease for DS."""

    term: str
    disease: str | None = None


@dataclasses.dataclass(frozen=True)
class ResearchPurpose:
    """What an application says it will do."""

    term: str
    disease: str | None = None
    commercial: bool = False
    for_profit: bool = False
    methods_development: bool = False
    genetic_study: bool = True
    clinical_care: bool = False
    accepted: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """The outcome and, for each condition, the rule that decided it."""

    outcome: Outcome
    reasons: tuple[str, ...]


def _disease_covers(dataset_disease: str, purpose_disease: str) -> bool | None:
    """True/False when the hierarchy answers; None when the node cannot tell."""
    if ontology.same_term(dataset_disease, purpose_disease):
        return True
    if ontology.prefix(dataset_disease) != ontology.prefix(purpose_disease):
        return None
    vocabulary = ontology.vocabulary(dataset_disease)
    if vocabulary is None or vocabulary.hierarchy == "flat":
        return None
    return ontology.is_descendant(purpose_disease, dataset_disease)


def _permission(
    condition: DataUseCondition, purpose: ResearchPurpose
) -> tuple[Outcome, str]:
    term = condition.term
    if term in (NRES, GRU):
        return "approve", f"{term}: any research purpose is allowed"
    if term == HMB:
        if purpose.term in (HMB, DS):
            return "approve", f"{term}: the purpose is health or medical research"
        return "deny", f"{term}: only health, medical or biomedical research"
    if term == POA:
        if purpose.term == POA:
            return "approve", f"{term}: the purpose is population or ancestry research"
        return "deny", f"{term}: only population origins or ancestry research"
    # DS: disease-specific research.
    if condition.disease is None:
        return "abstain", f"{term}: the dataset names no disease"
    if purpose.term != DS or purpose.disease is None:
        return "deny", f"{term}: only research on {condition.disease}"
    covered = _disease_covers(condition.disease, purpose.disease)
    if covered is None:
        return "abstain", (
            f"{term}: cannot tell whether {purpose.disease} is a kind of "
            f"{condition.disease} (no hierarchy for it on this node)"
        )
    if covered:
        return "approve", f"{term}: {purpose.disease} is within {condition.disease}"
    return "deny", f"{term}: {purpose.disease} is not within {condition.disease}"


def _modifier(term: str, purpose: ResearchPurpose) -> tuple[Outcome, str]:
    if term in ("DUO:0000046", "DUO:0000018") and purpose.commercial:
        return "deny", f"{term}: non-commercial use only"
    if term in ("DUO:0000045", "DUO:0000018") and purpose.for_profit:
        return "deny", f"{term}: not-for-profit organisations only"
    if term == "DUO:0000044":
        if purpose.term == POA:
            return "deny", f"{term}: population origins or ancestry research prohibited"
        return "approve", f"{term}: the purpose is not ancestry research"
    if term == "DUO:0000015" and purpose.methods_development:
        return "deny", f"{term}: no general methods research"
    if term == "DUO:0000016" and not purpose.genetic_study:
        return "deny", f"{term}: genetic studies only"
    if term == CC:
        # CC widens what is allowed (clinical care as well as research).
        return "approve", f"{term}: clinical care use is also allowed"
    if term in _ACCEPTED_BY_APPLICANT:
        label = _label(term)
        if term in purpose.accepted:
            return "approve", f"{term}: the applicant accepted '{label}'"
        return "abstain", f"{term}: the applicant has not accepted '{label}'"
    if term in _FOR_THE_COMMITTEE:
        return "abstain", f"{term}: {_label(term)}: for the committee"
    if term in _CHECKED_MODIFIERS:
        return "approve", f"{term}: met by the purpose"
    return "abstain", f"{term}: not a condition this node knows how to check"


def match(
    purpose: ResearchPurpose, conditions: Sequence[DataUseCondition]
) -> Recommendation:
    """The recommendation for ``purpose`` against a dataset's ``conditions``.

    A dataset without a permission term gets ``abstain`` (nothing says what is
    allowed); a purpose term that is not a DUO permission is a ``deny``.
    """
    if purpose.term not in PERMISSIONS:
        return Recommendation(
            "deny", (f"{purpose.term}: not a DUO research purpose term",)
        )
    results: list[tuple[Outcome, str]] = []
    permissions = [item for item in conditions if item.term in PERMISSIONS]
    if not permissions:
        results.append(("abstain", "the dataset has no DUO permission term"))
    for condition in permissions:
        results.append(_permission(condition, purpose))
    for condition in conditions:
        if condition.term not in PERMISSIONS:
            results.append(_modifier(condition.term, purpose))
    if purpose.clinical_care and all(item.term != CC for item in conditions):
        results.append(
            ("deny", "clinical care use needs DUO:0000043 (clinical care use)")
        )
    outcomes = {outcome for outcome, _ in results}
    outcome: Outcome = (
        "deny"
        if "deny" in outcomes
        else "abstain"
        if "abstain" in outcomes
        else "approve"
    )
    return Recommendation(outcome, tuple(reason for _, reason in results))


# -- as JSON ----------------------------------------------------------------------


def purpose_to_json(purpose: ResearchPurpose) -> dict[str, Any]:
    """A research purpose as JSON: the DUO term (with its label) and the facts."""
    known = duo_terms().get(purpose.term)
    return {
        "term": purpose.term,
        "label": known["label"] if known else None,
        "disease": purpose.disease,
        "commercial": purpose.commercial,
        "for_profit": purpose.for_profit,
        "methods_development": purpose.methods_development,
        "genetic_study": purpose.genetic_study,
        "clinical_care": purpose.clinical_care,
        "accepted": sorted(purpose.accepted),
    }


def purpose_from_json(document: Mapping[str, Any]) -> ResearchPurpose:
    """A research purpose from JSON (as :func:`purpose_to_json` writes it).

    ``term`` is the DUO permission that says what the research is: ``DUO:0000042``
    (GRU), ``DUO:0000006`` (HMB), ``DUO:0000007`` (DS, with a ``disease`` CURIE) or
    ``DUO:0000011`` (POA). ``commercial``, ``for_profit``, ``methods_development``,
    ``genetic_study`` (default true) and ``clinical_care`` are booleans; ``accepted``
    lists the DUO modifiers the applicant accepts (``DUO:0000019`` publication
    required...). ``label`` is ignored.

    Raises
    ------
    InputError
        Naming the field at fault, e.g. ``purpose.term``.
    """
    if not isinstance(document, Mapping):
        raise InputError(
            "must be a mapping such as {term: DUO:0000042}", field="purpose"
        )
    allowed = {"term", "label", "disease", "accepted", *_PURPOSE_FLAGS}
    for key in document:
        if key not in allowed:
            raise InputError(
                f"unknown key; use {', '.join(sorted(allowed))}", field=f"purpose.{key}"
            )
    known = duo_terms()
    term = document.get("term")
    if not isinstance(term, str) or term not in PURPOSE_TERMS:
        raise InputError(
            f"{term!r} is not a DUO research purpose; use one of "
            + ", ".join(f"{key} ({known[key]['shorthand']})" for key in PURPOSE_TERMS),
            field="purpose.term",
        )
    disease = document.get("disease")
    if known[term]["needs"] == "disease":
        if not isinstance(disease, str) or not _CURIE.match(disease):
            raise InputError(
                f"{term} ({known[term]['label']}) needs a disease term such as "
                "ICD10:I25.1 or MONDO:0005010",
                field="purpose.disease",
            )
    elif disease is not None:
        raise InputError(f"{term} takes no disease", field="purpose.disease")
    flags = {flag: document.get(flag) for flag in _PURPOSE_FLAGS}
    for flag, value in flags.items():
        if value is not None and not isinstance(value, bool):
            raise InputError(f"{value!r} is not true or false", field=f"purpose.{flag}")
    accepted = document.get("accepted", [])
    if not isinstance(accepted, list):
        raise InputError("must be a list of DUO terms", field="purpose.accepted")
    for index, item in enumerate(accepted):
        if not isinstance(item, str) or known.get(item, {}).get("kind") != "modifier":
            raise InputError(
                f"{item!r} is not a DUO modifier term (e.g. DUO:0000019)",
                field=f"purpose.accepted[{index}]",
            )
    return ResearchPurpose(
        term=term,
        disease=disease,
        commercial=flags["commercial"] is True,
        for_profit=flags["for_profit"] is True,
        methods_development=flags["methods_development"] is True,
        # A purpose is a genetic study unless it says otherwise.
        genetic_study=flags["genetic_study"] is not False,
        clinical_care=flags["clinical_care"] is True,
        accepted=frozenset(accepted),
    )


def checked_purpose(purpose: ResearchPurpose) -> ResearchPurpose:
    return purpose_from_json(purpose_to_json(purpose))

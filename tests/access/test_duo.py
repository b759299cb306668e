"""DUO matching: one row per supported permission and modifier rule."""

from __future__ import annotations

import pytest

from genomenode.access.duo import DataUseCondition, ResearchPurpose, match
from genomenode.vocab.duo import duo_terms

GRU, NRES, HMB, DS, POA = (
    "DUO:0000042",
    "DUO:0000004",
    "DUO:0000006",
    "DUO:0000007",
    "DUO:0000011",
)
CAD = "ICD10:I25"  # chronic ischaemic heart disease
CAD_CHILD = "ICD10:I25.1"
OTHER = "ICD10:E10"


def C(term: str, disease: str | None = None) -> DataUseCondition:
    return DataUseCondition(term, disease)


def P(term: str, **facts) -> ResearchPurpose:
    disease = facts.pop("disease", None)
    accepted = frozenset(facts.pop("accepted", ()))
    return ResearchPurpose(term, disease=disease, accepted=accepted, **facts)


CASES = [
    # permissions
    ([C(NRES)], P(POA), "approve"),
    ([C(GRU)], P(POA), "approve"),
    ([C(GRU)], P(DS, disease=OTHER), "approve"),
    ([C(HMB)], P(HMB), "approve"),
    ([C(HMB)], P(DS, disease=OTHER), "approve"),
    ([C(HMB)], P(POA), "deny"),
    ([C(HMB)], P(GRU), "deny"),
    ([C(DS, CAD)], P(DS, disease=CAD), "approve"),
    ([C(DS, CAD)], P(DS, disease=CAD_CHILD), "approve"),
    ([C(DS, CAD_CHILD)], P(DS, disease=CAD), "deny"),  # broader than allowed
    ([C(DS, CAD)], P(DS, disease=OTHER), "deny"),
    ([C(DS, CAD)], P(HMB), "deny"),
    (
        [C(DS, "MONDO:0005010")],
        P(DS, disease="MONDO:0004994"),
        "abstain",
    ),  # no hierarchy
    ([C(DS, "MONDO:0005010")], P(DS, disease="MONDO:0005010"), "approve"),
    ([C(DS, "MONDO:0005010")], P(DS, disease=CAD), "abstain"),  # other vocabulary
    ([C(POA)], P(POA), "approve"),
    ([C(POA)], P(HMB), "deny"),
    ([], P(HMB), "abstain"),  # no permission term
    ([C(HMB)], P("DUO:0000019"), "deny"),  # purpose is not a permission term
    # modifiers checked against the purpose
    ([C(GRU), C("DUO:0000046")], P(HMB, commercial=True), "deny"),
    ([C(GRU), C("DUO:0000046")], P(HMB), "approve"),
    ([C(GRU), C("DUO:0000045")], P(HMB, for_profit=True), "deny"),
    ([C(GRU), C("DUO:0000045")], P(HMB), "approve"),
    ([C(GRU), C("DUO:0000018")], P(HMB, commercial=True), "deny"),
    ([C(GRU), C("DUO:0000018")], P(HMB, for_profit=True), "deny"),
    ([C(GRU), C("DUO:0000018")], P(HMB), "approve"),
    ([C(GRU), C("DUO:0000044")], P(POA), "deny"),
    ([C(GRU), C("DUO:0000044")], P(HMB), "approve"),
    ([C(GRU), C("DUO:0000015")], P(HMB, methods_development=True), "deny"),
    ([C(GRU), C("DUO:0000015")], P(HMB), "approve"),
    ([C(GRU), C("DUO:0000016")], P(HMB, genetic_study=False), "deny"),
    ([C(GRU), C("DUO:0000016")], P(HMB), "approve"),
    # CC widens: clinical care use is allowed with it and denied without it.
    ([C(GRU), C("DUO:0000043")], P(HMB), "approve"),
    ([C(GRU), C("DUO:0000043")], P(HMB, clinical_care=True), "approve"),
    ([C(GRU)], P(HMB, clinical_care=True), "deny"),
    # modifiers the applicant must accept
    *[
        case
        for term in ("DUO:0000019", "DUO:0000029", "DUO:0000024", "DUO:0000025")
        for case in (
            ([C(GRU), C(term)], P(HMB), "abstain"),
            ([C(GRU), C(term)], P(HMB, accepted={term}), "approve"),
        )
    ],
    # modifiers for the committee
    *[
        ([C(GRU), C(term)], P(HMB), "abstain")
        for term in (
            "DUO:0000021",
            "DUO:0000020",
            "DUO:0000022",
            "DUO:0000026",
            "DUO:0000027",
            "DUO:0000028",
            "DUO:0000012",
        )
    ],
    # deny wins over abstain
    ([C(HMB), C("DUO:0000021")], P(POA), "deny"),
    (
        [C(DS, CAD), C("DUO:0000019"), C("DUO:0000046")],
        P(DS, disease=CAD_CHILD, commercial=True, accepted={"DUO:0000019"}),
        "deny",
    ),
    (
        [C(DS, CAD), C("DUO:0000019"), C("DUO:0000046")],
        P(DS, disease=CAD_CHILD, accepted={"DUO:0000019"}),
        "approve",
    ),
]


@pytest.mark.parametrize(("conditions", "purpose", "expected"), CASES)
def test_match_table(conditions, purpose, expected):
    recommendation = match(purpose, conditions)
    assert recommendation.outcome == expected, recommendation.reasons
    assert len(recommendation.reasons) >= max(1, len(conditions))


def test_every_shipped_duo_term_has_a_rule():
    """A term the node ships but cannot check would silently become 'abstain'."""
    for term in duo_terms():
        condition = C(term, CAD if term == DS else None)
        recommendation = match(P(HMB), [C(GRU), condition])
        assert not any(
            "does not know" in reason for reason in recommendation.reasons
        ), term

"""The Data Use Ontology in plain words, for researchers choosing a purpose and
for anyone reading a dataset's conditions.

The terms themselves (ids, labels, which are permissions) come from
:mod:`genomenode.vocab.duo`; this adds one sentence per term saying what it
means for the person who wants the data. A term without a sentence here is
shown with its DUO label only.
"""

from __future__ import annotations

from types import MappingProxyType

from ..vocab.duo import PURPOSE_TERMS, duo_terms

__all__ = ["PLAIN_WORDS", "explain", "purpose_choices"]

PLAIN_WORDS = MappingProxyType(
    {
        "DUO:0000004": "No restriction: the data may be used for any purpose.",
        "DUO:0000042": "General research use: any research purpose, health-related "
        "or not.",
        "DUO:0000006": "Health, medical or biomedical research only (not, for "
        "example, research into population origins).",
        "DUO:0000007": "Research on a named disease only: your project must study "
        "that disease (give its ICD-10 or MONDO code).",
        "DUO:0000011": "Research into population origins or ancestry only.",
        "DUO:0000012": "Research-specific restrictions apply: the committee reads "
        "your project description closely.",
        "DUO:0000015": "Not for developing general methods or software.",
        "DUO:0000016": "Genetic studies only (no research on the phenotypic data "
        "alone).",
        "DUO:0000018": "Non-profit and non-commercial use only.",
        "DUO:0000019": "You must publish your results.",
        "DUO:0000020": "You must collaborate with the study's investigators.",
        "DUO:0000021": "You need approval from an ethics committee.",
        "DUO:0000022": "Use is limited to a geographical area.",
        "DUO:0000024": "You may not publish before a set date (moratorium).",
        "DUO:0000025": "Access is for a limited time.",
        "DUO:0000026": "Access is for named users only.",
        "DUO:0000027": "Access is for an approved project only.",
        "DUO:0000028": "Access is for named institutions only.",
        "DUO:0000029": "You must return derived data or results to the resource.",
        "DUO:0000043": "Clinical care use is allowed.",
        "DUO:0000044": "Research into population origins or ancestry is not allowed.",
        "DUO:0000045": "Only non-profit organisations may use the data.",
        "DUO:0000046": "Non-commercial use only.",
    }
)


def explain(term: str) -> dict[str, str]:
    """A DUO term's id, shorthand, label and plain-language sentence."""
    known = duo_terms().get(term, {})
    label = known.get("label", term)
    return {
        "id": term,
        "shorthand": known.get("shorthand", ""),
        "label": label,
        "words": PLAIN_WORDS.get(term, label[:1].upper() + label[1:] + "."),
        "needs": known.get("needs", ""),
    }


def purpose_choices() -> list[dict[str, str]]:
    """The research purposes an application may name, explained."""
    return [explain(term) for term in PURPOSE_TERMS]


def modifier_choices() -> list[dict[str, str]]:
    """The DUO modifiers an applicant may accept, explained."""
    return [
        explain(term)
        for term, row in duo_terms().items()
        if row.get("kind") == "modifier"
    ]

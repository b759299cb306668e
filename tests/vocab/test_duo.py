"""genomenode.vocab.duo: the DUO terms genomenode knows."""

from __future__ import annotations

from genomenode.vocab import duo


def test_the_named_permissions_are_the_tables_permissions() -> None:
    table = duo.duo_terms()
    assert {
        term for term, row in table.items() if row["kind"] == "permission"
    } == duo.PERMISSIONS
    assert set(duo.PURPOSE_TERMS) == duo.PERMISSIONS - {duo.NRES}


def test_every_named_term_is_in_the_table_with_its_shorthand() -> None:
    table = duo.duo_terms()
    for shorthand in ("NRES", "GRU", "HMB", "DS", "POA", "CC"):
        assert table[getattr(duo, shorthand)]["shorthand"] == shorthand


def test_disease_specific_research_needs_a_disease() -> None:
    assert duo.duo_terms()[duo.DS]["needs"] == "disease"
    assert duo.duo_terms()[duo.GRU]["needs"] == ""

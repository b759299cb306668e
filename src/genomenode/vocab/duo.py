"""The Data Use Ontology (DUO) terms genomenode knows: ids, labels, kinds.

The one home of DUO term knowledge. The table ships as ``data/duo.csv`` (id,
shorthand, label, kind, needs); the names below are the terms the code itself
refers to. What a committee should make of a purpose against a dataset's terms is
access policy (:mod:`genomenode.access.duo`); what a term is lives here.

Examples
--------
>>> duo_terms()[GRU]["label"]
'general research use'
>>> DS in PERMISSIONS
True
"""

from __future__ import annotations

import csv
import functools
import importlib.resources

__all__ = [
    "CC",
    "DS",
    "GRU",
    "HMB",
    "NRES",
    "PERMISSIONS",
    "POA",
    "PURPOSE_TERMS",
    "duo_terms",
]

NRES = "DUO:0000004"  # no restriction
GRU = "DUO:0000042"  # general research use
HMB = "DUO:0000006"  # health or medical or biomedical research
DS = "DUO:0000007"  # disease specific research (with its disease)
POA = "DUO:0000011"  # population origins or ancestry research only
CC = "DUO:0000043"  # clinical care use

#: The permission terms (``kind`` permission in the table): what research the
#: data may be used for. Every other term is a modifier (a condition).
PERMISSIONS = frozenset({NRES, GRU, HMB, DS, POA})

#: The permissions that say what research is ("no restriction" describes data).
PURPOSE_TERMS = (GRU, HMB, DS, POA)


@functools.cache
def duo_terms() -> dict[str, dict[str, str]]:
    """The DUO terms genomenode knows, by id (shipped as ``data/duo.csv``)."""
    text = importlib.resources.files("genomenode.data").joinpath("duo.csv").read_text()
    rows = csv.DictReader(
        line for line in text.splitlines() if not line.startswith("#")
    )
    return {row["id"]: row for row in rows}

"""Find the variants a Beacon query asks for: binary search on sorted positions.

Beacon coordinates are 0-based and half-open; VCF's ``POS`` is 1-based. A stored
variant with ``POS`` p and reference allele ``REF`` covers the 0-based interval
``[p - 1, p - 1 + len(REF))``. A Beacon variant is one alternate allele, so matches
are ``(row, allele)`` pairs, ``allele`` counting from 1 as in ``variant_allele``.

- *sequence* (``start=[s]``, ``alternateBases``, optional ``referenceBases``): the
  variant starts at ``s`` and has that alternate (and reference) allele;
- *range* (``start=[s]``, ``end=[e]``): the variant's interval overlaps ``[s, e)``;
  ``alternateBases``/``referenceBases`` narrow it when given;
- *bracket* (``start=[s0, s1]``, ``end=[e0, e1]``): the variant starts in
  ``[s0, s1]`` and ends in ``[e0, e1]`` (both inclusive).

Only rows near the query are read: a range is widened to the left by the longest
reference allele of the contig, found once per store, so nothing is scanned.
"""

from __future__ import annotations

import numpy as np

from ..errors import BeaconRequestError
from ..store.genotypes import GenotypeStore
from .requests import VariantQuery

__all__ = ["matching_variants", "naive_matching_variants"]

Match = tuple[int, int]


def _contig(store: GenotypeStore, reference_name: str | None) -> str | None:
    """The store's name for a Beacon ``referenceName`` (with or without ``chr``)."""
    if reference_name is None:
        return None
    for name in store.contigs:
        stripped = name[3:] if name.lower().startswith("chr") else name
        if stripped == reference_name:
            return name
    return None


def _alleles_at(store: GenotypeStore, rows: range) -> np.ndarray:
    if len(rows) == 0:
        return np.empty((0, 0), dtype=object)
    return store.alleles(rows.start, rows.stop)


def _select(
    query: VariantQuery,
    rows: range,
    positions: np.ndarray,
    alleles: np.ndarray,
) -> list[Match]:
    """The (row, allele) pairs of ``rows`` that satisfy ``query``, exactly."""
    matches: list[Match] = []
    reference_bases = (query.reference_bases or "").upper() or None
    alternate_bases = (query.alternate_bases or "").upper() or None
    for offset, row in enumerate(rows):
        reference = str(alleles[offset][0]).upper()
        begin = int(positions[offset]) - 1
        end = begin + len(reference)
        if query.kind == "sequence":
            if begin != query.start[0]:
                continue
        elif query.kind == "range":
            if not (begin < query.end[0] and end > query.start[0]):
                continue
        elif query.kind == "bracket":
            inside = query.start[0] <= begin <= query.start[1]
            if not (inside and query.end[0] <= end <= query.end[1]):
                continue
        if reference_bases is not None and reference != reference_bases:
            continue
        for index, allele in enumerate(alleles[offset][1:], start=1):
            allele = str(allele).upper()
            if not allele:
                continue
            if alternate_bases is None or allele == alternate_bases:
                matches.append((row, index))
    return matches


def matching_variants(store: GenotypeStore, query: VariantQuery) -> list[Match]:
    """The (row, allele) pairs that answer ``query``, found by binary search.

    Raises
    ------
    BeaconRequestError
        For query kinds this function does not answer (gene and HGVS queries are
        translated to a range by the caller first).
    """
    if query.kind not in ("sequence", "range", "bracket"):
        raise BeaconRequestError(
            f"{query.kind} queries are not answered here", field="requestParameters"
        )
    contig = _contig(store, query.reference_name)
    if contig is None:
        return []
    # rows_at takes 1-based POS in [first, last).
    if query.kind == "sequence":
        rows = store.rows_at(contig, query.start[0] + 1)
    elif query.kind == "range":
        widen = store.longest_reference(contig) - 1
        rows = store.rows_at(contig, query.start[0] + 1 - widen, query.end[0] + 1)
    else:
        rows = store.rows_at(contig, query.start[0] + 1, query.start[1] + 2)
    positions = store.positions(rows.start, rows.stop)
    return _select(query, rows, positions, _alleles_at(store, rows))


def naive_matching_variants(store: GenotypeStore, query: VariantQuery) -> list[Match]:
    """The obviously correct twin of :func:`matching_variants`: scans the contig."""
    contig = _contig(store, query.reference_name)
    if contig is None:
        return []
    rows = range(*store.contigs[contig])
    positions = store.positions(rows.start, rows.stop)
    return _select(query, rows, positions, _alleles_at(store, rows))

"""Find the variants a Beacon query asks for: binary search on sorted positions.

Beacon coordinates are 0-based and half-open; VCF's ``POS`` is 1-based. A stored
variant with ``POS`` p spans the 0-based interval ``[p - 1, p - 1 + length)``, where
``length`` is the store's ``variant_length``: ``len(REF)``, or ``END - POS + 1`` for
records with an ``END`` (symbolic structural variants). A Beacon variant is one
alternate allele, so matches are ``(row, allele)`` pairs, ``allele`` counting from 1
as in ``variant_allele``.

- *sequence* (``start=[s]``, ``alternateBases``, optional ``referenceBases``): the
  variant starts at ``s`` and has that alternate (and reference) allele;
- *range* (``start=[s]``, ``end=[e]``): the variant's interval overlaps ``[s, e)``;
  ``alternateBases``/``referenceBases`` narrow it when given;
- *bracket* (``start=[s0, s1]``, ``end=[e0, e1]``): the variant starts in
  ``[s0, s1]`` and ends in ``[e0, e1]`` (both inclusive);
- *gene* (``geneId``): a range query over the gene's interval, from a
  :class:`~genomenode.store.genes.GeneTable`;
- *hgvs* (``genomicAlleleShortForm``): a substitution on a RefSeq chromosome,
  answered as a sequence query (see :func:`resolve_hgvs`).

Every kind is narrowed by ``variantType``, ``variantMinLength`` and
``variantMaxLength``: :func:`allele_type` and :func:`allele_length` classify stored
alleles, ``docs/beacon-variants.md`` explains the choices. ``referenceName`` is
found among the dataset's contigs under any spelling (``chr22``, ``22``,
``NC_000022.11`` in GRCh38, ``refseq:NC_000022.11``; ``MT``, ``chrM``...) by
:func:`genomenode.vocab.contigs.find_contig`, which also compares ``assemblyId``
(GRCh38 = hg38 = GRCh38.p14 = GCF_000001405.26).

Only rows near the query are read: a range is widened to the left by the longest
``variant_length`` of the contig, found once per store, so nothing is scanned.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import numpy as np

from ..errors import BeaconRequestError
from ..store.genes import GeneTable
from ..store.genotypes import NOT_VARIANTS, GenotypeStore
from ..vocab.contigs import assembly_matches, find_contig, refseq_chromosome
from .query import VariantQuery

__all__ = [
    "VARIANT_TYPES",
    "allele_length",
    "allele_type",
    "alleles_with_id",
    "gene_queries",
    "matching_variants",
    "naive_matching_variants",
    "resolve_hgvs",
    "type_matches",
]

Match = tuple[int, int]

# NOT_VARIANTS as _select compares alleles (upper case).
_NOT_VARIANTS = frozenset(allele.upper() for allele in NOT_VARIANTS)

#: The ``variantType`` values genomenode classifies its alleles into; a query may
#: also use ``INDEL`` (DEL, INS or a length-changing substitution), ``SNV`` (= SNP),
#: ``SV`` (any symbolic or breakend allele) and ``CNV`` (also ``<DEL>``/``<DUP>``).
VARIANT_TYPES = ("SNP", "MNP", "DEL", "INS", "DELINS", "DUP", "INV", "CNV", "BND")

# Query types that stand for several stored types; anything else matches its own
# name and, for symbolic alleles, its subtypes (DEL matches <DEL:ME:ALU>).
_QUERY_GROUPS: dict[str, Callable[[str], bool]] = {
    "INDEL": lambda kind: kind in ("DEL", "INS", "DELINS"),
    "SNV": lambda kind: kind == "SNP",
    "SV": lambda kind: kind.startswith("<") or kind == "BND",
    "CNV": lambda kind: re.match(r"^<(CNV|DEL|DUP|CN\d+)[:>]", kind) is not None,
}


def _trim(reference: str, alternate: str) -> tuple[str, str]:
    """Drop the bases REF and ALT share at the end, then at the start (as bcftools)."""
    while reference and alternate and reference[-1] == alternate[-1]:
        reference, alternate = reference[:-1], alternate[:-1]
    while reference and alternate and reference[0] == alternate[0]:
        reference, alternate = reference[1:], alternate[1:]
    return reference, alternate


def allele_type(reference: str, alternate: str) -> str | None:
    """The ``variantType`` of one alternate allele, or None if it has none.

    Sequence alleles are compared after trimming the bases REF and ALT share (as
    bcftools does, so ``AC>AT`` is a SNP): ``SNP`` (one base substituted), ``MNP``
    (several, same length), ``DEL`` / ``INS`` (bases only removed / only added) and
    ``DELINS`` (both, a length change). Symbolic alleles keep their tag in angle
    brackets (``<DEL>``, ``<DUP:TANDEM>``); breakends are ``BND``. ``*``, ``<*>``,
    ``<NON_REF>``, ``.`` and an ALT equal to REF have no type.

    Examples
    --------
    >>> allele_type("A", "G"), allele_type("ACGT", "A"), allele_type("A", "<DUP>")
    ('SNP', 'DEL', '<DUP>')
    """
    reference, alternate = reference.upper(), alternate.upper()
    if alternate in ("", "*", ".", "<*>", "<NON_REF>"):
        return None
    if alternate.startswith("<") and alternate.endswith(">"):
        return alternate
    if "[" in alternate or "]" in alternate or "." in (alternate[0], alternate[-1]):
        return "BND"
    reference, alternate = _trim(reference, alternate)
    if len(reference) == len(alternate):
        if not reference:
            return None
        return "SNP" if len(reference) == 1 else "MNP"
    if not alternate:
        return "DEL"
    if not reference:
        return "INS"
    return "DELINS"


def allele_length(reference: str, alternate: str, span: int) -> int | None:
    """The length in bases of one alternate allele, for ``variantMin/MaxLength``.

    Parameters
    ----------
    reference, alternate
        The alleles as stored.
    span
        The record's ``variant_length`` (``END - POS + 1`` when ``END`` is given).

    Returns
    -------
    int or None
        SNP and MNP: the number of substituted bases (after trimming); DEL, INS and
        DELINS: ``|len(ALT) - len(REF)|``; symbolic alleles: ``END - POS``, or
        None when that is 0 (``<INS>``); breakends and alleles without a type:
        None. An allele without a length never matches a length bound.
    """
    kind = allele_type(reference, alternate)
    if kind is None or kind == "BND":
        return None
    if kind.startswith("<"):
        # <INS> and the like have END = POS: their length is not in the record.
        return span - 1 if span > 1 else None
    if kind in ("SNP", "MNP"):
        return len(_trim(reference.upper(), alternate.upper())[0])
    return abs(len(alternate) - len(reference))


def type_matches(query_type: str, kind: str | None) -> bool:
    """Whether an allele of type ``kind`` answers ``variantType=query_type``.

    Case-insensitive; angle brackets in the query are optional (``DUP`` and
    ``<DUP>`` are the same). A type matches its symbolic subtypes (``DEL`` matches
    ``<DEL:ME>``) and its sequence form (``DEL`` matches a 3-base deletion).
    """
    if kind is None:
        return False
    wanted = query_type.strip().upper().strip("<>")
    group = _QUERY_GROUPS.get(wanted)
    if group is not None and group(kind):
        return True
    tag = kind.strip("<>")
    return tag == wanted or tag.startswith(wanted + ":")


def _contig(
    store: GenotypeStore, query: VariantQuery, assembly: str | None
) -> str | None:
    """The store's name for the query's ``referenceName``, in any spelling."""
    for name in (query.reference_name_original, query.reference_name):
        if name:
            found = find_contig(store.contigs, name, assembly)
            if found is not None:
                return found
    return None


def _spans(store: GenotypeStore, rows: range, alleles: np.ndarray) -> np.ndarray:
    if len(rows) == 0:
        return np.empty(0, dtype=np.int64)
    if store.has("variant_length"):
        return store.read("variant_length", rows.start, rows.stop)
    return np.array([len(str(row[0])) for row in alleles])


def _bases_match(pattern: str, bases: str) -> bool:
    """``bases`` equals ``pattern``, where ``N`` in the pattern stands for any base."""
    if "N" not in pattern:
        return bases == pattern
    return len(bases) == len(pattern) and all(
        wanted in ("N", found) for wanted, found in zip(pattern, bases, strict=True)
    )


def _select(
    query: VariantQuery,
    rows: range,
    positions: np.ndarray,
    alleles: np.ndarray,
    spans: np.ndarray,
) -> list[Match]:
    """The (row, allele) pairs of ``rows`` that satisfy ``query``, exactly."""
    matches: list[Match] = []
    reference_bases = (query.reference_bases or "").upper() or None
    alternate_bases = (query.alternate_bases or "").upper() or None
    minimum, maximum = query.variant_min_length, query.variant_max_length
    for offset, row in enumerate(rows):
        reference = str(alleles[offset][0]).upper()
        begin = int(positions[offset]) - 1
        span = int(spans[offset])
        end = begin + span
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
        if reference_bases is not None and not _bases_match(reference_bases, reference):
            continue
        for index, allele in enumerate(alleles[offset][1:], start=1):
            allele = str(allele).upper()
            if not allele or allele in _NOT_VARIANTS:
                continue
            wanted = alternate_bases
            if wanted is not None and not _bases_match(wanted, allele):
                continue
            if query.variant_type is not None and not type_matches(
                query.variant_type, allele_type(reference, allele)
            ):
                continue
            if minimum is not None or maximum is not None:
                length = allele_length(reference, allele, span)
                if length is None:
                    continue
                if (minimum is not None and length < minimum) or (
                    maximum is not None and length > maximum
                ):
                    continue
            matches.append((row, index))
    return matches


def _select_fast(
    query: VariantQuery,
    rows: range,
    positions: np.ndarray,
    alleles: np.ndarray,
    spans: np.ndarray,
) -> list[Match]:
    """:func:`_select`, with the position test and, for a query on positions
    only (no bases, type or length), the allele test done on whole arrays."""
    if len(rows) == 0 or query.kind not in ("sequence", "range", "bracket"):
        return _select(query, rows, positions, alleles, spans)
    begins = positions.astype(np.int64) - 1
    ends = begins + spans.astype(np.int64)
    if query.kind == "sequence":
        keep = begins == query.start[0]
    elif query.kind == "range":
        keep = (begins < query.end[0]) & (ends > query.start[0])
    else:
        keep = (
            (query.start[0] <= begins)
            & (begins <= query.start[1])
            & (query.end[0] <= ends)
            & (ends <= query.end[1])
        )
    offsets = np.flatnonzero(keep)
    positional_only = (
        not (query.reference_bases or query.alternate_bases)
        and query.variant_type is None
        and query.variant_min_length is None
        and query.variant_max_length is None
    )
    if not positional_only:
        matches: list[Match] = []
        for offset in offsets.tolist():
            row = rows.start + offset
            one = range(row, row + 1)
            matches.extend(
                _select(
                    query,
                    one,
                    positions[offset : offset + 1],
                    alleles[offset : offset + 1],
                    spans[offset : offset + 1],
                )
            )
        return matches
    alternates = alleles[offsets, 1:]
    present = (alternates != "") & ~np.isin(alternates, sorted(NOT_VARIANTS))
    kept, allele = np.nonzero(present)
    return list(
        zip(
            (rows.start + offsets[kept]).tolist(),
            (allele + 1).tolist(),
            strict=True,
        )
    )


def _search(
    store: GenotypeStore, query: VariantQuery, assembly: str | None
) -> list[Match]:
    contig = _contig(store, query, assembly)
    if contig is None:
        return []
    # rows_at takes 1-based POS in [first, last).
    if query.kind == "sequence":
        rows = store.rows_at(contig, query.start[0] + 1)
    elif query.kind == "range":
        widen = store.longest_span(contig) - 1
        rows = store.rows_at(contig, query.start[0] + 1 - widen, query.end[0] + 1)
    else:
        rows = store.rows_at(contig, query.start[0] + 1, query.start[1] + 2)
    positions = store.positions(rows.start, rows.stop)
    alleles = _alleles_at(store, rows)
    return _select_fast(query, rows, positions, alleles, _spans(store, rows, alleles))


def _scan(
    store: GenotypeStore, query: VariantQuery, assembly: str | None
) -> list[Match]:
    contig = _contig(store, query, assembly)
    if contig is None:
        return []
    rows = range(*store.contigs[contig])
    positions = store.positions(rows.start, rows.stop)
    alleles = _alleles_at(store, rows)
    return _select(query, rows, positions, alleles, _spans(store, rows, alleles))


def _alleles_at(store: GenotypeStore, rows: range) -> np.ndarray:
    if len(rows) == 0:
        return np.empty((0, 0), dtype=object)
    return store.alleles(rows.start, rows.stop)


def alleles_with_id(
    store: GenotypeStore,
    contig: str,
    position: int,
    reference: str,
    alternate: str,
    assembly: str | None = None,
) -> list[Match]:
    """The (row, allele) pairs a variant id (``22-16050075-A-G``) names: the
    contig in any spelling (``chr22``, ``NC_000022.11`` in its assembly), ``POS``
    (1-based) and the alleles exactly as stored."""
    name = find_contig(store.contigs, contig, assembly)
    if name is None:
        return []
    rows = store.rows_at(name, position)
    alleles = _alleles_at(store, rows)
    found: list[Match] = []
    for offset, row in enumerate(rows):
        if str(alleles[offset][0]) != reference:
            continue
        for index, allele in enumerate(alleles[offset][1:], start=1):
            if str(allele) == alternate and alternate not in NOT_VARIANTS:
                found.append((row, index))
    return found


def gene_queries(query: VariantQuery, genes: GeneTable) -> list[VariantQuery]:
    """The range queries a gene query stands for: one per gene its ``geneId`` names.

    Every other parameter (``variantType``, ``alternateBases``, lengths ...) is kept.
    An unknown gene gives no query, so it matches nothing.
    """
    if query.gene_id is None:
        return []
    return [
        dataclasses.replace(
            query,
            kind="range",
            reference_name=gene.contig,
            reference_name_original=gene.contig,
            start=(gene.start,),
            end=(gene.end,),
        )
        for gene in genes.lookup(query.gene_id)
    ]


def _answer(
    store: GenotypeStore,
    query: VariantQuery,
    genes: GeneTable | None,
    assembly: str | None,
    search: Callable[[GenotypeStore, VariantQuery, str | None], list[Match]],
) -> list[Match]:
    def find(store: GenotypeStore, query: VariantQuery) -> list[Match]:
        return search(store, query, assembly)

    if query.mate_name is not None:
        # Refused rather than ignored: a breakend query answered as if its mate
        # did not matter would return variants the caller did not ask for.
        raise BeaconRequestError(
            "is not supported (breakend mates are not indexed on this node)",
            field="mateName",
        )
    if query.kind == "hgvs":
        return find(store, resolve_hgvs(query))
    if query.kind != "gene":
        return find(store, query)
    if query.aminoacid_change is not None:
        raise BeaconRequestError(
            "is not supported (no transcript annotation on this node)",
            field="aminoacidChange",
        )
    if genes is None:
        return []
    found: set[Match] = set()
    for ranged in gene_queries(query, genes):
        found.update(find(store, ranged))
    return sorted(found)


def matching_variants(
    store: GenotypeStore,
    query: VariantQuery,
    *,
    genes: GeneTable | None = None,
    assembly: str | None = None,
) -> list[Match]:
    """The (row, allele) pairs that answer ``query``, found by binary search.

    Parameters
    ----------
    store
        The dataset's genotypes.
    query
        Any kind of variant query; ``variantType`` and the length bounds narrow it.
    genes
        The dataset's gene table (:func:`~genomenode.store.genes.gene_table_for`),
        for gene queries. Without one a gene query matches nothing; an unknown gene
        matches nothing either.
    assembly
        The dataset's assembly: a RefSeq ``referenceName`` finds a contig only in
        a dataset of its own assembly (none when None).

    Returns
    -------
    list of (int, int)
        ``(row, allele)`` in row order, each once.

    Raises
    ------
    BeaconRequestError
        For ``aminoacidChange`` and for HGVS descriptions other than a genomic
        substitution on a GRCh37/GRCh38 RefSeq chromosome.
    """
    return _answer(store, query, genes, assembly, _search)


def naive_matching_variants(
    store: GenotypeStore,
    query: VariantQuery,
    *,
    genes: GeneTable | None = None,
    assembly: str | None = None,
) -> list[Match]:
    """The obviously correct twin of :func:`matching_variants`: scans the contig."""
    return _answer(store, query, genes, assembly, _scan)


# ---------------------------------------------------------------------------- HGVS

_HGVS_SUBSTITUTION = re.compile(
    r"^(?P<accession>NC_\d+\.\d+):g\.(?P<position>[1-9]\d*)"
    r"(?P<reference>[ACGT])>(?P<alternate>[ACGT])$",
    re.IGNORECASE,
)


def resolve_hgvs(query: VariantQuery) -> VariantQuery:
    """The sequence query an HGVS ``genomicAlleleShortForm`` describes.

    Only genomic substitutions on the RefSeq chromosomes of GRCh37 and GRCh38
    (``NC_000022.11:g.16050075A>G``) are read: they need no reference sequence.
    Deletions, insertions and duplications are 3'-shifted in HGVS but left-aligned
    in VCF, so translating them needs the reference genome, which a node does not
    hold; they are refused rather than answered wrongly.

    Returns
    -------
    VariantQuery
        ``kind="sequence"`` with ``referenceName``, 0-based ``start``, the bases
        and ``assembly_id`` set from the accession (other parameters kept).

    Raises
    ------
    BeaconRequestError
        Naming ``genomicAlleleShortForm`` for anything else, or ``assemblyId``
        when it contradicts the accession's assembly.
    """
    text = (query.genomic_allele_short_form or "").strip()
    field = "genomicAlleleShortForm"
    found = _HGVS_SUBSTITUTION.match(text)
    if found is None:
        raise BeaconRequestError(
            f"{text!r}: only genomic substitutions on a GRCh37/GRCh38 RefSeq "
            "chromosome are supported, e.g. NC_000022.11:g.16050075A>G",
            field=field,
        )
    chromosome = refseq_chromosome(found["accession"])
    if chromosome is None:
        raise BeaconRequestError(
            f"{found['accession']!r} is not a GRCh37 or GRCh38 RefSeq chromosome",
            field=field,
        )
    contig, assembly = chromosome
    if assembly is not None and not assembly_matches(query.assembly_id, assembly):
        raise BeaconRequestError(
            f"{query.assembly_id!r} contradicts {found['accession']} ({assembly})",
            field="assemblyId",
        )
    return dataclasses.replace(
        query,
        kind="sequence",
        reference_name=contig,
        reference_name_original=found["accession"],
        assembly_id=query.assembly_id or assembly,
        start=(int(found["position"]) - 1,),
        end=(),
        reference_bases=found["reference"].upper(),
        alternate_bases=found["alternate"].upper(),
    )

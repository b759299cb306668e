"""Names of the human chromosomes and assemblies: every spelling one chromosome has.

A chromosome of GRCh37 or GRCh38 goes by several names: ``22``, ``chr22``, its
RefSeq accession ``NC_000022.11`` (GRCh38; ``NC_000022.10`` in GRCh37), and the
Beacon schema's ``refseq:NC_000022.11``; the mitochondrion is ``MT``, ``M``,
``chrM`` or ``NC_012920.1``. A dataset's VCF uses one spelling; a query may use
any, and :func:`find_contig` finds the dataset's name for it. A RefSeq accession
names one assembly's sequence, so it finds a contig only in a dataset of that
assembly (``NC_012920.1``, the same rCRS sequence in both, in either).

Assemblies are compared by family (:func:`normalise_assembly`): ``GRCh38``,
``GRCh38.p14``, ``hg38`` and the RefSeq assembly accessions ``GCF_000001405.26``
to ``.40`` (GenBank ``GCA_000001405.15`` to ``.29``) are all ``GRCh38``.

The table of accessions is ``data/refseq_chromosomes.tsv`` (NCBI assembly reports).
"""

from __future__ import annotations

import csv
import functools
import importlib.resources
import re
from collections.abc import Iterable

__all__ = [
    "assembly_matches",
    "chromosome_name",
    "find_contig",
    "normalise_assembly",
    "refseq_accession",
    "refseq_chromosome",
]

# Names of one assembly, by family; patch releases (GRCh38.p14) and UCSC names
# (hg38) describe the same coordinates on the primary chromosomes.
_ASSEMBLY_FAMILIES = (
    ("GRCh38", re.compile(r"^(grch38|hg38|hs38|hs38dh)$")),
    ("GRCh37", re.compile(r"^(grch37|hg19|b37|hs37|hs37d5|grch37-lite)$")),
    ("NCBI36", re.compile(r"^(ncbi36|hg18)$")),
)
_PATCH = re.compile(r"\.p\d+$")
# Versions of the human assembly accession: RefSeq GCF_000001405.13 is GRCh37 and
# .25 GRCh37.p13, .26 GRCh38 and .40 GRCh38.p14; GenBank GCA_000001405.1 is
# GRCh37, .14 GRCh37.p13, .15 GRCh38, .29 GRCh38.p14.
_ASSEMBLY_ACCESSION = re.compile(r"^(gcf|gca)_000001405\.(\d+)$")
_ACCESSION_VERSIONS = {
    "gcf": (("GRCh37", range(13, 26)), ("GRCh38", range(26, 41))),
    "gca": (("GRCh37", range(1, 15)), ("GRCh38", range(15, 30))),
}
_REFSEQ_PREFIX = re.compile(r"^refseq:", re.IGNORECASE)
_CHR_PREFIX = re.compile(r"^chr(?=.)", re.IGNORECASE)
_MITOCHONDRION = frozenset({"M", "MT"})


def normalise_assembly(name: str) -> str:
    """The family name of an assembly: ``GRCh38``, ``GRCh37``, ``NCBI36``, or as given.

    Case-insensitive; a patch suffix (``.p14``) is dropped; ``hg38`` and
    ``GCF_000001405.26`` to ``.40`` are ``GRCh38``; ``hg19``, ``b37``, ``hs37d5``
    and ``GCF_000001405.13`` to ``.25`` are ``GRCh37``; ``hg18`` is ``NCBI36``. An
    unknown name comes back stripped and upper-cased.

    Examples
    --------
    >>> normalise_assembly("GRCh38.p14"), normalise_assembly("hg19")
    ('GRCh38', 'GRCh37')
    >>> normalise_assembly("GCF_000001405.25")
    'GRCh37'
    """
    text = _PATCH.sub("", name.strip().lower())
    for family, pattern in _ASSEMBLY_FAMILIES:
        if pattern.match(text):
            return family
    accession = _ASSEMBLY_ACCESSION.match(text)
    if accession is not None:
        version = int(accession[2])
        for family, versions in _ACCESSION_VERSIONS[accession[1]]:
            if version in versions:
                return family
    return text.upper()


def assembly_matches(query_assembly: str | None, dataset_assembly: str) -> bool:
    """Whether a query's ``assemblyId`` selects a dataset of ``dataset_assembly``.

    None (no ``assemblyId`` sent) matches every dataset; otherwise both names are
    compared by :func:`normalise_assembly`.
    """
    if query_assembly is None or not query_assembly.strip():
        return True
    return normalise_assembly(query_assembly) == normalise_assembly(dataset_assembly)


@functools.cache
def _refseq_table() -> dict[str, tuple[str, str | None]]:
    text = importlib.resources.files("genomenode.data").joinpath(
        "refseq_chromosomes.tsv"
    )
    lines = [line for line in text.read_text().splitlines() if not line.startswith("#")]
    return {
        row["accession"].upper(): (row["chromosome"], row["assembly"] or None)
        for row in csv.DictReader(lines, delimiter="\t")
    }


def refseq_chromosome(name: str) -> tuple[str, str | None] | None:
    """The chromosome (``17``) of a RefSeq accession (``NC_000017.11``, with or
    without ``refseq:``) and the assembly it belongs to (None: both, as the
    mitochondrion), or None if it is not one."""
    return _refseq_table().get(_REFSEQ_PREFIX.sub("", name.strip()).upper())


def refseq_accession(assembly: str, contig: str) -> str | None:
    """The RefSeq accession of chromosome ``contig`` (any spelling) in
    ``assembly`` (any spelling :func:`normalise_assembly` knows), or None."""
    chromosome = chromosome_name(contig, assembly)
    family = normalise_assembly(assembly)
    for accession, (name, owner) in _refseq_table().items():
        if name == chromosome and owner in (family, None):
            return accession
    return None


def chromosome_name(name: str, assembly: str | None) -> str | None:
    """The one name (``1`` ... ``22``, ``X``, ``Y``, ``MT``) of a chromosome's
    spelling in a dataset of ``assembly``, or None if ``name`` spells none there.

    ``chr`` (any case) is dropped, ``M`` is ``MT``, ``x`` is ``X``; a RefSeq
    accession (``NC_000022.11``, ``refseq:NC_000022.11``) names its chromosome only
    in its own assembly's family (``NC_012920.1`` in any), never when ``assembly``
    is None or another.

    Examples
    --------
    >>> chromosome_name("chrM", "GRCh38"), chromosome_name("NC_000023.10", "hg19")
    ('MT', 'X')
    >>> chromosome_name("NC_000022.10", "GRCh38") is None
    True
    """
    text = name.strip()
    refseq = refseq_chromosome(text)
    if refseq is not None:
        chromosome, owner = refseq
        if owner is None:
            return chromosome
        if assembly is not None and normalise_assembly(assembly) == owner:
            return chromosome
        return None
    bare = _CHR_PREFIX.sub("", text).upper()
    if bare in _MITOCHONDRION:
        return "MT"
    if bare in ("X", "Y") or (bare.isdigit() and 1 <= int(bare) <= 22):
        return str(int(bare)) if bare.isdigit() else bare
    return None


def find_contig(names: Iterable[str], wanted: str, assembly: str | None) -> str | None:
    """The name among ``names`` (a dataset's contigs) that ``wanted`` spells, or None.

    A name spelled exactly as the dataset does is always found (``GL000192.1``,
    ``chrUn_KI270302v1``); a chromosome is found under any of its spellings
    (:func:`chromosome_name`), whichever the dataset uses.
    """
    candidates = list(names)
    text = wanted.strip()
    if text in candidates:
        return text
    chromosome = chromosome_name(text, assembly)
    if chromosome is None:
        return None
    for name in candidates:
        if chromosome_name(name, assembly) == chromosome:
            return name
    return None

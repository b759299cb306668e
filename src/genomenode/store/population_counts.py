"""Numeric kernel: counts and carriers of one allele in one variant's genotypes.

The input is one row of ``call_genotype``, shape ``(samples, ploidy)`` with ploidy
1 or 2, ``-1`` for a missing allele and ``-2`` for the fill of a shorter ploidy (a
haploid call in a diploid array). The counts follow the dataset-wide statistics of
:mod:`genomenode.store.genotype_counts` call for call, so that the counts of every
group add up to the stored ``variant_allele_count`` ... of the variant:

- a diploid call ``a/a`` is homozygous and adds 2 to ``allele_count_hom``;
- ``a/b`` with ``b`` another called allele is heterozygous and adds 1 to
  ``allele_count_het``;
- a call with one called allele adds it to ``allele_count_hemi``: a haploid call
  ``a`` (``a`` and fill), and a partly missing diploid call ``a/.`` or ``./a``,
  which ``bcftools +fill-tags`` counts as haploid too (the 1000 Genomes chrX
  release writes males so);
- a call is called (``num_called``, bcftools ``NS``) when it has a called allele.

Each function has a naive twin (``naive_*``) written as plain loops, for tests.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

__all__ = [
    "CarrierCalls",
    "PopulationCounts",
    "carrier_calls",
    "naive_carrier_calls",
    "naive_population_counts",
    "population_counts",
]

_MISSING = -1
_FILL = -2


@dataclasses.dataclass(frozen=True)
class PopulationCounts:
    """Counts of one allele of one variant per group of samples (arrays by group).

    Attributes
    ----------
    allele_count
        Copies of the allele among called alleles (``AC``).
    allele_total
        Called alleles (``AN``).
    allele_count_hom
        Copies of the allele in homozygous diploid calls: twice the number of
        homozygous individuals, as ``variant_allele_count_hom`` (bcftools
        ``AC_Hom``).
    allele_count_het
        Copies in heterozygous diploid calls, which is the number of heterozygous
        carriers (``AC_Het``).
    allele_count_hemi
        Copies in calls with one called allele (haploid, or a partly missing
        ``1/.``), which is the number of hemizygous carriers (``AC_Hemi``).
    num_called
        Samples whose call has at least one called allele (``NS``).
    """

    allele_count: np.ndarray
    allele_total: np.ndarray
    allele_count_hom: np.ndarray
    allele_count_het: np.ndarray
    allele_count_hemi: np.ndarray
    num_called: np.ndarray

    @property
    def num_hom(self) -> np.ndarray:
        """Homozygous individuals per group (half of ``allele_count_hom``)."""
        return self.allele_count_hom // 2


@dataclasses.dataclass(frozen=True)
class CarrierCalls:
    """The calls of the samples that carry an allele (arrays by carrier).

    Attributes
    ----------
    samples
        Sample indices (columns of ``call_genotype``), ascending.
    copies
        Copies of the allele in the sample's call (1 or 2).
    ploidy
        Alleles in the call, fill not counted: 1 for a haploid call, else 2.
    called
        Called (not missing) alleles in the call: 1 for a haploid call and for a
        partly missing call such as ``1/.``, else 2.
    """

    samples: np.ndarray
    copies: np.ndarray
    ploidy: np.ndarray
    called: np.ndarray

    def zygosity(self) -> list[str]:
        """``homozygous``, ``heterozygous`` or ``hemizygous`` by carrier.

        A call with one called allele is hemizygous, a partly missing ``1/.`` too,
        as the counts (``allele_count_hemi``) and bcftools count it.
        """
        names = np.array(["heterozygous", "homozygous", "hemizygous"])
        kind = np.select([self.called == 1, self.copies == 2], [2, 1], default=0)
        return names[kind].tolist()


def _per_call(genotypes: np.ndarray, allele: int) -> tuple[np.ndarray, ...]:
    """Copies of ``allele``, called alleles and ploidy of each call (uint8)."""
    copies = (genotypes == allele).sum(axis=1, dtype=np.uint8)
    called = (genotypes >= 0).sum(axis=1, dtype=np.uint8)
    ploidy = (genotypes != _FILL).sum(axis=1, dtype=np.uint8)
    return copies, called, ploidy


# A call's kind is (copies * 3 + called) * 3 + ploidy, each 0..2: 27 kinds.
_KINDS = 27


@functools.lru_cache(maxsize=256)
def _kind_table(allele: int, ploidy: int) -> np.ndarray:
    """Kind of every possible call, indexed by the call's bytes read as one integer.

    65,536 entries for diploid calls, 256 for haploid: one gather then classifies
    a whole variant, where per-call arithmetic would take a dozen passes.
    """
    codes = np.arange(256**ploidy, dtype=f"<u{ploidy}")
    calls = codes.view(np.int8).reshape(-1, ploidy)
    copies, called, ploidy_of_call = _per_call(calls, allele)
    return ((copies * 3 + called) * 3 + ploidy_of_call).astype(np.uint8)


def _kinds(genotypes: np.ndarray, allele: int) -> np.ndarray:
    if genotypes.ndim != 2 or genotypes.shape[1] not in (1, 2):
        raise ValueError(f"genotypes of shape {genotypes.shape}: want (samples, 1|2)")
    if allele < 0:
        raise ValueError(f"allele {allele} is not an allele index")
    ploidy = genotypes.shape[1]
    codes = np.ascontiguousarray(genotypes).view(f"<u{ploidy}").ravel()
    return _kind_table(allele, ploidy)[codes]


def population_counts(
    genotypes: np.ndarray, allele: int, groups: np.ndarray, num_groups: int
) -> PopulationCounts:
    """Counts of ``allele`` in each group of samples, from one variant's genotypes.

    Parameters
    ----------
    genotypes
        One variant's calls, shape ``(samples, ploidy)``, ploidy 1 or 2.
    allele
        Allele index as in ``variant_allele``: 0 is REF, 1 the first ALT.
    groups
        Group index of each sample, ``0 <= group < num_groups``, or -1 to leave
        the sample out.
    num_groups
        Number of groups; the result's arrays have this length.

    Returns
    -------
    PopulationCounts
        int64 arrays of length ``num_groups``.
    """
    if len(groups) != len(genotypes):
        raise ValueError(f"{len(groups)} groups for {len(genotypes)} samples")
    kinds = _kinds(genotypes, allele)
    # One bincount over (group, kind) gives every count at once. Excluded samples
    # go to an extra group that is dropped.
    group = np.where(groups < 0, num_groups, groups).astype(np.intp)
    group *= _KINDS
    group += kinds
    table = np.bincount(group, minlength=(num_groups + 1) * _KINDS)
    table = table[: num_groups * _KINDS].reshape(num_groups, 3, 3, 3)
    values = np.arange(3)
    return PopulationCounts(
        allele_count=np.einsum("gcdp,c->g", table, values),
        allele_total=np.einsum("gcdp,d->g", table, values),
        allele_count_hom=2 * table[:, 2, 2, 2],
        allele_count_het=table[:, 1, 2, 2],
        # One called allele, haploid (ploidy 1) or partly missing (ploidy 2).
        allele_count_hemi=table[:, 1, 1, 1] + table[:, 1, 1, 2],
        num_called=table[:, :, 1:, :].sum(axis=(1, 2, 3)),
    )


def naive_population_counts(
    genotypes: np.ndarray, allele: int, groups: np.ndarray, num_groups: int
) -> PopulationCounts:
    """The obviously correct twin of :func:`population_counts`, for tests."""
    counts = {
        name: [0] * num_groups
        for name in (
            "allele_count",
            "allele_total",
            "allele_count_hom",
            "allele_count_het",
            "allele_count_hemi",
            "num_called",
        )
    }
    for sample, call in enumerate(genotypes.tolist()):
        group = int(groups[sample])
        if group < 0:
            continue
        alleles = [value for value in call if value != _FILL]
        present = [value for value in alleles if value != _MISSING]
        counts["allele_count"][group] += present.count(allele)
        counts["allele_total"][group] += len(present)
        if not present:
            continue
        counts["num_called"][group] += 1
        if len(present) == 1:
            counts["allele_count_hemi"][group] += present.count(allele)
        elif present == [allele, allele]:
            counts["allele_count_hom"][group] += 2
        elif allele in present:
            counts["allele_count_het"][group] += 1
    return PopulationCounts(
        **{name: np.array(values, dtype=np.int64) for name, values in counts.items()}
    )


def carrier_calls(genotypes: np.ndarray, allele: int) -> CarrierCalls:
    """The samples whose call has at least one copy of ``allele``, with their calls.

    Parameters
    ----------
    genotypes
        One variant's calls, shape ``(samples, ploidy)``, ploidy 1 or 2.
    allele
        Allele index as in ``variant_allele``: 0 is REF, 1 the first ALT.
    """
    kinds = _kinds(genotypes, allele)
    samples = np.flatnonzero(kinds >= 9)  # copies >= 1
    kinds = kinds[samples]
    return CarrierCalls(
        samples=samples,
        copies=kinds // 9,
        ploidy=kinds % 3,
        called=kinds // 3 % 3,
    )


def naive_carrier_calls(genotypes: np.ndarray, allele: int) -> CarrierCalls:
    """The obviously correct twin of :func:`carrier_calls`, for tests."""
    rows: list[tuple[int, int, int, int]] = []
    for sample, call in enumerate(genotypes.tolist()):
        alleles = [value for value in call if value != _FILL]
        if allele in alleles:
            present = [value for value in alleles if value != _MISSING]
            rows.append((sample, alleles.count(allele), len(alleles), len(present)))
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    return CarrierCalls(
        samples=np.array(columns[0], dtype=np.intp),
        copies=np.array(columns[1], dtype=np.uint8),
        ploidy=np.array(columns[2], dtype=np.uint8),
        called=np.array(columns[3], dtype=np.uint8),
    )

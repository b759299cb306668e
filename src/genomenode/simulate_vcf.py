"""Genotype side of :mod:`genomenode.simulate`: msprime simulation and fast VCF.

The coalescent simulation uses a European-like demography so that allele
frequencies, linkage disequilibrium and population structure look like real
data.  A 20,000-sample cohort over 5 Mb has ~55,000 sites and ~11 GB of
uncompressed VCF text, so per-genotype Python string formatting is far too
slow: whole chunks of variants are formatted by one numpy gather from a table
of precomputed fixed-width ``GT:DP:GQ`` fields, and BGZF blocks are compressed
on a small thread pool (zlib releases the GIL; compression dominates the run
time).  Memory is bounded by one chunk of variants, never by the whole
genotype matrix.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msprime
import numpy as np
import pysam
import tskit

from .store.private import private_files

RECOMBINATION_RATE = 1.2e-8
MUTATION_RATE = 1.25e-8
_SOUTHERN = frozenset({"BG", "CY", "ES", "GR", "HR", "IT", "MT", "PT", "RO", "SI"})

# htslib's maximum uncompressed payload per BGZF block; a raw-deflated block of
# this size always fits in the 64 KiB BGZF block limit, even if incompressible.
_BLOCK_PAYLOAD = 0xFF00
# gzip member header with the BGZF "BC" extra field.  MTIME is 0, so output
# never embeds a timestamp and is byte-identical across runs.
_HEADER = struct.Struct("<4BI2BH2BHH")
_TRAILER = struct.Struct("<II")
_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_ACGT = frozenset("ACGT")
# Bytes of gathered table rows per chunk (~16 MiB); bounds the working memory.
_CHUNK_BYTES = 1 << 24


def _demography() -> msprime.Demography:
    """European-like demography (generations; sizes are diploid Ne).

    An ancestral population (Ne 7,300, as in out-of-Africa models) splits
    1,000 generations ago into north-west and southern Europeans, who grow
    exponentially to 30,000 and 25,000 and exchange migrants; Finns split from
    north-west Europeans 150 generations ago through a ~1,000-individual
    founder bottleneck and grow to 10,000, which enriches rare variants and
    long haplotypes as in real Finnish data.
    """
    dem = msprime.Demography()
    for name, description, size, growth in (
        ("FIN", "Finnish-like, bottlenecked", 10_000, 0.0154),
        ("NWE", "North-west European", 30_000, 0.0028),
        ("SEU", "Southern European", 25_000, 0.0027),
    ):
        # All three sample from time 0, although NWE is the ancestor of FIN.
        dem.add_population(
            name=name,
            description=description,
            initial_size=size,
            growth_rate=growth,
            initially_active=True,
        )
    dem.add_population(name="ANC", description="Ancestral", initial_size=7_300)
    dem.set_symmetric_migration_rate(["NWE", "SEU"], 1e-4)
    dem.set_symmetric_migration_rate(["FIN", "NWE"], 5e-5)
    dem.add_population_split(time=150, derived=["FIN"], ancestral="NWE")
    dem.add_population_split(time=1_000, derived=["NWE", "SEU"], ancestral="ANC")
    return dem


def simulate_tree_sequence(
    *, samples: int = 2000, seed: int = 7, length: int = 5_000_000, country: str = "FI"
) -> tskit.TreeSequence:
    """Simulate the genealogy and mutations of a cohort.

    80% of the diploid individuals come from the population matching
    ``country`` and 10% from each of the other two.  :func:`simulate_cohort`
    writes this tree sequence's biallelic SNVs, so tests and benchmarks can
    compare against it.

    Parameters
    ----------
    samples : int
        Number of diploid individuals.
    seed : int
        Random seed.
    length : int
        Sequence length in base pairs (discrete genome).
    country : str
        ISO 3166-1 alpha-2 code selecting the main population.

    Returns
    -------
    tskit.TreeSequence
        Individuals ordered by population (see :func:`simulate_cohort` for the
        sample order of the VCF).
    """
    country = country.upper()
    home = "FIN" if country == "FI" else "SEU" if country in _SOUTHERN else "NWE"
    others = [p for p in ("FIN", "NWE", "SEU") if p != home]
    rest = samples // 5
    counts = {home: samples - rest, others[0]: (rest + 1) // 2, others[1]: rest // 2}
    anc_seed, mut_seed = _msprime_seeds(seed)
    ts = msprime.sim_ancestry(
        samples=[msprime.SampleSet(n, population=p) for p, n in counts.items() if n],
        demography=_demography(),
        sequence_length=length,
        recombination_rate=RECOMBINATION_RATE,
        discrete_genome=True,  # integer positions: unique, VCF-ready sites
        random_seed=anc_seed,
    )
    # JC69 (the default) on a discrete genome: ACGT alleles; sites hit twice
    # can be multiallelic and are skipped by write_vcf.
    return msprime.sim_mutations(ts, rate=MUTATION_RATE, random_seed=mut_seed)


#: Each country's population in the joint European demography of
#: :func:`simulate_countries_tree_sequence`: (diploid Ne today, growth rate per
#: generation, region). Finland and the Baltic states went through founder
#: bottlenecks; southern countries are larger and older. Other countries take the
#: defaults of their region.
_COUNTRY_SIZES: dict[str, tuple[int, float]] = {
    "FI": (10_000, 0.008),
    "EE": (10_000, 0.008),
    "IT": (30_000, 0.004),
    "ES": (30_000, 0.004),
    "PT": (20_000, 0.004),
    "GR": (20_000, 0.004),
    "DE": (30_000, 0.004),
    "FR": (30_000, 0.004),
    "GB": (30_000, 0.004),
    "NL": (20_000, 0.004),
    "SE": (15_000, 0.005),
    "NO": (12_000, 0.005),
    "DK": (12_000, 0.005),
    "PL": (25_000, 0.004),
}


def _country_region(country: str) -> str:
    if country in ("FI", "EE", "LV", "LT"):
        return "NE"  # north-east: the founder populations
    return "SEU" if country in _SOUTHERN else "NWE"


def country_demography(countries: Sequence[str]) -> msprime.Demography:
    """One joint demography with one population per country (generations; Ne).

    A shared ancestral European pool (Ne 10,000) splits 300 generations ago into
    three regional pools (north-west and south of Ne 20,000, a north-east one of
    Ne 10,000: the Finnic founders); each country splits from its region's pool 100
    generations ago and grows to its present size (``_COUNTRY_SIZES``),
    with migration between all countries (1e-4 per generation, 5e-5 to and from
    the north-east). This gives pairwise Hudson F_ST of about 0.002-0.004 between
    neighbours and 0.01-0.02 between Finland and the south, the range measured
    between European populations (1000 Genomes; Lao et al. 2008).
    """
    dem = msprime.Demography()
    regions = sorted({_country_region(country) for country in countries})
    for country in countries:
        size, growth = _COUNTRY_SIZES.get(country, (20_000, 0.004))
        dem.add_population(
            name=country,
            description=f"{country}-like population",
            initial_size=size,
            growth_rate=growth,
        )
    for region in regions:
        dem.add_population(
            name=f"REGION_{region}",
            description=f"regional ancestral pool {region}",
            initial_size=20_000 if region != "NE" else 10_000,
            initially_active=False,
        )
    dem.add_population(
        name="EUR", description="Ancestral European", initial_size=10_000
    )
    for first, second in itertools.combinations(countries, 2):
        north_east = "NE" in (_country_region(first), _country_region(second))
        rate = 5e-5 if north_east else 1e-4
        dem.set_symmetric_migration_rate([first, second], rate)
    for region in regions:
        members = [c for c in countries if _country_region(c) == region]
        dem.add_population_split(
            time=100, derived=members, ancestral=f"REGION_{region}"
        )
    dem.add_population_split(
        time=300, derived=[f"REGION_{region}" for region in regions], ancestral="EUR"
    )
    dem.sort_events()
    return dem


def simulate_countries_tree_sequence(
    *,
    samples: Sequence[int],
    countries: Sequence[str],
    seed: int = 7,
    length: int = 5_000_000,
) -> tskit.TreeSequence:
    """Simulate one shared history for several countries' cohorts.

    ``samples[i]`` diploid individuals are drawn from the population of
    ``countries[i]`` of :func:`country_demography`: the same genealogy, so the
    cohorts share their common variants at country-specific frequencies, and the
    rare ones are mostly private, as in real national cohorts.
    """
    anc_seed, mut_seed = _msprime_seeds(seed)
    ts = msprime.sim_ancestry(
        samples=[
            msprime.SampleSet(n, population=country)
            for country, n in zip(countries, samples, strict=True)
        ],
        demography=country_demography(countries),
        sequence_length=length,
        recombination_rate=RECOMBINATION_RATE,
        discrete_genome=True,
        random_seed=anc_seed,
    )
    return msprime.sim_mutations(ts, rate=MUTATION_RATE, random_seed=mut_seed)


def country_subset(ts: tskit.TreeSequence, country: str) -> tskit.TreeSequence:
    """The individuals of ``country`` alone, every site of ``ts`` kept (so a site's
    id and position are the same in every country's subset)."""
    population = next(p.id for p in ts.populations() if p.metadata["name"] == country)
    nodes = ts.samples(population=population)
    return ts.simplify(samples=nodes, filter_sites=False, filter_populations=False)


def sample_columns(ts: tskit.TreeSequence, rng: np.random.Generator) -> np.ndarray:
    """Map VCF sample columns to haplotypes, shuffling the individuals.

    msprime orders individuals by population; shuffling them keeps sample ids
    from following population labels.

    Parameters
    ----------
    ts : tskit.TreeSequence
        Tree sequence with diploid individuals.
    rng : numpy.random.Generator
        Draws the shuffle.

    Returns
    -------
    numpy.ndarray
        ``(num_individuals, 2)`` indices into ``ts.samples()`` (and so into
        ``Variant.genotypes``) of the two haplotypes of each VCF sample column.
    """
    order = rng.permutation(ts.num_individuals)
    sample_index = np.full(ts.num_nodes, -1, dtype=np.int64)
    sample_index[ts.samples()] = np.arange(ts.num_samples)
    return sample_index[ts.individuals_nodes[order]]


def _msprime_seeds(seed: int) -> tuple[int, int]:
    # msprime wants seeds in [1, 2**32); derive two independent ones.
    state = np.random.SeedSequence([seed, 1]).generate_state(2)
    return int(state[0]) % (2**31 - 2) + 1, int(state[1]) % (2**31 - 2) + 1


def choose_causal(
    ts: tskit.TreeSequence, rng: np.random.Generator
) -> list[tuple[int, str, str]]:
    """Pick the causal variants to plant.

    Parameters
    ----------
    ts : tskit.TreeSequence
        The simulated cohort.
    rng : numpy.random.Generator
        Draws the choice.

    Returns
    -------
    list of tuple
        One or two ``(position_0based, ref, alt)`` single-mutation sites with
        10-40% allele frequency, at least a tenth of the sequence apart.
    """
    candidates = []
    for tree in ts.trees():
        for site in tree.sites():
            if len(site.mutations) == 1:
                mut = site.mutations[0]
                freq = tree.num_samples(mut.node) / ts.num_samples
                if 0.10 <= freq <= 0.40:
                    candidates.append((int(site.position), site.ancestral_state, mut))
    if not candidates:
        raise ValueError("no common variant to plant; increase samples or length")
    first = candidates[int(rng.integers(len(candidates)))]
    far = [c for c in candidates if abs(c[0] - first[0]) >= ts.sequence_length / 10]
    chosen = [first] + ([far[int(rng.integers(len(far)))]] if far else [])
    return [(pos, ref, mut.derived_state) for pos, ref, mut in chosen]


def _compress_blocks(data: bytes | memoryview, level: int) -> bytes:
    """Compress ``data`` into consecutive BGZF blocks."""
    view = memoryview(data)
    out = []
    for start in range(0, len(view), _BLOCK_PAYLOAD):
        block = view[start : start + _BLOCK_PAYLOAD]
        cdata = zlib.compress(block, level, wbits=-15)
        out.append(
            _HEADER.pack(31, 139, 8, 4, 0, 0, 255, 6, 66, 67, 2, len(cdata) + 25)
        )
        out.append(cdata)
        out.append(_TRAILER.pack(zlib.crc32(block), len(block)))
    return b"".join(out)


class BgzfWriter:
    """Write a BGZF file (tabix-indexable gzip) with parallel block compression.

    Equivalent to ``pysam.BGZFile(path, "wb")`` for writing, but compresses at
    a configurable zlib ``level`` on ``threads`` threads (pysam's writer is
    single-threaded).  Each :meth:`write` compresses its complete blocks
    before returning, with the caller waiting (so without holding the GIL):
    pipelining compression with the caller's Python work was slower, because
    threads then queue for the GIL after every 64 KiB block.  Blocks are
    written in order and gzip headers carry no timestamp, so the output is
    deterministic.

    Parameters
    ----------
    path : path-like
        Output file, overwritten.
    level : int, optional
        zlib compression level (1 is ~5x faster than 6 for ~30% larger files).
    threads : int, optional
        Number of compression threads.
    """

    def __init__(self, path: str | Path, *, level: int = 1, threads: int = 2) -> None:
        self._fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._level = level
        self._threads = max(1, threads)
        self._pool = ThreadPoolExecutor(max_workers=self._threads)
        self._carry = bytearray()  # tail shorter than a block, awaiting more data

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data``, compressing and writing all complete blocks."""
        view = memoryview(data).cast("B")
        pieces: list[bytes | memoryview] = []
        if self._carry:
            need = _BLOCK_PAYLOAD - len(self._carry)
            self._carry += view[:need]
            view = view[need:]
            if len(self._carry) < _BLOCK_PAYLOAD:
                return
            pieces.append(bytes(self._carry))
            self._carry.clear()
        blocks = len(view) // _BLOCK_PAYLOAD
        self._carry += view[blocks * _BLOCK_PAYLOAD :]
        # Split the complete blocks into one contiguous group per thread.
        bounds = [
            blocks * i // self._threads * _BLOCK_PAYLOAD
            for i in range(self._threads + 1)
        ]
        pieces += [view[a:b] for a, b in itertools.pairwise(bounds) if b > a]
        self._compress(pieces)

    def _compress(self, pieces: list[bytes | memoryview]) -> None:
        futures = [self._pool.submit(_compress_blocks, p, self._level) for p in pieces]
        for future in futures:
            self._fh.write(future.result())

    def close(self) -> None:
        """Flush remaining data, write the BGZF EOF marker and close the file."""
        if self._fh.closed:
            return
        if self._carry:
            self._compress([bytes(self._carry)])
        self._pool.shutdown()
        self._fh.write(_EOF)
        self._fh.close()

    def __enter__(self) -> BgzfWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GenotypeFieldTable:
    """Precomputed ``GT:DP:GQ`` sample fields for vectorised VCF formatting.

    Mimics a QC-filtered ~30x short-read cohort: DP follows a negative
    binomial around 30 truncated to [10, 99] (genotypes with DP < 10 are
    usually set to missing), and GQ grows with depth like GATK's (about three
    phred units per read for homozygous calls, less and noisier for
    heterozygous ones), capped at 99 and floored at 10.  Keeping both values
    two-digit makes every sample field exactly 10 bytes, so a chunk is
    formatted by one gather from this table with no per-genotype string work.
    Each genotype picks one of ``draws`` tabulated (DP, GQ) pairs for its
    phased GT uniformly at random, which is equivalent to drawing them per
    genotype.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (determinism comes from its seed).
    """

    WIDTH = 10  # bytes per sample field, e.g. b"0|1:31:57\t"
    _DRAWS = 256  # tabulated (DP, GQ) pairs per genotype: one random byte each

    def __init__(self, rng: np.random.Generator) -> None:
        depth = rng.negative_binomial(8, 8 / (8 + 30), 8 * self._DRAWS)
        depth = depth[(depth >= 10) & (depth <= 99)][: self._DRAWS]
        het_noise = rng.normal(0.0, 8.0, self._DRAWS)
        fields = []
        for gt in (b"0|0", b"0|1", b"1|0", b"1|1"):
            het = gt[0] != gt[2]
            quality = 2.0 * depth + het_noise if het else 3.0 * depth - 3.0
            quality = np.clip(np.rint(quality), 10, 99).astype(int)
            fields += [
                b"%s:%d:%d\t" % (gt, d, q) for d, q in zip(depth, quality, strict=True)
            ]
        table = np.frombuffer(b"".join(fields), dtype=f"V{self.WIDTH}")
        assert len(table) == 4 * self._DRAWS  # all fields exactly WIDTH bytes
        self._table = table

    def format(
        self,
        genotypes: np.ndarray,
        haplotypes: np.ndarray,
        rng: np.random.Generator,
        out: np.ndarray,
    ) -> np.ndarray:
        """Format the sample columns of a chunk of variants.

        Parameters
        ----------
        genotypes : numpy.ndarray
            ``(variants, haplotypes)`` int8 array of 0/1 alleles.
        haplotypes : numpy.ndarray
            Flattened ``(samples, 2)`` column indices of each sample's two
            haplotypes in ``genotypes``.
        rng : numpy.random.Generator
            Draws the per-genotype DP/GQ.
        out : numpy.ndarray
            ``(variants, samples)`` array of dtype ``V10`` to fill (reused
            between chunks so no memory is allocated per chunk).

        Returns
        -------
        numpy.ndarray
            ``(variants, samples * 10)`` uint8 view of ``out``: the text of
            each row's sample columns, tab-separated and ending in a newline.
        """
        rows = len(genotypes)
        pairs = np.take(genotypes, haplotypes, axis=1).reshape(rows, -1, 2)
        codes = (pairs[..., 0] * 2 + pairs[..., 1]).astype(np.uint16) << 8
        codes |= rng.integers(0, self._DRAWS, size=codes.shape, dtype=np.uint8)
        # mode="clip" skips the bounds check and the buffered copy it implies.
        np.take(self._table, codes, out=out, mode="clip")
        text = out.view(np.uint8).reshape(rows, -1)
        text[:, -1] = ord("\n")  # the last field of a row ends the line
        return text


def _header(contig: str, length: int, sample_ids: Sequence[str]) -> bytes:
    lines = [
        "##fileformat=VCFv4.3",
        "##source=genomenode-simulate",
        f"##contig=<ID={contig},length={length}>",
        '##FILTER=<ID=PASS,Description="All filters passed">',
        '##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count in genotypes">',
        '##INFO=<ID=AN,Number=1,Type=Integer,Description="Total number of alleles">',
        '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Phased genotype">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
        '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">',
        "\t".join(
            ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"]
        )
        + "\t"
        + "\t".join(sample_ids),
    ]
    return ("\n".join(lines) + "\n").encode()


@private_files()  # genotypes: the VCF and its index are 0600
def write_vcf(
    ts: tskit.TreeSequence,
    path: str | Path,
    *,
    contig: str,
    sample_ids: Sequence[str],
    node_columns: np.ndarray,
    rng: np.random.Generator,
    on_sites: Callable[[int], None] | None = None,
    index: bool = True,
    keep_fixed: bool = False,
) -> int:
    """Write the biallelic SNVs of ``ts`` as a BGZF VCF 4.3 and tabix-index it.

    Sites with more than two alleles, non-ACGT alleles or no variation among
    the samples are skipped; REF is the ancestral allele.  Positions are
    converted from tskit's 0-based coordinates to 1-based ``POS``.

    Parameters
    ----------
    ts : tskit.TreeSequence
        Tree sequence with mutations on a discrete genome.
    path : path-like
        Output ``.vcf.gz``.
    contig : str
        CHROM value; its length is ``ts.sequence_length``.
    sample_ids : sequence of str
        VCF sample names, in column order.
    node_columns : numpy.ndarray
        ``(len(sample_ids), 2)`` indices into ``ts.samples()`` of each sample's
        two haplotypes.
    rng : numpy.random.Generator
        Source of the DP/GQ values.
    on_sites : callable, optional
        Called with the number of sites processed, for progress reporting.
    keep_fixed : bool, optional
        Also write sites where every sample carries the ALT allele (a country
        cohort of a joint simulation: the variant is real, fixed in this country,
        and other countries' cohorts have it at their own frequencies).
    index : bool, optional
        Write the ``.tbi`` with ``pysam.tabix_index``.  It re-reads the whole
        file, so callers with other work may do it themselves concurrently
        (it releases the GIL).

    Returns
    -------
    int
        Number of variant records written.
    """
    num_haps = ts.num_samples
    haplotypes = np.ascontiguousarray(node_columns).ravel()
    table = GenotypeFieldTable(rng)
    chunk = max(1, _CHUNK_BYTES // (len(sample_ids) * table.WIDTH))
    genotypes = np.empty((chunk, num_haps), dtype=np.int8)
    fields = np.empty((chunk, len(sample_ids)), dtype=f"V{table.WIDTH}")
    records: list[tuple[int, str, str]] = []
    written = 0

    def flush(out: BgzfWriter) -> None:
        nonlocal written
        counts = genotypes[: len(records)].sum(axis=1, dtype=np.int64)
        # Sites fixed among the samples (after back mutation) are not variants.
        variable = counts < num_haps if not keep_fixed else counts <= num_haps
        keep = np.flatnonzero((counts > 0) & variable)
        if len(keep):
            text = table.format(genotypes[keep], haplotypes, rng, fields[: len(keep)])
            parts: list[bytes | memoryview] = []
            for row, i in enumerate(keep.tolist()):
                (pos, ref, alt), ac = records[i], int(counts[i])
                info = f"AC={ac};AN={num_haps};AF={ac / num_haps:.6g}"
                line = f"{contig}\t{pos}\t.\t{ref}\t{alt}\t.\tPASS\t{info}\tGT:DP:GQ\t"
                parts += [line.encode(), text[row].data]
            out.write(b"".join(parts))
            written += len(keep)
        records.clear()

    with BgzfWriter(path) as out:
        out.write(_header(contig, int(ts.sequence_length), sample_ids))
        for site, variant in enumerate(ts.variants(copy=False), start=1):
            alleles = variant.alleles
            if len(alleles) == 2 and all(a in _ACGT for a in alleles):
                genotypes[len(records)] = variant.genotypes
                records.append((int(variant.site.position) + 1, alleles[0], alleles[1]))
                if len(records) == chunk:
                    flush(out)
            if on_sites is not None and site % 1000 == 0:
                on_sites(1000)
        flush(out)
    if on_sites is not None:
        on_sites(ts.num_sites % 1000)
    if index:
        pysam.tabix_index(str(path), preset="vcf", force=True)
    return written

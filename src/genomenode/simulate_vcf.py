"""Genotype side of :mod:`genomenode.simulate`: msprime simulation and fast VCF.

The coalescent simulation uses a European-like demography so that allele
frequencies, linkage disequilibrium and population structure look like real
data.  A 20,000-sample cohort over 5 Mb has ~55,000 sites and ~11 GB of
uncompressed VCF text, so per-genotype Python string formatting is far too
slow: whole chunks of variants are formatted with numpy (a lookup table of
precomputed ``GT:DP:GQ`` byte strings, gathered and compacted with a boolean
mask) and BGZF blocks are compressed on a small thread pool, because zlib
releases the GIL and compression dominates the run time.  Memory is bounded by
one chunk of variants, never by the whole genotype matrix.
"""

from __future__ import annotations

import collections
import struct
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import msprime
import numpy as np
import pysam
import tskit

__all__ = [
    "BgzfWriter",
    "GenotypeFieldTable",
    "choose_causal",
    "sample_columns",
    "simulate_tree_sequence",
    "write_vcf",
]

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
            name=name, description=description, initial_size=size,
            growth_rate=growth, initially_active=True,
        )  # fmt: skip
    dem.add_population(name="ANC", description="Ancestral", initial_size=7_300)
    dem.set_symmetric_migration_rate(["NWE", "SEU"], 1e-4)
    dem.set_symmetric_migration_rate(["FIN", "NWE"], 5e-5)
    dem.add_population_split(time=150, derived=["FIN"], ancestral="NWE")
    dem.add_population_split(time=1_000, derived=["NWE", "SEU"], ancestral="ANC")
    return dem


def _home_population(country: str) -> str:
    if country == "FI":
        return "FIN"
    return "SEU" if country in _SOUTHERN else "NWE"


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
    home = _home_population(country.upper())
    others = [p for p in ("FIN", "NWE", "SEU") if p != home]
    main = samples - 2 * ((samples // 10) if samples >= 10 else 0)
    rest = samples - main
    counts = {home: main, others[0]: (rest + 1) // 2, others[1]: rest // 2}
    anc_seed, mut_seed = _msprime_seeds(seed)
    ts = msprime.sim_ancestry(
        samples=[msprime.SampleSet(n, population=p) for p, n in counts.items() if n],
        demography=_demography(),
        sequence_length=length,
        recombination_rate=RECOMBINATION_RATE,
        random_seed=anc_seed,
    )
    return msprime.sim_mutations(ts, rate=MUTATION_RATE, random_seed=mut_seed)


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
    """Pick 1-2 single-mutation sites with 10-40% allele frequency, far apart."""
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


def _compress_blocks(data: bytes, level: int) -> bytes:
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

    Equivalent to ``pysam.BGZFile(path, "wb")`` for writing, but compresses on
    ``threads`` worker threads and at a configurable zlib ``level`` (pysam's
    writer is single-threaded and holds the GIL).  Blocks are written in order,
    so the output is deterministic.

    Parameters
    ----------
    path : path-like
        Output file, overwritten.
    level : int, optional
        zlib compression level (1 is ~5x faster than 6 for ~30% larger files).
    threads : int, optional
        Number of compression threads.
    """

    _BATCH = _BLOCK_PAYLOAD * 64  # ~4 MiB handed to a worker at a time

    def __init__(self, path: str | Path, *, level: int = 1, threads: int = 2) -> None:
        self._fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._level = level
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads))
        self._pending: collections.deque[Future[bytes]] = collections.deque()
        self._max_pending = 2 * max(1, threads)
        self._buffer = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``; full batches are compressed in the background."""
        self._buffer += data
        if len(self._buffer) >= self._BATCH:
            cut = len(self._buffer) - len(self._buffer) % _BLOCK_PAYLOAD
            self._submit(bytes(self._buffer[:cut]))
            del self._buffer[:cut]

    def _submit(self, data: bytes) -> None:
        self._pending.append(self._pool.submit(_compress_blocks, data, self._level))
        # Bound memory: wait for the oldest batch once enough are in flight.
        while len(self._pending) > self._max_pending:
            self._fh.write(self._pending.popleft().result())

    def close(self) -> None:
        """Flush remaining data, write the BGZF EOF marker and close the file."""
        if self._fh.closed:
            return
        if self._buffer:
            self._submit(bytes(self._buffer))
            self._buffer.clear()
        while self._pending:
            self._fh.write(self._pending.popleft().result())
        self._pool.shutdown()
        self._fh.write(_EOF)
        self._fh.close()

    def __enter__(self) -> BgzfWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GenotypeFieldTable:
    """Precomputed ``GT:DP:GQ`` sample fields for vectorised VCF formatting.

    Depths follow a negative binomial around 30x; genotype qualities grow with
    depth (homozygous calls faster than heterozygous ones) plus noise and are
    capped at 99, like a joint-called short-read cohort.  ``quantiles`` random
    (DP, GQ-noise) draws are tabulated per phased genotype, and each genotype
    of the output picks one uniformly at random, which is equivalent to drawing
    DP and GQ per genotype but costs one small integer draw.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (determinism comes from its seed).
    quantiles : int, optional
        Number of tabulated (DP, GQ) draws per genotype.
    """

    _WIDTH = 16  # bytes per table row: max 11 used, 16 makes the gather fast
    _GT = (b"0|0", b"0|1", b"1|0", b"1|1")

    def __init__(self, rng: np.random.Generator, quantiles: int = 1024) -> None:
        self.quantiles = quantiles
        mean, dispersion = 30.0, 8.0
        depth = rng.negative_binomial(
            dispersion, dispersion / (dispersion + mean), quantiles
        )
        depth = np.clip(depth, 2, 250)
        noise = rng.normal(0.0, 6.0, quantiles)
        table = np.zeros((len(self._GT) * quantiles, self._WIDTH), dtype=np.uint8)
        lengths = np.zeros(len(table), dtype=np.uint8)
        for code, gt in enumerate(self._GT):
            slope = 2.0 if gt in (b"0|1", b"1|0") else 3.0
            quality = np.clip(np.rint(slope * depth - 6.0 + noise), 0, 99).astype(int)
            for q in range(quantiles):
                field = b"%s:%d:%d\t" % (gt, depth[q], quality[q])
                row = code * quantiles + q
                table[row, : len(field)] = np.frombuffer(field, dtype=np.uint8)
                lengths[row] = len(field)
        self._rows = table.view(f"V{self._WIDTH}").ravel()
        self._lengths = lengths
        self._columns = np.arange(self._WIDTH, dtype=np.uint8)

    def format(
        self, hap0: np.ndarray, hap1: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Format a chunk of variants.

        Parameters
        ----------
        hap0, hap1 : numpy.ndarray
            ``(variants, samples)`` arrays of 0/1 alleles of each sample's first
            and second haplotype.
        rng : numpy.random.Generator
            Draws the per-genotype DP/GQ.

        Returns
        -------
        body : numpy.ndarray
            uint8 text of all sample columns, rows ending in ``\\n``.
        ends : numpy.ndarray
            Offset one past the end of each row in ``body``.
        """
        shape = hap0.shape
        # C-ordered codes (fancy-indexed inputs may not be), as the view needs.
        codes = rng.integers(0, self.quantiles, size=shape, dtype=np.uint16)
        codes += (hap0 * 2 + hap1).astype(np.uint16) * np.uint16(self.quantiles)
        gathered = self._rows[codes].view(np.uint8).reshape(*shape, self._WIDTH)
        lengths = self._lengths[codes]
        body = gathered[self._columns < lengths[..., None]]
        ends = np.cumsum(lengths.sum(axis=1, dtype=np.int64))
        body[ends - 1] = ord("\n")  # last sample of a row: newline, not tab
        return body, ends


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


def write_vcf(
    ts: tskit.TreeSequence,
    path: str | Path,
    *,
    contig: str,
    sample_ids: Sequence[str],
    node_columns: np.ndarray,
    rng: np.random.Generator,
    on_sites: Callable[[int], None] | None = None,
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
        Output ``.vcf.gz``; the ``.tbi`` is written next to it.
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

    Returns
    -------
    int
        Number of variant records written.
    """
    num_haps = ts.num_samples
    table = GenotypeFieldTable(rng)
    chunk = max(1, _CHUNK_BYTES // (len(sample_ids) * GenotypeFieldTable._WIDTH))
    genotypes = np.empty((chunk, num_haps), dtype=np.int8)
    written = 0

    with BgzfWriter(path) as out:
        out.write(_header(contig, int(ts.sequence_length), sample_ids))
        records: list[tuple[int, str, str]] = []

        def flush() -> None:
            nonlocal written
            rows = genotypes[: len(records)]
            counts = rows.sum(axis=1, dtype=np.int64)
            keep = np.flatnonzero((counts > 0) & (counts < num_haps))
            if len(keep):
                rows = rows[keep]
                hap0 = rows[:, node_columns[:, 0]]
                hap1 = rows[:, node_columns[:, 1]]
                body, ends = table.format(hap0, hap1, rng)
                view = memoryview(body)
                parts: list[bytes | memoryview] = []
                start = 0
                for i, end in zip(keep.tolist(), ends.tolist(), strict=True):
                    pos, ref, alt = records[i]
                    ac = int(counts[i])
                    parts.append(
                        f"{contig}\t{pos}\t.\t{ref}\t{alt}\t.\tPASS\tAC={ac};"
                        f"AN={num_haps};AF={ac / num_haps:.6g}\tGT:DP:GQ\t".encode()
                    )
                    parts.append(view[start:end])
                    start = end
                out.write(b"".join(parts))
                written += len(keep)
            records.clear()

        for index, variant in enumerate(ts.variants()):
            alleles = variant.alleles
            if len(alleles) == 2 and all(a in _ACGT for a in alleles):
                genotypes[len(records)] = variant.genotypes
                records.append((int(variant.site.position) + 1, alleles[0], alleles[1]))
                if len(records) == chunk:
                    flush()
            if on_sites is not None and index % 1000 == 999:
                on_sites(1000)
        flush()
        if on_sites is not None:
            on_sites(ts.num_sites % 1000)

    pysam.tabix_index(str(path), preset="vcf", force=True)
    return written

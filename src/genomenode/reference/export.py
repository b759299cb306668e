"""Exports of a node's reference: a sites-only VCF and GDI mini-node Parquet.

Both are the published numbers (:mod:`.release`) of every QC-passing variant
allele of the node's releasable datasets, summed by population where several
datasets have the variant, one ALT allele per record (multi-allelic sites split,
as gnomAD's sites VCFs are). Datasets are read one chunk of rows at a time and
merged by position, so memory is bounded by a chunk per dataset.

**VCF** (bgzipped, tabix-indexed), INFO named as gnomAD names them: ``AC``,
``AN``, ``AF``, ``nhomalt``, ``faf95`` for everyone (the ``total`` population, or
the only country), and per group suffixed ``_<country>`` (lower case, ``fi``),
``_<country>_XY`` / ``_<country>_XX`` (declared male / female), ``_XY`` / ``_XX``
(across countries); ``faf95_<country>``; ``grpmax``, ``AC_grpmax``,
``AN_grpmax``, ``AF_grpmax``, ``nhomalt_grpmax``, ``fafmax_faf95_max``,
``fafmax_faf95_max_gen_anc``. gnomAD has no heterozygous or hemizygous counts:
they are ``AC_het`` and ``AC_hemi`` (bcftools +fill-tags' ``AC_Het``/``AC_Hemi``
in gnomAD's case), with the same suffixes. ``counts_adjusted`` flags a record
where the small-count rule raised a count to the floor.

**Parquet**: the GDI mini-node columns and types, one row per variant allele ×
population: ``POS`` int32, ``REF``, ``ALT``, ``VT`` (SNP, MNP or INDEL),
``POPULATION``, ``AF`` double, ``AC``, ``AC_HET``, ``AC_HOM`` (copies in
homozygous calls), ``AC_HEMI``, ``AN`` int32. GDI keeps one file per chromosome
and no CHROM column: a reference on one contig is written to ``out``; on several,
to ``<stem>.chr<contig>.parquet`` beside it. The contig is in the file's
metadata (``genomenode:contig``).
"""

from __future__ import annotations

import dataclasses
import heapq
import pathlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pysam

from ..disclosure.control import DisclosureControl
from ..errors import InputError
from ..store.node import Node
from ..store.private import private_files
from ..store.published import PublishedDataset, PublishedDatasets
from .populations import TOTAL
from .release import (
    PopulationFrequency,
    grpmax,
    release_allowed,
    released_arrays,
)
from .service import reference_store, sum_frequencies
from .store import ReferenceStore

__all__ = [
    "FORMATS",
    "PARQUET_COLUMNS",
    "ExportResult",
    "SiteRecord",
    "export_reference",
    "info_fields",
    "info_suffix",
    "site_records",
]

FORMATS = ("vcf", "parquet")
PARQUET_COLUMNS = (
    "POS",
    "REF",
    "ALT",
    "VT",
    "POPULATION",
    "AF",
    "AC",
    "AC_HET",
    "AC_HOM",
    "AC_HEMI",
    "AN",
)


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    paths: list[pathlib.Path]
    num_records: int
    datasets: list[str]
    withheld: dict[str, str]


@dataclasses.dataclass(frozen=True)
class SiteRecord:
    """One variant allele of the reference with its populations' numbers."""

    contig: str
    position: int
    reference: str
    alternate: str
    frequencies: list[PopulationFrequency]


def info_suffix(population: str) -> str:
    """The gnomAD-style INFO suffix of a population ("" for everyone)."""
    if population == TOTAL:
        return ""
    sex = {"M": "XY", "F": "XX"}
    if population in sex:
        return f"_{sex[population]}"
    country, _, letter = population.partition("_")
    return f"_{country.lower()}" + (f"_{sex[letter]}" if letter else "")


def _dataset_records(
    handle: PublishedDataset,
    store: ReferenceStore,
    contig: str,
    control: DisclosureControl,
) -> Iterator[tuple[int, str, str, list[PopulationFrequency]]]:
    """The released records of one contig of one dataset, in position order."""
    first, last = handle.store.contigs[contig]
    step = max(1, int(store.root["allele_count"].chunks[0]))
    for start in range(first, last, step):
        stop = min(start + step, last)
        block = store.block(start, stop)
        alleles = handle.store.alleles(start, stop)
        positions = handle.store.positions(start, stop)
        values, published, adjusted = released_arrays(
            {
                "allele_count": block["allele_count"],
                "allele_count_hom": block["allele_count_hom"],
                "allele_count_het": block["allele_count_het"],
                "allele_count_hemi": block["allele_count_hemi"],
                "allele_number": block["allele_number"][:, None, :],
            },
            store.populations,
            store.population_samples,
            store.cell_samples,
            control,
        )
        names = [
            name
            for name, keep in zip(store.populations, published, strict=True)
            if keep
        ]
        columns = np.flatnonzero(published)
        for offset in range(stop - start):
            if not block["variant_pass"][offset]:
                continue
            reference = str(alleles[offset][0])
            for index, alternate in enumerate(alleles[offset][1:]):
                alternate = str(alternate)
                if not alternate or alternate in ("*", "<*>", "<NON_REF>"):
                    continue
                if int(block["allele_count"][offset, index].max(initial=0)) == 0:
                    continue  # not seen among the QC-passing samples
                rows = [
                    PopulationFrequency(
                        population=name,
                        allele_count=int(values["allele_count"][offset, index, column]),
                        allele_number=int(
                            values["allele_number"][offset, index, column]
                        ),
                        allele_count_hom=int(
                            values["allele_count_hom"][offset, index, column]
                        ),
                        allele_count_het=int(
                            values["allele_count_het"][offset, index, column]
                        ),
                        allele_count_hemi=int(
                            values["allele_count_hemi"][offset, index, column]
                        ),
                        adjusted=bool(adjusted[offset, index, column]),
                    )
                    for name, column in zip(names, columns, strict=True)
                ]
                yield int(positions[offset]), reference, alternate, rows


def _releasable(
    node: Node, published: PublishedDatasets
) -> tuple[list[tuple[PublishedDataset, ReferenceStore]], dict[str, str]]:
    release_controlled = bool(node.config.values.get("reference_release_controlled"))
    chosen = []
    withheld: dict[str, str] = {}
    for handle in published.datasets():
        if handle.site_counts is not None:
            continue
        allowed, why = release_allowed(
            handle.facts.security_level,
            [term["id"] for term in handle.data_use],
            release_controlled,
        )
        if not allowed:
            withheld[handle.id] = why
            continue
        store = reference_store(handle)
        if store is None:
            withheld[handle.id] = "no reference built: run `genomenode reference build`"
            continue
        chosen.append((handle, store))
    return chosen, withheld


def _contig_key(name: str) -> tuple[int, str]:
    """Chromosomes in their usual order (1..22, X, Y, M), others after, by name."""
    bare = name.removeprefix("chr")
    if bare.isdigit():
        return int(bare), ""
    others = {"X": 23, "Y": 24, "M": 25, "MT": 25}
    return others.get(bare, 100), bare


def site_records(
    sources: Sequence[tuple[PublishedDataset, ReferenceStore]],
    control: DisclosureControl,
) -> Iterator[SiteRecord]:
    """Every released record of ``sources``, merged by contig and position; a
    variant in several datasets has its populations summed."""
    contigs = sorted(
        {name for handle, _ in sources for name in handle.store.contigs},
        key=_contig_key,
    )
    for contig in contigs:
        streams = [
            _dataset_records(handle, store, contig, control)
            for handle, store in sources
            if contig in handle.store.contigs
        ]
        merged = heapq.merge(*streams, key=lambda item: (item[0], item[1], item[2]))
        current: tuple[int, str, str] | None = None
        parts: list[list[PopulationFrequency]] = []
        for position, reference, alternate, rows in merged:
            key = (position, reference, alternate)
            if key != current and current is not None:
                yield SiteRecord(contig, *current, sum_frequencies(parts))
                parts = []
            current = key
            parts.append(rows)
        if current is not None:
            yield SiteRecord(contig, *current, sum_frequencies(parts))


def _everyone(frequencies: list[PopulationFrequency]) -> PopulationFrequency | None:
    by_name = {item.population: item for item in frequencies}
    if TOTAL in by_name:
        return by_name[TOTAL]
    countries = [item for item in frequencies if len(item.population) == 2]
    return countries[0] if len(countries) == 1 else None


def info_fields(record: SiteRecord) -> dict[str, Any]:
    """The INFO of one record, by tag (gnomAD names; see the module docstring)."""
    info: dict[str, Any] = {}
    everyone = _everyone(record.frequencies)
    groups: list[tuple[str, PopulationFrequency]] = []
    if everyone is not None:
        groups.append(("", everyone))
    groups += [
        (info_suffix(item.population), item)
        for item in record.frequencies
        if item.population != TOTAL
    ]
    for suffix, item in groups:
        info[f"AC{suffix}"] = item.allele_count
        info[f"AN{suffix}"] = item.allele_number
        info[f"AF{suffix}"] = item.allele_frequency
        info[f"nhomalt{suffix}"] = item.nhomalt
        info[f"AC_het{suffix}"] = item.allele_count_het
        info[f"AC_hemi{suffix}"] = item.allele_count_hemi
        if suffix == "" or len(item.population) == 2:
            info[f"faf95{suffix}"] = item.faf95
    best = grpmax(record.frequencies)
    if best is not None:
        countries = [item for item in record.frequencies if len(item.population) == 2]
        fafmax = max(countries, key=lambda item: item.faf95)
        info["grpmax"] = best.population.lower()
        info["AC_grpmax"] = best.allele_count
        info["AN_grpmax"] = best.allele_number
        info["AF_grpmax"] = best.allele_frequency
        info["nhomalt_grpmax"] = best.nhomalt
        info["fafmax_faf95_max"] = fafmax.faf95
        info["fafmax_faf95_max_gen_anc"] = fafmax.population.lower()
    if any(item.adjusted for item in record.frequencies):
        info["counts_adjusted"] = True
    return info


_DESCRIPTIONS = {
    "AC": ("A", "Integer", "Alternate allele count"),
    "AN": ("1", "Integer", "Total number of alleles"),
    "AF": ("A", "Float", "Alternate allele frequency"),
    "nhomalt": ("A", "Integer", "Count of homozygous individuals"),
    "AC_het": ("A", "Integer", "Count of heterozygous individuals"),
    "AC_hemi": ("A", "Integer", "Count of hemizygous individuals"),
    "faf95": ("A", "Float", "Filtering allele frequency (95% CI, Poisson)"),
}


def _label(population: str) -> str:
    if population == TOTAL:
        return "in all samples"
    sex = {"M": "declared male", "F": "declared female"}
    if population in sex:
        return f"in {sex[population]} samples"
    country, _, letter = population.partition("_")
    return f"in {country} samples" + (f", {sex[letter]}" if letter else "")


def _vcf_header(populations: list[str], contigs: list[str]) -> str:
    lines = [
        "##fileformat=VCFv4.2",
        "##source=genomenode reference export (docs/reference.md)",
    ]
    lines += [f"##contig=<ID={contig}>" for contig in contigs]
    groups = [("", "everyone")] + [
        (info_suffix(name), _label(name)) for name in populations if name != TOTAL
    ]
    for suffix, label in groups:
        for tag, (number, kind, text) in _DESCRIPTIONS.items():
            if tag == "faf95" and suffix and suffix.count("_") > 1:
                continue
            if tag == "faf95" and suffix in ("_XX", "_XY"):
                continue
            lines.append(
                f"##INFO=<ID={tag}{suffix},Number={number},Type={kind},"
                f'Description="{text} {label}">'
            )
    lines += [
        '##INFO=<ID=grpmax,Number=A,Type=String,Description="Country population '
        'with the maximum allele frequency">',
        '##INFO=<ID=AC_grpmax,Number=A,Type=Integer,Description="AC in grpmax">',
        '##INFO=<ID=AN_grpmax,Number=A,Type=Integer,Description="AN in grpmax">',
        '##INFO=<ID=AF_grpmax,Number=A,Type=Float,Description="AF in grpmax">',
        '##INFO=<ID=nhomalt_grpmax,Number=A,Type=Integer,Description="nhomalt in '
        'grpmax">',
        '##INFO=<ID=fafmax_faf95_max,Number=A,Type=Float,Description="Maximum '
        'faf95 over the country populations">',
        "##INFO=<ID=fafmax_faf95_max_gen_anc,Number=A,Type=String,Description="
        '"Country population with the maximum faf95">',
        '##INFO=<ID=counts_adjusted,Number=0,Type=Flag,Description="A count below '
        'the node small-count floor is published as the floor">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    return "\n".join(lines) + "\n"


def _format_info(info: dict[str, Any]) -> str:
    parts = []
    for tag, value in info.items():
        if value is True:
            parts.append(tag)
        elif isinstance(value, float):
            parts.append(f"{tag}={value:.6g}")
        else:
            parts.append(f"{tag}={value}")
    return ";".join(parts)


def _variant_type(reference: str, alternate: str) -> str:
    if len(reference) == len(alternate):
        return "SNP" if len(reference) == 1 else "MNP"
    return "INDEL"


def _write_vcf(
    out: pathlib.Path,
    records: Iterator[SiteRecord],
    populations: list[str],
    contigs: list[str],
) -> tuple[list[pathlib.Path], int]:
    if not out.name.endswith(".vcf.gz"):
        raise InputError("a VCF export is written as .vcf.gz", field="--out")
    text = out.with_name(out.name.removesuffix(".gz"))
    count = 0
    with open(text, "w", encoding="ascii") as handle:
        handle.write(_vcf_header(populations, contigs))
        for record in records:
            handle.write(
                f"{record.contig}\t{record.position}\t.\t{record.reference}\t"
                f"{record.alternate}\t.\tPASS\t{_format_info(info_fields(record))}\n"
            )
            count += 1
    pysam.tabix_compress(str(text), str(out), force=True)
    text.unlink()
    pysam.tabix_index(str(out), preset="vcf", force=True)
    return [out, out.with_name(out.name + ".tbi")], count


def _write_parquet(
    out: pathlib.Path, records: Iterator[SiteRecord], contigs: list[str]
) -> tuple[list[pathlib.Path], int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("POS", pa.int32()),
            ("REF", pa.string()),
            ("ALT", pa.string()),
            ("VT", pa.string()),
            ("POPULATION", pa.string()),
            ("AF", pa.float64()),
            ("AC", pa.int32()),
            ("AC_HET", pa.int32()),
            ("AC_HOM", pa.int32()),
            ("AC_HEMI", pa.int32()),
            ("AN", pa.int32()),
        ]
    )

    def path_of(contig: str) -> pathlib.Path:
        if len(contigs) == 1:
            return out
        return out.with_name(f"{out.stem}.chr{contig.removeprefix('chr')}{out.suffix}")

    paths: list[pathlib.Path] = []
    writer: Any = None
    contig_now: str | None = None
    rows: dict[str, list[Any]] = {name: [] for name in PARQUET_COLUMNS}
    count = 0

    def flush() -> None:
        if rows["POS"]:
            writer.write_table(pa.table(rows, schema=schema))
            for values in rows.values():
                values.clear()

    try:
        for record in records:
            if record.contig != contig_now:
                if writer is not None:
                    flush()
                    writer.close()
                contig_now = record.contig
                path = path_of(record.contig)
                writer = pq.ParquetWriter(
                    path,
                    schema.with_metadata({"genomenode:contig": record.contig}),
                )
                paths.append(path)
            kind = _variant_type(record.reference, record.alternate)
            for item in record.frequencies:
                rows["POS"].append(record.position)
                rows["REF"].append(record.reference)
                rows["ALT"].append(record.alternate)
                rows["VT"].append(kind)
                rows["POPULATION"].append(item.population)
                rows["AF"].append(item.allele_frequency)
                rows["AC"].append(item.allele_count)
                rows["AC_HET"].append(item.allele_count_het)
                rows["AC_HOM"].append(item.allele_count_hom)
                rows["AC_HEMI"].append(item.allele_count_hemi)
                rows["AN"].append(item.allele_number)
            count += 1
            if len(rows["POS"]) >= 100_000:
                flush()
        if writer is not None:
            flush()
    finally:
        if writer is not None:
            writer.close()
    return paths, count


# The export is published data, but written where the operator says: no
# looser than the node's other files until it is handed out.
@private_files()
def export_reference(
    node: Node,
    *,
    fmt: str,
    out: str | pathlib.Path,
    control: DisclosureControl,
) -> ExportResult:
    """Write the node's releasable reference as ``fmt`` (``vcf`` or ``parquet``).

    ``control`` is the node's disclosure layer
    (:func:`genomenode.app.disclosure_of` or ``DisclosureControl.for_node``).
    """
    if fmt not in FORMATS:
        raise InputError(
            f"format {fmt!r}: want one of {', '.join(FORMATS)}", field="--format"
        )
    path = pathlib.Path(out)
    published = PublishedDatasets(node)
    sources, withheld = _releasable(node, published)
    populations: list[str] = []
    for _, store in sources:
        for name in store.populations:
            if name not in populations:
                populations.append(name)
    contigs = sorted(
        {name for handle, _ in sources for name in handle.store.contigs},
        key=_contig_key,
    )
    records = site_records(sources, control)
    if fmt == "vcf":
        paths, count = _write_vcf(path, records, populations, contigs)
    else:
        paths, count = _write_parquet(path, records, contigs)
    return ExportResult(
        paths=paths,
        num_records=count,
        datasets=[handle.id for handle, _ in sources],
        withheld=withheld,
    )

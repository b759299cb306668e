"""Checks of the genotype file: BGZF container, header, index and records.

The file is a bgzipped VCF or a BCF (told by its first decompressed bytes). The header
is read with our own parser because htslib forgives malformed lines that other tools
then trip over; a BCF's header is the same text, stored after its magic bytes.
Records are checked after conversion, on the VCF Zarr arrays (positions,
contigs, alleles), which costs a fraction of a second even for a large cohort; the
reported line is the record's line in the VCF.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import os
import pathlib
import re
import shutil
import struct
import zlib
from collections.abc import Generator

import numpy as np
import pysam

from ..errors import VcfError

__all__ = [
    "VcfHeader",
    "check_bgzf",
    "check_index_contigs",
    "check_records",
    "ensure_index",
    "find_record_error",
    "is_bcf",
    "read_header",
]

_BGZF_MAGIC = b"\x1f\x8b\x08\x04"
_BCF_MAGIC = b"BCF\x02"
_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_STRUCTURED = re.compile(r"^##([A-Za-z0-9_.-]+)=<(.*)>$")
_UNSTRUCTURED = re.compile(r"^##([A-Za-z0-9_.-]+)=(.*)$")
_KEY_VALUE = re.compile(r'\s*([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|[^,"]*)\s*(,|$)')
_REQUIRED_KEYS = {
    "INFO": ("ID", "Number", "Type", "Description"),
    "FORMAT": ("ID", "Number", "Type", "Description"),
    "FILTER": ("ID", "Description"),
    "contig": ("ID",),
    "ALT": ("ID", "Description"),
}
_NUMBERS = re.compile(r"^(\d+|A|R|G|\.)$")
_TYPES = {
    "INFO": {"Integer", "Float", "Flag", "Character", "String"},
    "FORMAT": {"Integer", "Float", "Character", "String"},
}
_FIXED_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
_REF = re.compile(r"^[ACGTNacgtn]+$")
_ALT = re.compile(
    r"^([ACGTNacgtn]+|\*|<[^<>]+>|[ACGTNacgtn]*[\[\]].*|\.[ACGTNacgtn]+|[ACGTNacgtn]+\.)$"
)


@dataclasses.dataclass(frozen=True)
class VcfHeader:
    """What the ingest needs from a VCF header.

    ``contigs`` are the ``##contig`` lines' ids, in order; empty when the header has
    none (optional before VCF 4.3): the records' contigs are then taken as they come.
    ``samples`` is empty for a sites-only file; ``info_fields`` are the INFO ids.
    ``file_format`` is ``"VCF"`` or ``"BCF"``; the line of a BCF record is its line in
    the text ``bcftools view`` prints.
    """

    path: pathlib.Path
    num_header_lines: int
    contigs: tuple[str, ...]
    samples: tuple[str, ...]
    info_number_g: tuple[str, ...]
    file_format: str = "VCF"
    info_fields: tuple[str, ...] = ()

    @property
    def sites_only(self) -> bool:
        """No sample columns: an aggregate-only file (counts in INFO)."""
        return not self.samples


def check_bgzf(path: pathlib.Path) -> None:
    """Fail unless ``path`` is a complete BGZF file (not plain gzip, not truncated)."""
    with open(path, "rb") as handle:
        head = handle.read(18)
        if not head.startswith(b"\x1f\x8b"):
            raise VcfError(
                "not compressed: compress it with `bgzip` (and index with `tabix`)",
                path=path,
            )
        if not head.startswith(_BGZF_MAGIC) or head[12:14] != b"BC":
            raise VcfError(
                "gzip but not BGZF: recompress with `bgzip` so it can be indexed",
                path=path,
            )
        size = os.fstat(handle.fileno()).st_size
        if size < len(_BGZF_EOF):
            raise VcfError("truncated BGZF file (too short)", path=path)
        handle.seek(size - len(_BGZF_EOF))
        if handle.read() != _BGZF_EOF:
            raise VcfError(
                "truncated BGZF file: the end-of-file block is missing "
                "(an interrupted copy or download?)",
                path=path,
            )


def read_header(path: pathlib.Path) -> VcfHeader:
    """Parse and check the VCF header (meta lines and the #CHROM line)."""
    contigs: list[str] = []
    info_number_g: list[str] = []
    info_fields: list[str] = []
    file_format = "BCF" if is_bcf(path) else "VCF"
    try:
        with contextlib.closing(_header_lines(path, file_format)) as lines:
            for number, line in enumerate(lines, 1):
                line = line.rstrip("\n").rstrip("\r")
                if number == 1 and not line.startswith("##fileformat=VCFv4"):
                    raise VcfError(
                        "the first line must be ##fileformat=VCFv4.x",
                        path=path,
                        line=1,
                    )
                if line.startswith("##"):
                    kind, fields = _meta_line(line, path, number)
                    if kind == "contig":
                        if fields["ID"] in contigs:
                            raise VcfError(
                                f"contig {fields['ID']!r} declared twice",
                                path=path,
                                line=number,
                            )
                        contigs.append(fields["ID"])
                    elif kind == "INFO":
                        info_fields.append(fields["ID"])
                        if fields["Number"] == "G":
                            info_number_g.append(fields["ID"])
                    continue
                if line.startswith("#CHROM"):
                    samples = _samples(line, path, number)
                    return VcfHeader(
                        path=path,
                        num_header_lines=number,
                        contigs=tuple(contigs),
                        samples=samples,
                        info_number_g=tuple(info_number_g),
                        file_format=file_format,
                        info_fields=tuple(info_fields),
                    )
                raise VcfError(
                    "expected a ## meta line or the #CHROM header line",
                    path=path,
                    line=number,
                )
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as error:
        raise VcfError(f"cannot read the header: {error}", path=path) from None
    raise VcfError("no #CHROM header line", path=path)


def is_bcf(path: pathlib.Path) -> bool:
    """Whether the (BGZF) file is a BCF: its decompressed bytes start ``BCF\\2``."""
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(len(_BCF_MAGIC)) == _BCF_MAGIC
    except (OSError, EOFError, zlib.error):
        return False


def _header_lines(path: pathlib.Path, file_format: str) -> Generator[str, None, None]:
    """The header's text lines: a VCF's first lines, or a BCF's stored header text."""
    if file_format == "VCF":
        with gzip.open(path, "rt", encoding="utf-8", newline="\n") as lines:
            yield from lines
        return
    with gzip.open(path, "rb") as handle:
        # magic "BCF" 2 2, then l_text (uint32, little-endian), then the text.
        head = handle.read(len(_BCF_MAGIC) + 5)
        length = struct.unpack("<I", head[5:9])[0] if len(head) == 9 else -1
        text = handle.read(length) if length >= 0 else b""
    if length < 0 or len(text) < length:
        raise VcfError("truncated BCF header", path=path)
    yield from text.rstrip(b"\0").decode("utf-8").splitlines(keepends=True)


def _meta_line(
    line: str, path: pathlib.Path, number: int
) -> tuple[str, dict[str, str]]:
    structured = _STRUCTURED.match(line)
    if structured is None:
        if line.startswith(tuple(f"##{kind}=" for kind in _REQUIRED_KEYS)):
            raise VcfError(
                "malformed header line: expected ##KEY=<ID=...,...>",
                path=path,
                line=number,
            )
        if _UNSTRUCTURED.match(line) is None:
            raise VcfError(
                "malformed header line: expected ##key=value", path=path, line=number
            )
        return "", {}
    kind, body = structured.groups()
    fields: dict[str, str] = {}
    position = 0
    while position < len(body):
        pair = _KEY_VALUE.match(body, position)
        if pair is None or pair.end() == position:
            raise VcfError(
                f"malformed header line: cannot read key=value at {body[position:]!r}",
                path=path,
                line=number,
            )
        key, value = pair.group(1), pair.group(2)
        fields[key] = value[1:-1] if value.startswith('"') else value
        position = pair.end()
    for key in _REQUIRED_KEYS.get(kind, ()):
        if key not in fields:
            raise VcfError(
                f"malformed ##{kind} header line: {key}= is missing",
                path=path,
                line=number,
                field=kind,
            )
    if kind in _TYPES:
        if not _NUMBERS.match(fields["Number"]):
            raise VcfError(
                f"##{kind} {fields['ID']}: invalid Number={fields['Number']}",
                path=path,
                line=number,
            )
        if fields["Type"] not in _TYPES[kind]:
            raise VcfError(
                f"##{kind} {fields['ID']}: invalid Type={fields['Type']}",
                path=path,
                line=number,
            )
    return kind, fields


def _samples(line: str, path: pathlib.Path, number: int) -> tuple[str, ...]:
    columns = line.split("\t")
    if tuple(columns[:8]) != _FIXED_COLUMNS:
        raise VcfError(
            "the #CHROM line must start with the 8 tab-separated fixed columns "
            + "\\t".join(_FIXED_COLUMNS),
            path=path,
            line=number,
        )
    if len(columns) > 8 and columns[8] != "FORMAT":
        raise VcfError(
            "column 9 of the #CHROM line must be FORMAT", path=path, line=number
        )
    # No sample columns: a sites-only file, whose counts are in INFO.
    samples = columns[9:]
    seen: set[str] = set()
    for sample in samples:
        if sample in seen:
            raise VcfError(
                f"duplicate sample id {sample!r}",
                path=path,
                line=number,
                field="#CHROM",
            )
        seen.add(sample)
    return tuple(samples)


def ensure_index(
    vcf: pathlib.Path, work_dir: pathlib.Path, num_samples: int
) -> pathlib.Path:
    """A path to the VCF beside which a current .tbi or .csi index exists.

    An index the operator supplied is used as it is; otherwise the VCF is linked
    into ``work_dir`` and indexed there (the operator's directory is not written to).
    Indexing fails on unsorted records; the error then names the first such line.
    """
    for suffix in (".tbi", ".csi"):
        index = vcf.with_name(vcf.name + suffix)
        if index.exists() and index.stat().st_mtime >= vcf.stat().st_mtime:
            return vcf
    indexed = work_dir / "input"
    if indexed.exists():
        return indexed / vcf.name
    partial = work_dir / "input.part"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    os.symlink(vcf, partial / vcf.name)
    try:
        pysam.tabix_index(
            os.fspath(partial / vcf.name), preset="vcf", keep_original=True, csi=True
        )
    except (OSError, ValueError) as error:
        find_record_error(vcf, num_samples)
        raise VcfError(f"cannot index the VCF: {error}", path=vcf) from None
    os.replace(partial, indexed)
    return indexed / vcf.name


_GENOTYPE = re.compile(r"^(\.|\d+)([/|](\.|\d+))*$")


def find_record_error(vcf: pathlib.Path, num_samples: int) -> None:
    """Raise a VcfError naming the first bad record line; return if none is found.

    Runs only after a conversion or indexing failed (it reads the whole text), to
    turn a library's terse complaint into the line and field an operator can fix.
    """
    seen: set[str] = set()
    previous_contig, previous_position = None, 0
    num_columns = 9 + num_samples if num_samples else 8
    with contextlib.closing(_text_lines(vcf)) as lines:
        for number, line in enumerate(lines, 1):
            if line.startswith("#"):
                continue
            columns = line.rstrip("\n").split("\t")

            def fail(message: str, field: str, number: int = number) -> VcfError:
                return VcfError(message, path=vcf, line=number, field=field)

            if len(columns) != num_columns and (num_samples or len(columns) != 9):
                raise fail(
                    f"{len(columns)} columns where the header has {num_columns}",
                    "#CHROM",
                )
            contig, position_text, reference = columns[0], columns[1], columns[3]
            if not position_text.isdigit():
                raise fail(f"POS {position_text!r} is not a positive number", "POS")
            position = int(position_text)
            if contig != previous_contig:
                if contig in seen:
                    raise fail(
                        f"records are not sorted: contig {contig!r} appears again "
                        "after other contigs; sort with `bcftools sort`",
                        "CHROM",
                    )
                seen.add(contig)
                previous_contig, previous_position = contig, 0
            if position < previous_position:
                raise fail(
                    f"records are not sorted: {contig}:{position} comes after "
                    f"{contig}:{previous_position}; sort with `bcftools sort`",
                    "POS",
                )
            previous_position = position
            if not _REF.match(reference):
                raise fail(f"REF {reference!r} is not a DNA sequence", "REF")
            for alternate in columns[4].split(","):
                if alternate != "." and not _ALT.match(alternate):
                    raise fail(f"ALT {alternate!r} is not a valid allele", "ALT")
            keys = columns[8].split(":") if num_samples else []
            if "GT" in keys:
                slot = keys.index("GT")
                for sample, call in enumerate(columns[9:]):
                    values = call.split(":")
                    if slot < len(values) and not _GENOTYPE.match(values[slot]):
                        raise fail(
                            f"genotype {values[slot]!r} of sample {sample + 1} is "
                            "not valid (e.g. 0/1, 1|1, ./.)",
                            "GT",
                        )


def _text_lines(path: pathlib.Path) -> Generator[str, None, None]:
    """The file as VCF text: a BCF's records as ``bcftools view`` prints them."""
    if not is_bcf(path):
        with gzip.open(path, "rt") as lines:
            yield from lines
        return
    with pysam.VariantFile(os.fspath(path)) as variants:
        yield from str(variants.header).splitlines(keepends=True)
        for variant in variants:
            yield str(variant)


def check_index_contigs(header: VcfHeader, indexed: pathlib.Path) -> None:
    """Fail, before the conversion, if records use a contig the header does not declare.

    A header without ``##contig`` lines declares none and accepts the records'
    contigs as they come; one with some must declare every contig the index lists.
    """
    if not header.contigs:
        return
    with pysam.VariantFile(os.fspath(indexed)) as variants:
        index = variants.index
        indexed_contigs = list(index.keys()) if index is not None else []
    undeclared = {name for name in indexed_contigs if name not in header.contigs}
    if not undeclared:
        return
    # Only now read the text, to name the first such record's line.
    line, contig = None, sorted(undeclared)[0]
    with contextlib.closing(_text_lines(header.path)) as lines:
        for number, text in enumerate(lines, 1):
            if not text.startswith("#") and text.split("\t", 1)[0] in undeclared:
                line, contig = number, text.split("\t", 1)[0]
                break
    raise VcfError(
        f"contig {contig!r} is not declared in the header: add a ##contig line "
        "for it, or remove all ##contig lines",
        path=header.path,
        line=line,
        field="CHROM",
    )


def check_records(
    header: VcfHeader,
    contig_ids: list[str],
    variant_contig: np.ndarray,
    variant_position: np.ndarray,
    variant_allele: np.ndarray,
) -> None:
    """Check converted records: declared contigs, sorted positions, allele alphabet.

    ``contig_ids`` is the converted store's contig list, ``variant_contig`` indexes it.
    """
    path = header.path

    def line_of(record: int) -> int:
        return header.num_header_lines + 1 + int(record)

    # No ##contig lines: the records' contigs are the dataset's.
    declared = set(header.contigs) if header.contigs else set(contig_ids)
    for contig_index in np.unique(variant_contig):
        name = contig_ids[contig_index]
        if name not in declared:
            first = int(np.argmax(variant_contig == contig_index))
            raise VcfError(
                f"contig {name!r} is not declared in the header (add a ##contig line)",
                path=path,
                line=line_of(first),
                field="CHROM",
            )
    if len(variant_contig):
        changes = np.flatnonzero(np.diff(variant_contig)) + 1
        run_contigs = variant_contig[np.concatenate(([0], changes))]
        if len(np.unique(run_contigs)) != len(run_contigs):
            _, first_repeat = np.unique(run_contigs, return_index=True)
            repeated = sorted(set(range(len(run_contigs))) - set(first_repeat))[0]
            record = int(np.concatenate(([0], changes))[repeated])
            raise VcfError(
                f"records are not sorted: contig {contig_ids[run_contigs[repeated]]!r} "
                "appears again after other contigs; sort with `bcftools sort`",
                path=path,
                line=line_of(record),
                field="CHROM",
            )
        same_contig = variant_contig[1:] == variant_contig[:-1]
        backwards = np.flatnonzero(
            same_contig & (variant_position[1:] < variant_position[:-1])
        )
        if len(backwards):
            record = int(backwards[0]) + 1
            raise VcfError(
                f"records are not sorted: position {variant_position[record]} comes "
                f"after {variant_position[record - 1]}; sort with `bcftools sort`",
                path=path,
                line=line_of(record),
                field="POS",
            )
    for record, alleles in enumerate(variant_allele):
        reference = alleles[0]
        if not _REF.match(reference):
            raise VcfError(
                f"REF {reference!r} has characters other than A, C, G, T, N",
                path=path,
                line=line_of(record),
                field="REF",
            )
        for alternate in alleles[1:]:
            if alternate and not _ALT.match(alternate):
                raise VcfError(
                    f"ALT {alternate!r} is not a valid allele",
                    path=path,
                    line=line_of(record),
                    field="ALT",
                )

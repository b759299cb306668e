"""The reference's counts equal bcftools +fill-tags and plink2 --freq on the same
real files: the 1000 Genomes slice with missing calls and multi-allelic sites,
and the chrX subset with hemizygous males (written ``0/.`` and as true haploid
calls). Every variant, every ALT allele, the whole cohort and each sex."""

from __future__ import annotations

import json
import pathlib
import subprocess

import numpy as np
import pysam
import pytest

from genomenode.reference.service import reference_store
from genomenode.store.published import PublishedDatasets

from ..conftest import CINECA_INDIVIDUALS

SEX = {"NCIT:C20197": "M", "NCIT:C16576": "F"}


def _sexes() -> dict[str, str]:
    records = json.loads(pathlib.Path(CINECA_INDIVIDUALS).read_text())
    return {
        item["id"]: SEX[item["sex"]["id"]]
        for item in records
        if item["sex"]["id"] in SEX
    }


_CACHE: dict = {}


def _counts(store, row, allele):
    key = (id(store), row, allele)
    if key not in _CACHE:
        _CACHE[key] = store.counts(row, allele)
    return _CACHE[key]


def _store(reference_node, dataset_id):
    handle = PublishedDatasets(reference_node.node).get(dataset_id)
    store = reference_store(handle)
    assert store is not None and not store.qc
    return store


def _ours(store, row: int, allele: int, population: str) -> tuple[int, ...]:
    counts = _counts(store, row, allele)
    index = counts.populations.index(population)
    return tuple(
        int(getattr(counts, name)[index])
        for name in (
            "allele_count",
            "allele_number",
            "allele_count_hom",
            "allele_count_het",
            "allele_count_hemi",
        )
    )


@pytest.mark.parametrize("dataset_id", ["kg", "kgx"])
def test_counts_equal_bcftools_fill_tags(reference_node, tmp_path, dataset_id):
    vcf = reference_node.vcfs[dataset_id]
    with pysam.VariantFile(str(vcf)) as reading:
        samples = list(reading.header.samples)
    sexes = _sexes()
    groups = tmp_path / "groups.txt"
    groups.write_text(
        "".join(f"{name}\t{sexes[name]}\n" for name in samples if name in sexes)
    )
    filled = tmp_path / "filled.bcf"
    subprocess.run(
        [
            "bcftools",
            "+fill-tags",
            str(vcf),
            "-Ob",
            "-o",
            str(filled),
            "--",
            "-S",
            str(groups),
            "-t",
            "AN,AC,AC_Hom,AC_Het,AC_Hemi",
        ],
        check=True,
        capture_output=True,
    )
    store = _store(reference_node, dataset_id)
    checked = hemizygous = multi = 0
    with pysam.VariantFile(str(filled)) as reading:
        for row, record in enumerate(reading):
            info = record.info
            for allele in range(1, len(record.alts) + 1):
                i = allele - 1
                for ours, suffix in (
                    ("FI", ""),
                    ("FI_M", "_M"),
                    ("FI_F", "_F"),
                    ("M", "_M"),
                    ("F", "_F"),
                ):
                    expected = (
                        info[f"AC{suffix}"][i],
                        info[f"AN{suffix}"],
                        info[f"AC_Hom{suffix}"][i],
                        info[f"AC_Het{suffix}"][i],
                        info[f"AC_Hemi{suffix}"][i],
                    )
                    assert _ours(store, row, allele, ours) == expected, (
                        record.pos,
                        record.alts[i],
                        ours,
                    )
                    checked += 1
                hemizygous += info["AC_Hemi"][i] > 0
            multi += len(record.alts) > 1
        assert row + 1 == store.num_variants
    assert checked > 5_000
    if dataset_id == "kgx":
        assert hemizygous > 100
    else:
        assert multi >= 2  # the slice has two multi-allelic sites


def _plink_counts(vcf: pathlib.Path, keep: list[str], out: pathlib.Path, extra=()):
    keep_file = out.with_suffix(".keep")
    keep_file.write_text("#IID\n" + "".join(f"{name}\n" for name in keep))
    subprocess.run(
        [
            "plink2",
            "--vcf",
            str(vcf),
            "--keep",
            str(keep_file),
            "--freq",
            "counts",
            "cols=+pos",
            "--out",
            str(out),
            *extra,
        ],
        check=True,
        capture_output=True,
    )
    rows = []
    for line in out.with_suffix(".acount").read_text().splitlines()[1:]:
        fields = line.split("\t")
        rows.append(([int(v) for v in fields[5].split(",")], int(fields[6])))
    return rows


def test_allele_counts_equal_plink2_freq(reference_node, tmp_path):
    """plink2 --freq counts (ALT_CTS, OBS_CT) per sex and overall on the slice with
    missing calls and multi-allelic sites."""
    vcf = reference_node.vcfs["kg"]
    with pysam.VariantFile(str(vcf)) as reading:
        samples = list(reading.header.samples)
    sexes = _sexes()
    store = _store(reference_node, "kg")
    for population, keep in (
        ("FI", samples),
        ("M", [s for s in samples if sexes.get(s) == "M"]),
        ("F", [s for s in samples if sexes.get(s) == "F"]),
    ):
        rows = _plink_counts(vcf, keep, tmp_path / population)
        assert len(rows) == store.num_variants
        for row, (alt_counts, observed) in enumerate(rows):
            for allele, expected in enumerate(alt_counts, start=1):
                count, number, *_ = _ours(store, row, allele, population)
                assert (count, number) == (expected, observed), (row, population)


def test_female_chrx_counts_equal_plink2(reference_node, tmp_path):
    """On chrX, plink2 counts females as diploid (males need its sex model)."""
    vcf = reference_node.vcfs["kgx"]
    with pysam.VariantFile(str(vcf)) as reading:
        samples = list(reading.header.samples)
    sexes = _sexes()
    females = [s for s in samples if sexes.get(s) == "F"]
    rows = _plink_counts(vcf, females, tmp_path / "x", extra=("--vcf-half-call", "m"))
    store = _store(reference_node, "kgx")
    for row, (alt_counts, observed) in enumerate(rows):
        for allele, expected in enumerate(alt_counts, start=1):
            count, number, *_ = _ours(store, row, allele, "F")
            assert (count, number) == (expected, observed), row
    assert np.sum([r[1] for r in rows]) > 0

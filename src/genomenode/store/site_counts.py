"""Per-variant counts of a sites-only (aggregate-only) dataset, read from INFO fields.

A sites-only VCF (no sample columns: a gnomAD-style release, a national allele
frequency file) carries its counts in INFO. bio2zarr converts those fields to
``variant_<ID>`` arrays; this module maps them, by the convention in
docs/ingest.md, to the node's own statistics (the arrays a genotyped dataset gets
from its calls: ``variant_allele_count`` ...) and to per-population arrays:

- ``population_id`` (populations): the population names, in header order;
- ``variant_population_allele_count`` (variants, populations, alleles): copies of
  each allele, REF first (AN minus the ALT counts);
- ``variant_population_allele_total`` (variants, populations): AN;
- ``variant_population_allele_count_hom`` / ``_het`` / ``_hemi`` (variants,
  populations, alleles): copies in homozygous, heterozygous and hemizygous calls
  (-1 where the file does not say).

The whole dataset is population ``""`` at index 0. The group's attribute
``genomenode_site_counts`` holds ``format_version`` and the source field of each
quantity; a reader refuses a version it does not know.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import zarr

from ..errors import StoreError

__all__ = [
    "FORMAT_VERSION",
    "PopulationFrequency",
    "SiteCounts",
    "SiteFields",
    "site_fields",
    "write_site_counts",
]

FORMAT_VERSION = 1
ATTRIBUTE = "genomenode_site_counts"

# INFO field names per quantity: gnomAD's (AC, AN, nhomalt: individuals) and the
# GDI mini-node's allele-frequency columns (AC_HOM, AC_HET, AC_HEMI: copies).
_WHOLE = {
    "count": "AC",
    "total": "AN",
    "num_hom_alt": "nhomalt",
    "hom": "AC_HOM",
    "het": "AC_HET",
    "hemi": "AC_HEMI",
}
_PER_POPULATION = re.compile(r"^(AC|AN|nhomalt|AC_HOM|AC_HET|AC_HEMI)_([A-Za-z0-9]+)$")
_QUANTITY = {value: key for key, value in _WHOLE.items()}
_COPIES = ("hom", "het", "hemi")
# Decoded chunks kept per dataset (five arrays; a chunk of 10,000 variants × 11
# populations × 2 alleles is under 1 MB).
_CACHED_CHUNKS = 80


@dataclasses.dataclass(frozen=True)
class PopulationFrequency:
    """Counts of one allele in one population (``""``: the whole dataset); copies
    in homozygous, heterozygous, hemizygous calls are None where the file is silent.
    """

    population: str
    count: int
    total: int
    hom: int | None
    het: int | None
    hemi: int | None


@dataclasses.dataclass(frozen=True)
class SiteFields:
    """Which INFO field holds each quantity, for the whole and per population.

    ``fields[population][quantity]`` is an INFO id; population ``""`` is the whole
    dataset. A population is kept only if it has both AC and AN.
    """

    fields: Mapping[str, Mapping[str, str]]

    @property
    def populations(self) -> list[str]:
        return list(self.fields)


def site_fields(info_ids: Sequence[str]) -> SiteFields:
    """The convention applied to a header's INFO ids (see the module docstring).

    ``AC_HOM``/``AC_HET``/``AC_HEMI`` are whole-dataset fields, not populations
    named ``HOM``...; a name such as ``AC_nfe_XX`` (gnomAD's sex splits) is not a
    population here and is left in the store as it is.
    """
    found: dict[str, dict[str, str]] = {"": {}}
    for info_id in info_ids:
        if info_id in _QUANTITY:
            found[""][_QUANTITY[info_id]] = info_id
            continue
        match = _PER_POPULATION.match(info_id)
        if match is None or match.group(2) in ("HOM", "HET", "HEMI"):
            continue
        quantity = _QUANTITY[match.group(1)]
        found.setdefault(match.group(2), {})[quantity] = info_id
    kept = {
        population: quantities
        for population, quantities in found.items()
        if "count" in quantities and "total" in quantities
    }
    return SiteFields(kept)


def _read(root: Any, info_id: str, width: int | None) -> np.ndarray:
    """An INFO array as int64, ``width`` columns (None: one value a variant);
    missing and fill values as -1."""
    values = np.asarray(root[f"variant_{info_id}"][:]).astype(np.int64)
    values = np.where(values < 0, -1, values)
    if width is None:
        return values if values.ndim == 1 else values[:, 0]
    if values.ndim == 1:
        values = values[:, None]
    out = np.full((len(values), width), -1, dtype=np.int64)
    kept = min(width, values.shape[1])
    out[:, :kept] = values[:, :kept]
    return out


def write_site_counts(vcz_path: pathlib.Path, fields: SiteFields) -> list[str]:
    """Write the node's statistics and the per-population arrays; their names.

    Raises
    ------
    StoreError
        The whole-dataset AC and AN are not in the store.
    """
    root: Any = zarr.open_group(vcz_path, mode="r+")
    if "" not in fields.fields:
        raise StoreError(f"{vcz_path}: no INFO AC and AN to count from")
    alleles = np.asarray(root["variant_allele"][:])
    num_variants, num_alleles = alleles.shape
    present = alleles != ""
    populations = fields.populations
    shape = (num_variants, len(populations), num_alleles)
    count = np.full(shape, -1, dtype=np.int64)
    total = np.full(shape[:2], -1, dtype=np.int64)
    copies = {
        kind: np.full(shape, -1, dtype=np.int64) for kind in ("hom", "het", "hemi")
    }
    for index, population in enumerate(populations):
        quantities = fields.fields[population]
        alternates = _read(root, quantities["count"], num_alleles - 1)
        number = _read(root, quantities["total"], None)
        known = (number >= 0) & np.all((alternates >= 0) | ~present[:, 1:], axis=1)
        alternates = np.where(present[:, 1:], np.maximum(alternates, 0), 0)
        count[:, index, 1:] = alternates
        count[:, index, 0] = number - alternates.sum(axis=1)
        count[~known, index] = -1
        total[:, index] = number
        if "num_hom_alt" in quantities:
            individuals = _read(root, quantities["num_hom_alt"], num_alleles - 1)
            copies["hom"][:, index, 1:] = np.where(
                individuals >= 0, 2 * individuals, -1
            )
        for kind in ("hom", "het", "hemi"):
            if kind in quantities:
                copies[kind][:, index, 1:] = _read(
                    root, quantities[kind], num_alleles - 1
                )
    written = []

    def store(name: str, values: np.ndarray, dimensions: list[str]) -> None:
        chunks = (root["variant_position"].chunks[0], *values.shape[1:])
        array = root.create_array(
            name, shape=values.shape, chunks=chunks, dtype=np.int32, overwrite=True
        )
        array[...] = values.astype(np.int32)
        array.attrs["_ARRAY_DIMENSIONS"] = dimensions
        written.append(name)

    ids = root.create_array(
        "population_id",
        shape=(len(populations),),
        dtype=str,
        overwrite=True,
    )
    ids[...] = np.array(populations, dtype=str)
    ids.attrs["_ARRAY_DIMENSIONS"] = ["populations"]
    dimensions = ["variants", "populations", "alleles"]
    store("variant_population_allele_count", count, dimensions)
    store("variant_population_allele_total", total, dimensions[:2])
    for kind, values in copies.items():
        store(f"variant_population_allele_count_{kind}", values, dimensions)
    # The node's whole-dataset statistics, as a genotyped dataset has them; what an
    # allele count cannot tell (called samples, genotype classes) is -1.
    whole = count[:, 0]
    store("variant_allele_count", np.maximum(whole, 0), ["variants", "alleles"])
    store("variant_allele_total", np.maximum(total[:, 0], 0), ["variants"])
    for kind in ("hom", "het", "hemi"):
        store(
            f"variant_allele_count_{kind}", copies[kind][:, 0], ["variants", "alleles"]
        )
    unknown = np.full(num_variants, -1, dtype=np.int64)
    for name in ("variant_num_called", "variant_num_hom_ref", "variant_num_het"):
        store(name, unknown, ["variants"])
    hom_alt = np.where(present[:, 1:], copies["hom"][:, 0, 1:], 0)
    store(
        "variant_num_hom_alt",
        np.where((hom_alt >= 0).all(axis=1), hom_alt.sum(axis=1) // 2, -1),
        ["variants"],
    )
    root.attrs[ATTRIBUTE] = {
        "format_version": FORMAT_VERSION,
        "populations": populations,
        "fields": {population: dict(q) for population, q in fields.fields.items()},
    }
    return written


class SiteCounts:
    """The per-population counts of a sites-only dataset's VCF Zarr."""

    def __init__(self, vcz_path: pathlib.Path | Any) -> None:
        # A directory, or a zarr store (object store, sealed: store/node.py).
        self.root: Any = zarr.open_group(vcz_path, mode="r")
        attributes = self.root.attrs.get(ATTRIBUTE)
        if not isinstance(attributes, dict):
            raise StoreError(f"{vcz_path}: not a sites-only dataset")
        version = attributes.get("format_version")
        if version != FORMAT_VERSION:
            raise StoreError(
                f"{vcz_path}: site counts format_version {version!r} is not "
                f"supported (this is {FORMAT_VERSION}); re-ingest the dataset"
            )
        self.populations: list[str] = list(attributes["populations"])
        # Opening an array reads its metadata (~1 ms): once, not per query.
        self._arrays: dict[str, Any] = {
            name: self.root[name]
            for name in (
                "variant_population_allele_count",
                "variant_population_allele_total",
                *(f"variant_population_allele_count_{kind}" for kind in _COPIES),
            )
        }
        self._chunk = functools.lru_cache(maxsize=_CACHED_CHUNKS)(self._read_chunk)

    def _read_chunk(self, name: str, index: int) -> np.ndarray:
        array = self._arrays[name]
        length = array.chunks[0]
        chunk = np.asarray(array[index * length : (index + 1) * length])
        chunk.flags.writeable = False
        return chunk

    @staticmethod
    def present(vcz_path: pathlib.Path) -> bool:
        """Whether the store is a sites-only dataset's (has site counts)."""
        root: Any = zarr.open_group(vcz_path, mode="r")
        return ATTRIBUTE in root.attrs

    def frequencies(self, row: int, allele: int) -> list[PopulationFrequency]:
        """Counts of ``allele`` of variant ``row`` in each population the file
        gives them for (AC and AN present)."""

        def read(name: str) -> np.ndarray:
            length = self._arrays[name].chunks[0]
            return self._chunk(name, row // length)[row % length]

        count = read("variant_population_allele_count")[:, allele]
        total = read("variant_population_allele_total")
        copies = [
            read(f"variant_population_allele_count_{kind}")[:, allele]
            for kind in _COPIES
        ]
        rows = []
        for index, population in enumerate(self.populations):
            if count[index] < 0 or total[index] < 0:
                continue
            hom, het, hemi = (
                int(values[index]) if values[index] >= 0 else None for values in copies
            )
            rows.append(
                PopulationFrequency(
                    population, int(count[index]), int(total[index]), hom, het, hemi
                )
            )
        return rows

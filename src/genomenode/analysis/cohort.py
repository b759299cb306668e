"""What an analysis knows of a dataset's people: outcome and covariates per
genotype column, read from the node's clinical tables, and the genotypes of a
genomic window read in chunks (Dask: threads in-process by default, a
``distributed`` scheduler when the ``dask_scheduler`` setting names one).

Variables an analysis may name (a whitelist, nothing else is read):

- ``sex`` (1 male, 0 female; others missing), ``age`` (years at last encounter);
- a disease or phenotypic-feature term (``ICD10:I25.1``, ``HP:0001677``): 1 when
  the person has it, else 0;
- a measure's assay id (``LOINC:...``) as recorded in the phenopackets;
- ``pc1``, ``pc2``...: the person's score on the dataset's last federated PCA
  (:mod:`.pca`), kept on this node.

People missing an outcome or covariate are left out of that model.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import pathlib
import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select

from ..errors import InputError
from ..qc.flags import load_flags, results_version
from ..store.compute import scheduler_client
from ..store.models import Disease, Individual, Measure, PhenotypicFeature
from ..store.published import PublishedDataset
from .statistics import dosages_of

__all__ = [
    "MAX_VARIABLES",
    "Variables",
    "WindowGenotypes",
    "quality_masks",
    "read_variants",
    "read_window",
    "variables_of",
]

#: The most variables (outcome and covariates) one request may name.
MAX_VARIABLES = 32
_TERM = re.compile(r"(ICD10|HP):[A-Za-z0-9.]{1,16}")
_PC = re.compile(r"pc([1-9][0-9]?)")
_MEASURE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,15}:[A-Za-z0-9._-]{1,32}")
_MALE, _FEMALE = "NCIT:C20197", "NCIT:C16576"
#: Guards the caches of windows and variables (the server answers from threads).
_windows_lock = threading.Lock()


@dataclasses.dataclass(frozen=True)
class Variables:
    """Named variables per genotype column (NaN: missing)."""

    columns: dict[str, np.ndarray]
    num_samples: int

    def matrix(self, names: Sequence[str]) -> np.ndarray:
        """Samples × (1 + len(names)): an intercept, then the named columns."""
        return np.column_stack(
            [np.ones(self.num_samples), *(self.columns[name] for name in names)]
        )


#: The QC masks last read, per opened store and QC run (:func:`results_version`).
_masks: collections.OrderedDict[
    tuple[Any, ...], tuple[np.ndarray | None, np.ndarray | None]
] = collections.OrderedDict()


def _current_masks(
    dataset: PublishedDataset,
) -> tuple[str | None, np.ndarray | None, np.ndarray | None]:
    """The version of the dataset's QC results and its masks (None: all pass).

    Read once per QC run and kept: ``qc.json`` holds every sample's metrics, and
    a server keeps answering while ``qc run`` replaces it.
    """
    version = results_version(
        dataset.node, dataset.id, str(dataset.manifest["fingerprint"])
    )
    if version is None:
        return None, None, None
    key = (dataset.store, version)
    with _windows_lock:
        found = _masks.get(key)
    if found is None:
        flags = load_flags(dataset.node, dataset.id)
        found = (
            (None, None)
            if flags is None
            else (
                np.asarray(flags.sample_pass, dtype=bool),
                np.asarray(flags.variant_pass, dtype=bool),
            )
        )
        with _windows_lock:
            _masks[key] = found
            while len(_masks) > 8:
                _masks.popitem(last=False)
    return version, found[0], found[1]


def quality_masks(
    dataset: PublishedDataset,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The dataset's QC masks (sample_pass, variant_pass); None: all pass.

    The one place analyses learn of QC flags (docs/analysis.md):
    :func:`genomenode.qc.flags.load_flags` (``genomenode qc run``), as of the
    dataset's current QC run.
    """
    _, sample_pass, variant_pass = _current_masks(dataset)
    return sample_pass, variant_pass


def _scores_path(dataset: PublishedDataset) -> pathlib.Path:
    return dataset.node.config.node_dir / "analysis" / dataset.id / "pcs.npy"


_variables: collections.OrderedDict[tuple[Any, ...], Variables] = (
    collections.OrderedDict()
)


def variables_of(dataset: PublishedDataset, names: Sequence[str]) -> Variables:
    """The named variables of ``dataset``'s genotype columns (the last few
    asked for are kept: every IRLS round asks again; a new ingest opens a new
    store and a new PCA rewrites the scores, both change the key).

    Raises
    ------
    InputError
        An unknown or malformed name (field ``variables``), or ``pcN`` before a
        PCA was run on this dataset.
    """
    if len(names) > MAX_VARIABLES:
        raise InputError(f"at most {MAX_VARIABLES} variables", field="variables")
    scores = _scores_path(dataset)
    key = (
        dataset.store,
        tuple(names),
        scores.stat().st_mtime_ns if scores.exists() else None,
    )
    with _windows_lock:
        found = _variables.get(key)
    if found is not None:
        return found
    variables = _read_variables(dataset, names)
    with _windows_lock:
        _variables[key] = variables
        while len(_variables) > 16:
            _variables.popitem(last=False)
    return variables


def _read_variables(dataset: PublishedDataset, names: Sequence[str]) -> Variables:
    num = dataset.facts.num_samples
    with dataset.node.session() as session:
        people = session.execute(
            select(
                Individual.id,
                Individual.sample_index,
                Individual.sex_id,
                Individual.age_years,
            ).where(
                Individual.dataset_id == dataset.id,
                Individual.sample_index.is_not(None),
            )
        ).all()
        column_of = {str(row[0]): int(row[1] or 0) for row in people}
        out: dict[str, np.ndarray] = {}
        for name in dict.fromkeys(names):
            values = np.full(num, np.nan)
            if name == "sex":
                for _, index, sex, _ in people:
                    values[index] = {_MALE: 1.0, _FEMALE: 0.0}.get(sex, np.nan)
            elif name == "age":
                for _, index, _, age in people:
                    values[index] = np.nan if age is None else float(age)
            elif _PC.fullmatch(name):
                component = int(_PC.fullmatch(name).group(1))  # type: ignore[union-attr]
                path = _scores_path(dataset)
                if not path.exists():
                    raise InputError(
                        f"{name}: no PCA was run on dataset {dataset.id}",
                        field="variables",
                    )
                scores = np.load(path)
                if component > scores.shape[1]:
                    raise InputError(
                        f"{name}: the PCA kept {scores.shape[1]} components",
                        field="variables",
                    )
                values = scores[:, component - 1].copy()
            elif _TERM.fullmatch(name):
                table: Any = Disease if name.startswith("ICD10") else PhenotypicFeature
                having = session.scalars(
                    select(table.individual_id).where(
                        table.dataset_id == dataset.id, table.term_id == name
                    )
                ).all()
                values[list(column_of.values())] = 0.0
                for individual in having:
                    if individual in column_of:
                        values[column_of[individual]] = 1.0
            elif _MEASURE.fullmatch(name):
                measured = session.execute(
                    select(Measure.individual_id, Measure.value).where(
                        Measure.dataset_id == dataset.id, Measure.assay_id == name
                    )
                ).all()
                if not measured:
                    raise InputError(
                        f"{name}: no such variable in dataset {dataset.id}",
                        field="variables",
                    )
                for individual, value in measured:
                    if individual in column_of and value is not None:
                        values[column_of[individual]] = float(value)
            else:
                raise InputError(
                    f"{name!r}: not a variable (sex, age, a term such as "
                    "ICD10:I25.1, a measure's assay id, or pc1...)",
                    field="variables",
                )
            values.flags.writeable = False  # shared through the cache
            out[name] = values
    return Variables(out, num)


@dataclasses.dataclass(frozen=True)
class WindowGenotypes:
    """Biallelic variants of a window and their dosages (variants × samples)."""

    positions: np.ndarray
    references: list[str]
    alternates: list[str]
    dosages: np.ndarray

    def variant_keys(self) -> list[tuple[int, str, str]]:
        return list(
            zip(self.positions.tolist(), self.references, self.alternates, strict=True)
        )


def _dosages_block(genotypes: Any, start: int, stop: int) -> np.ndarray:
    """Dosages of rows ``start:stop`` of a ``call_genotype`` array."""
    calls = np.asarray(genotypes[start:stop])
    # 0, 1, 2 and NaN are exact in float32: half the memory of the cached windows.
    return dosages_of(calls).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class _StoreSource:
    """Where a worker process finds a dataset's VCF Zarr: through the node's
    store API (:meth:`genomenode.store.node.Node.dataset_zarr`), so a store on
    an object store or sealed at rest reads as a plain one does. Picklable: a
    ``distributed`` worker opens the node's settings and keys itself (it needs
    the node directory and the store's credentials, as ingest's workers do)."""

    node_dir: str
    dataset_id: str
    fingerprint: str
    vcz: str


@functools.lru_cache(maxsize=8)
def _genotypes_at(source: _StoreSource) -> Any:
    """The ``call_genotype`` array of ``source`` (opened once per process)."""
    import zarr

    from ..config import load_config
    from ..store.node import Node

    node = Node(load_config(source.node_dir))
    location, _ = node.dataset_zarr(source.dataset_id, source.fingerprint, source.vcz)
    return zarr.open_group(location, mode="r")["call_genotype"]


def _read_block(source: _StoreSource, start: int, stop: int) -> np.ndarray:
    """Dosages of rows ``start:stop`` (runs on a Dask worker: opens the store)."""
    return _dosages_block(_genotypes_at(source), start, stop)


#: Decoded windows kept between the rounds of an iterative model (bytes).
WINDOW_CACHE_BYTES = 256 * 1024 * 1024
_windows: collections.OrderedDict[tuple[Any, ...], WindowGenotypes] = (
    collections.OrderedDict()
)


def read_window(
    dataset: PublishedDataset,
    contig: str,
    start: int,
    end: int,
    *,
    scheduler: str | None = None,
    block_rows: int = 2_000,
    max_variants: int = 20_000,
) -> WindowGenotypes:
    """The biallelic variants with 1-based POS in ``[start, end)`` on ``contig``,
    read in blocks of ``block_rows`` rows as Dask tasks; a window of more than
    ``max_variants`` rows is refused (InputError, field ``window``).

    An IRLS asks for the same window once per iteration: the last windows read
    are kept (:data:`WINDOW_CACHE_BYTES`), keyed by the dataset's opened store
    (a new ingest opens a new one) and its QC run (a new one changes the masks).
    """
    rows = dataset.store.rows_at(contig, start, end)
    if len(rows) > max_variants:
        raise InputError(
            f"{len(rows)} variants in the window, more than {max_variants} "
            "(setting analysis_max_window_variants)",
            field="window",
        )
    version, sample_pass, variant_pass = _current_masks(dataset)
    key = (dataset.store, version, contig, start, end)
    with _windows_lock:
        found = _windows.get(key)
        if found is not None:
            _windows.move_to_end(key)
            return found
    window = _read_window(
        dataset, contig, start, end, scheduler, block_rows, sample_pass, variant_pass
    )
    with _windows_lock:
        _windows[key] = window
        total = sum(item.dosages.nbytes for item in _windows.values())
        while total > WINDOW_CACHE_BYTES and len(_windows) > 1:
            _, evicted = _windows.popitem(last=False)
            total -= evicted.dosages.nbytes
    return window


def _read_window(
    dataset: PublishedDataset,
    contig: str,
    start: int,
    end: int,
    scheduler: str | None,
    block_rows: int,
    sample_pass: np.ndarray | None,
    variant_pass: np.ndarray | None,
) -> WindowGenotypes:
    import dask

    store = dataset.store
    rows = store.rows_at(contig, start, end)
    if len(rows) == 0:
        empty = np.zeros((0, dataset.facts.num_samples), np.float32)
        return WindowGenotypes(np.zeros(0, np.int64), [], [], empty)
    alleles = store.alleles(rows.start, rows.stop)
    biallelic = (alleles[:, 1] != "") & (
        (alleles[:, 2] == "") if alleles.shape[1] > 2 else True
    )
    if variant_pass is not None:
        biallelic &= variant_pass[rows.start : rows.stop]
    blocks_at = range(rows.start, rows.stop, block_rows)
    with scheduler_client(scheduler) as client:
        if client is None:
            # Threads of this process read the store the node opened (plain,
            # object store or sealed alike).
            genotypes = store.root["call_genotype"]
            tasks = [
                dask.delayed(_dosages_block)(
                    genotypes, first, min(first + block_rows, rows.stop)
                )
                for first in blocks_at
            ]
            blocks = dask.compute(*tasks, scheduler="threads")
        else:
            manifest = dataset.manifest
            source = _StoreSource(
                str(dataset.node.config.node_dir),
                dataset.id,
                manifest["fingerprint"],
                manifest["genotypes"]["path"],
            )
            tasks = [
                dask.delayed(_read_block)(
                    source, first, min(first + block_rows, rows.stop)
                )
                for first in blocks_at
            ]
            blocks = client.compute(tasks, sync=True)
    dosages = np.concatenate(blocks)[biallelic]
    if sample_pass is not None:
        dosages[:, ~sample_pass] = np.nan
    dosages.flags.writeable = False  # shared by the rounds (cached)
    return WindowGenotypes(
        positions=np.asarray(store.positions(rows.start, rows.stop))[biallelic].astype(
            np.int64
        ),
        references=[str(a) for a in alleles[biallelic, 0]],
        alternates=[str(a) for a in alleles[biallelic, 1]],
        dosages=dosages,
    )


def read_variants(
    dataset: PublishedDataset, contig: str, keys: Sequence[str]
) -> np.ndarray:
    """Dosages (variants × samples, float64) of the named ``POS:REF:ALT``
    variants, read row by row through the store's chunk cache (a few thousand
    variants spread over a region, as a PCA asks for).

    Raises
    ------
    InputError
        A variant not in the dataset (field ``variants``).
    """
    store = dataset.store
    out = np.empty((len(keys), dataset.facts.num_samples))
    for number, key in enumerate(keys):
        position, _, alleles = key.partition(":")
        if not position.isdigit():
            raise InputError(f"{key!r} is not POS:REF:ALT", field="variants")
        found = None
        for row in store.rows_at(contig, int(position)):
            reference, alternate = (str(a) for a in store.alleles(row, row + 1)[0][:2])
            if f"{reference}:{alternate}" == alleles:
                found = row
                break
        if found is None:
            raise InputError(f"{key} is not in this dataset", field="variants")
        calls = np.asarray(store.genotypes(found))[None, :, :]
        out[number] = dosages_of(calls)[0]
    sample_pass, _ = quality_masks(dataset)
    if sample_pass is not None:
        out[:, ~sample_pass] = np.nan
    return out

"""The published datasets, opened once per process and cached.

The content of a published dataset never changes (a new version is a new id), so
its genotype store, its sample → individual map and its manifest are opened once
per process. What an operator may change (publish, unpublish, security level,
Beacon granularities, DUO terms, removal) bumps the datasets' generation
(:mod:`genomenode.store.generation`); :meth:`PublishedDatasets.datasets` compares
it on every call and re-reads the list when it moved (and at least every
``refresh_seconds``), keeping a handle only while its facts are unchanged. So every
worker of a server answers the next request with the change.

What a caller may see of a dataset is decided above this layer
(:func:`genomenode.access.decision.dataset_access`); this module only holds data.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from sqlalchemy import select

from ..web.blocking import check_cancelled
from .generation import read_generation, read_signal, write_signal
from .genotype_rows import GenotypeSource
from .genotypes import NOT_VARIANTS, GenotypeStore
from .models import (
    Biosample,
    Dataset,
    DataUseTerm,
    Individual,
    published_datasets,
)
from .node import Node
from .scans import column_keys
from .site_counts import SiteCounts

__all__ = ["DatasetFacts", "PublishedDataset", "PublishedDatasets"]

_SEX_LETTER = {"NCIT:C20197": "M", "NCIT:C16576": "F"}


@dataclasses.dataclass(frozen=True)
class DatasetFacts:
    """The plain columns of a published dataset row (detached from any session)."""

    id: str
    name: str
    description: str
    country: str
    security_level: str
    assembly: str
    num_individuals: int
    num_samples: int
    num_variants: int
    created_at: Any
    published_at: Any
    description_document: Mapping[str, Any]

    @classmethod
    def of(cls, row: Dataset) -> DatasetFacts:
        return cls(
            id=row.id,
            name=row.name,
            description=row.description,
            country=row.country,
            security_level=row.security_level,
            assembly=row.assembly,
            num_individuals=row.num_individuals,
            num_samples=row.num_samples,
            num_variants=row.num_variants,
            created_at=row.created_at,
            published_at=row.published_at,
            description_document=dict(row.description_document or {}),
        )


class PublishedDataset:
    """One published dataset: its facts and opened stores."""

    def __init__(self, node: Node, facts: DatasetFacts) -> None:
        self.node = node
        self.facts = facts
        self.id = facts.id

    @functools.cached_property
    def manifest(self) -> dict[str, Any]:
        return self.node.dataset_manifest(self.id)

    @functools.cached_property
    def _zarr(self) -> tuple[Any, Any]:
        """Where the VCF Zarr is read from (a directory, an object store, sealed)."""
        return self.node.dataset_zarr(
            self.id, self.manifest["fingerprint"], self.manifest["genotypes"]["path"]
        )

    @functools.cached_property
    def store(self) -> GenotypeStore:
        genotypes = self.manifest["genotypes"]
        location, read_object = self._zarr
        if read_object is None:
            return GenotypeStore(location, genotypes["contigs"])
        # Where errors say the VCF Zarr is: its directory, or its object prefix.
        where = self.node.dataset_file(
            self.id, self.manifest["fingerprint"], genotypes["path"]
        )
        return GenotypeStore(
            str(where),
            genotypes["contigs"],
            store=location,
            read_object=read_object,
        )

    @functools.cached_property
    def site_counts(self) -> SiteCounts | None:
        """A sites-only dataset's per-population counts; None for a cohort."""
        if not self.manifest.get("site_counts"):
            return None
        return SiteCounts(self._zarr[0])

    @functools.cached_property
    def _samples(self) -> tuple[np.ndarray, dict[str, int]]:
        with self.node.session() as session:
            rows = session.execute(
                select(Biosample.sample_index, Biosample.individual_id).where(
                    Biosample.dataset_id == self.id
                )
            ).all()
        individuals = np.empty(self.facts.num_samples, dtype=object)
        for index, individual in rows:
            individuals[index] = individual
        return individuals, {str(individual): index for index, individual in rows}

    @property
    def sample_individuals(self) -> np.ndarray:
        """Individual id of each genotype column (object array)."""
        return self._samples[0]

    @property
    def individual_samples(self) -> dict[str, int]:
        """Genotype column of each genotyped individual."""
        return self._samples[1]

    @functools.cached_property
    def all_individual_ids(self) -> list[str]:
        """Every individual of the dataset (genotyped or not), sorted."""
        with self.node.session() as session:
            return sorted(
                session.scalars(
                    select(Individual.id).where(Individual.dataset_id == self.id)
                )
            )

    @functools.cached_property
    def individual_id_set(self) -> frozenset[str]:
        return frozenset(self.all_individual_ids)

    @functools.cached_property
    def _variant_alleles(self) -> tuple[np.ndarray, dict[int, list[int]]]:
        """Cumulative count of Beacon variant alleles before each row (length rows
        + 1), and the variant alleles of the rows that also hold one of
        :data:`NOT_VARIANTS` (``*``; rare), whose alleles are not simply 1..n."""
        store = self.store
        total = self.facts.num_variants
        counts = np.zeros(total, dtype=np.int64)
        sparse: dict[int, list[int]] = {}
        step = store.root["variant_allele"].chunks[0]
        not_variants = sorted(NOT_VARIANTS)
        for start in range(0, total, step):
            alleles = store.read("variant_allele", start, min(start + step, total))
            alternates = alleles[:, 1:]
            present = alternates != ""
            variant = present & ~np.isin(alternates, not_variants)
            counts[start : start + len(alleles)] = variant.sum(axis=1)
            for offset in np.flatnonzero((present != variant).any(axis=1)).tolist():
                kept = np.flatnonzero(variant[offset]) + 1
                sparse[start + offset] = kept.tolist()
        return np.concatenate([[0], np.cumsum(counts)]), sparse

    @property
    def num_alleles(self) -> int:
        """Number of (variant, ALT allele) pairs: the dataset's Beacon variants."""
        return int(self._variant_alleles[0][-1])

    def allele_keys(self, skip: int, limit: int) -> Iterator[tuple[int, int]]:
        """(row, allele) pairs ``skip`` to ``skip + limit`` in genome order."""
        offsets, sparse = self._variant_alleles
        position = skip
        stop = min(skip + limit, int(offsets[-1]))
        while position < stop:
            row = int(np.searchsorted(offsets, position, side="right")) - 1
            index = position - int(offsets[row])
            yield row, sparse[row][index] if row in sparse else index + 1
            position += 1

    @functools.cached_property
    def genotype_source(self) -> GenotypeSource:
        """Where the VCF Zarr is, in plain values another process can open."""
        return GenotypeSource.of(
            self.node,
            self.id,
            self.manifest["fingerprint"],
            self.manifest["genotypes"]["path"],
        )

    def sample_variants(self, sample: int) -> Iterator[tuple[int, int]]:
        """Every (row, allele) one genotype column carries, in genome order.

        A scan of one column of ``call_genotype`` (one chunk of samples per block
        of variants): seconds for a whole genome, so callers stop early when they
        can. The blocks are read in a scan process (:mod:`~genomenode.store.scans`,
        the ``scan_processes`` setting), at a lower priority than the server's
        threads.
        """
        call_genotype = self.store.root["call_genotype"]
        step = call_genotype.chunks[0]
        total = call_genotype.shape[0]
        sparse = self._variant_alleles[1]
        processes = int(self.node.config.scan_processes)
        source = self.genotype_source if processes > 0 else None
        for start in range(0, total, step):
            check_cancelled()  # seconds of work: stop when the client has gone
            # (row, allele) pairs as one sorted key each: genome order, then
            # allele, without a Python loop per carried variant.
            keys = column_keys(
                call_genotype,
                source,
                start,
                min(start + step, total),
                sample,
                processes=processes,
            )
            for key in keys.tolist():
                row, allele = start + key // 256, key % 256
                if row in sparse and allele not in sparse[row]:
                    continue  # a * allele: not a variant
                yield row, allele

    @functools.cached_property
    def population_groups(self) -> tuple[np.ndarray, list[str]]:
        """Country × sex group of each genotype column, and the group names.

        Names are ``<country>_<M|F|U>``; a sample's country is its individual's
        country of birth, else the dataset's country.
        """
        with self.node.session() as session:
            rows = session.execute(
                select(
                    Individual.sample_index,
                    Individual.country_of_birth,
                    Individual.sex_id,
                ).where(
                    Individual.dataset_id == self.id,
                    Individual.sample_index.is_not(None),
                )
            ).all()
        groups = np.full(self.facts.num_samples, -1, dtype=np.int32)
        names: dict[str, int] = {}
        for index, country, sex in rows:
            letter = _SEX_LETTER.get(sex, "U")
            name = f"{(country or self.facts.country).upper()}_{letter}"
            groups[index] = names.setdefault(name, len(names))
        return groups, list(names)

    @functools.cached_property
    def data_use(self) -> list[dict[str, Any]]:
        with self.node.session() as session:
            rows = session.scalars(
                select(DataUseTerm)
                .where(DataUseTerm.dataset_id == self.id)
                .order_by(DataUseTerm.id)
            ).all()
        return [
            {"id": row.term_id, "label": row.label, "disease": row.disease_id}
            for row in rows
        ]


class PublishedDatasets:
    """The node's published datasets, read again whenever their generation moves."""

    def __init__(self, node: Node, *, refresh_seconds: float = 2.0) -> None:
        self.node = node
        self.refresh_seconds = refresh_seconds
        self._handles: dict[str, PublishedDataset] = {}
        self._read_at = -float("inf")
        self._generation: int | None = None
        self._signal: str | None = None

    def datasets(self) -> list[PublishedDataset]:
        """Every published dataset, by id, as the database says now.

        One small file read per call (the generation's signal, see
        :mod:`genomenode.store.generation`); the generation is read from the
        database when the signal changed (or there is none) or ``refresh_seconds``
        passed, and the list itself only when the generation moved.
        """
        now = time.monotonic()
        signal_file = self.node.generation_file
        # Read before the generation: a change committed in between changes the
        # signal again, so the next call looks.
        signal = read_signal(signal_file)
        if (
            signal is not None
            and signal == self._signal
            and now - self._read_at <= self.refresh_seconds
        ):
            return list(self._handles.values())
        if signal is None:
            write_signal(signal_file)  # a node from before the signal file
            signal = read_signal(signal_file)
        with self.node.engine.connect() as connection:
            generation = read_generation(connection)
        if generation != self._generation or now - self._read_at > self.refresh_seconds:
            # Read after the generation: the list is at least as new as it.
            with self.node.session() as session:
                rows = session.scalars(published_datasets().order_by(Dataset.id)).all()
                facts = [DatasetFacts.of(row) for row in rows]
            self._handles = {item.id: self._handle(item) for item in facts}
            self._generation = generation
            self._read_at = now
        self._signal = signal
        return list(self._handles.values())

    def _handle(self, facts: DatasetFacts) -> PublishedDataset:
        """The handle kept for ``facts``; a new one when anything about it changed
        (what it caches depends on them)."""
        kept = self._handles.get(facts.id)
        return (
            kept
            if kept is not None and kept.facts == facts
            else PublishedDataset(self.node, facts)
        )

    def get(self, dataset_id: str) -> PublishedDataset | None:
        """One published dataset, or None."""
        for handle in self.datasets():
            if handle.id == dataset_id:
                return handle
        return None

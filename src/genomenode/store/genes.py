"""Gene tables: where a gene (a Beacon ``geneId``) is on the genome.

A gene table is a tab-separated file with a header line and one gene a line::

    # comments start with '#'
    gene_id         symbol  contig  start     end
    ENSG00000012048 BRCA1   17      43044294  43125483

``start`` and ``end`` are 0-based and half-open, as in BED and in Beacon. A dataset
brings its own table (``genes:`` in dataset.yaml, published as
``datasets/<id>/genes.tsv``); the node setting ``gene_table`` serves datasets
without one. :func:`gene_table_for` finds the right table and caches it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import tempfile
import threading
from collections.abc import Iterator

from ..errors import ConfigError, InputError
from .node import Node

__all__ = [
    "GENE_TABLE_COLUMNS",
    "Gene",
    "GeneTable",
    "gene_table_for",
]

logger = logging.getLogger(__name__)

GENE_TABLE_COLUMNS = ("gene_id", "symbol", "contig", "start", "end")


@dataclasses.dataclass(frozen=True)
class Gene:
    """One gene: ids as in the table, ``contig`` without ``chr``, 0-based half-open."""

    gene_id: str
    symbol: str
    contig: str
    start: int
    end: int


def _strip_chr(contig: str) -> str:
    return contig[3:] if contig.lower().startswith("chr") else contig


class GeneTable:
    """Genes by id and by symbol.

    Parameters
    ----------
    genes
        The genes, in file order.
    path
        The file they came from, if any (for messages).
    """

    def __init__(self, genes: list[Gene], path: pathlib.Path | None = None) -> None:
        self.genes = tuple(genes)
        self.path = path
        self._by_id: dict[str, list[Gene]] = {}
        self._by_symbol: dict[str, list[Gene]] = {}
        for gene in self.genes:
            self._by_id.setdefault(gene.gene_id.upper(), []).append(gene)
            self._by_symbol.setdefault(gene.symbol.upper(), []).append(gene)

    def __len__(self) -> int:
        return len(self.genes)

    def __iter__(self) -> Iterator[Gene]:
        return iter(self.genes)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> GeneTable:
        """Read and check a gene table.

        Raises
        ------
        InputError
            Naming the file, the line and the column of the first bad row: a missing
            or wrong header, a wrong number of columns, a start or end that is not a
            non-negative integer, ``end <= start``, or a gene id given twice on one
            contig.
        """
        path = pathlib.Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"cannot read gene table: {error}", path=path) from None
        genes: list[Gene] = []
        seen: dict[tuple[str, str], int] = {}
        header_seen = False
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = [field.strip() for field in line.split("\t")]
            if not header_seen:
                if tuple(field.lower() for field in fields) != GENE_TABLE_COLUMNS:
                    raise InputError(
                        "expected the header line "
                        f"{chr(9).join(GENE_TABLE_COLUMNS)!r} (tab-separated), "
                        f"got {line!r}",
                        path=path,
                        line=number,
                    )
                header_seen = True
                continue
            genes.append(_gene(fields, path, number))
            key = (genes[-1].gene_id.upper(), genes[-1].contig)
            if key in seen:
                raise InputError(
                    f"gene {genes[-1].gene_id!r} on contig {genes[-1].contig!r} is "
                    f"also on line {seen[key]}",
                    path=path,
                    line=number,
                    field="gene_id",
                )
            seen[key] = number
        if not header_seen:
            raise InputError(
                "empty gene table: expected the header line "
                f"{chr(9).join(GENE_TABLE_COLUMNS)!r}",
                path=path,
            )
        return cls(genes, path)

    def lookup(self, name: str) -> tuple[Gene, ...]:
        """The genes a Beacon ``geneId`` names; empty if none.

        Gene ids are tried first, then symbols, both case-insensitively. A name can
        give several genes (a symbol on X and on Y in the pseudo-autosomal regions).
        """
        key = name.strip().upper()
        found = self._by_id.get(key) or self._by_symbol.get(key) or []
        return tuple(found)


def _gene(fields: list[str], path: pathlib.Path, number: int) -> Gene:
    if len(fields) != len(GENE_TABLE_COLUMNS):
        raise InputError(
            f"expected {len(GENE_TABLE_COLUMNS)} tab-separated columns "
            f"({' '.join(GENE_TABLE_COLUMNS)}), got {len(fields)}",
            path=path,
            line=number,
        )
    gene_id, symbol, contig, start_text, end_text = fields
    for column, value in (("gene_id", gene_id), ("symbol", symbol), ("contig", contig)):
        if not value:
            raise InputError("is empty", path=path, line=number, field=column)
    bounds = []
    for column, value in (("start", start_text), ("end", end_text)):
        if not value.isdigit():
            raise InputError(
                f"{value!r} is not a non-negative integer (0-based)",
                path=path,
                line=number,
                field=column,
            )
        bounds.append(int(value))
    start, end = bounds
    if end <= start:
        raise InputError(
            f"end {end} must be greater than start {start} (0-based, half-open)",
            path=path,
            line=number,
            field="end",
        )
    return Gene(gene_id, symbol, _strip_chr(contig), start, end)


# ------------------------------------------------------------------------- per node

_Stamp = tuple[int, int, int]
_LOCK = threading.Lock()
# (datasets directory, dataset id) -> (stamp of its dataset.json, its own table)
_DATASET_TABLES: dict[tuple[str, str], tuple[_Stamp, GeneTable]] = {}
# path of a node-wide table -> (stamp of the file, the table)
_NODE_TABLES: dict[str, tuple[_Stamp, GeneTable]] = {}
_WARNED: set[tuple[str, str]] = set()


def _stamp(path: pathlib.Path) -> _Stamp | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return (status.st_ino, status.st_mtime_ns, status.st_size)


def _node_table(node: Node) -> GeneTable | None:
    if not node.config.gene_table:
        return None
    path = node.config.path("gene_table")
    stamp = _stamp(path)
    if stamp is None:
        raise ConfigError(f"setting gene_table: {path} does not exist")
    with _LOCK:
        cached = _NODE_TABLES.get(str(path))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        table = GeneTable.read(path)
    except InputError as error:
        raise ConfigError(f"setting gene_table: {error}") from None
    with _LOCK:
        _NODE_TABLES[str(path)] = (stamp, table)
    return table


def _remote_gene_table(node: Node, dataset_id: str) -> GeneTable | None:
    """:func:`gene_table_for` on a node whose datasets are in an object store.

    A dataset's content never changes under its prefix (id and fingerprint), so
    its table is read once per process: fetched (a small object) into a private
    temporary file for :meth:`GeneTable.read`, which names it in its errors.
    """
    manifest = node.dataset_manifest(dataset_id)
    key = (node.objects.url, f"{dataset_id}/{manifest['fingerprint']}")
    with _LOCK:
        cached = _DATASET_TABLES.get(key)
    if cached is not None:
        return cached[1]
    genes = manifest.get("genes")
    if not genes:
        return _node_table(node)
    prefix = node.dataset_prefix(dataset_id, manifest["fingerprint"])
    data = node.objects.read(f"{prefix}/{genes['path']}")
    with tempfile.TemporaryDirectory() as scratch:
        local = pathlib.Path(scratch) / genes["path"]
        local.write_bytes(data)
        table = GeneTable.read(local)
    with _LOCK:
        _DATASET_TABLES[key] = ((0, 0, 0), table)
    return table


def gene_table_for(node: Node, dataset_id: str) -> GeneTable | None:
    """The gene table for gene queries on a published dataset, or None.

    The dataset's own table (``genes:`` in its dataset.yaml) comes first, then the
    node's ``gene_table`` setting. Tables are read once and kept while the files are
    unchanged. A dataset with neither is logged once as a warning: gene queries
    match nothing there, which is otherwise indistinguishable from "no variant".

    Raises
    ------
    NotFoundError
        If the dataset is not published.
    ConfigError
        If the ``gene_table`` setting names a missing or malformed file.
    """
    if node.remote:
        return _remote_gene_table(node, dataset_id)
    directory = node.datasets_dir / dataset_id
    key = (str(node.datasets_dir), dataset_id)
    stamp = _stamp(directory / "dataset.json")
    with _LOCK:
        cached = _DATASET_TABLES.get(key)
    if cached is not None and stamp is not None and cached[0] == stamp:
        return cached[1]
    manifest = node.dataset_manifest(dataset_id)
    genes = manifest.get("genes")
    if genes:
        table = GeneTable.read(directory / genes["path"])
        stamp = _stamp(directory / "dataset.json")
        if stamp is not None:
            with _LOCK:
                _DATASET_TABLES[key] = (stamp, table)
        return table
    node_table = _node_table(node)
    if node_table is None:
        with _LOCK:
            first = key not in _WARNED
            _WARNED.add(key)
        if first:
            logger.warning(
                "dataset %s has no gene table and the node setting gene_table is "
                "not set: geneId queries match nothing in it",
                dataset_id,
            )
    return node_table

"""Reading every call of a block of variants, fast, wherever the store is.

Whole-cohort passes (the reference build, QC, allele frequencies) read each call
once. Two arrays hold the calls (docs/store-format.md): ``call_genotype``
(variants x samples chunks, Blosc zstd with bit-shuffle: small, ~0.5 GB/s to
decode) and its copy ``call_genotype_by_variant`` (a few dozen variants x all
samples, Blosc lz4 without shuffle: ~6 times larger here, ~2 GB/s to decode).
Decoding was two thirds of a reference build, so a pass reads the copy when the
store has it, decoding its chunk files straight into the output (no zarr
indexing machinery per chunk), and falls back to ``call_genotype`` one stored
chunk of samples at a time for stores that predate the copy.

:class:`GenotypeSource` names a dataset's VCF Zarr with plain values, so a Dask
worker can open it: a local directory, or the node (its directory, for its
settings and key) and the dataset's fingerprint, for an object store or a sealed
(``encrypt_at_rest``) store, read through :meth:`Node.dataset_zarr
<genomenode.store.node.Node.dataset_zarr>`.
"""

from __future__ import annotations

import collections
import dataclasses
import pathlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import zarr

if TYPE_CHECKING:
    from .node import Node

__all__ = ["GenotypeRows", "GenotypeSource", "kept_open"]

# call_genotype's copy, chunked by variants (store/genotypes.py BY_VARIANT; not
# imported from there, whose import pulls in the query engine).
_BY_VARIANT = "call_genotype_by_variant"
# Decoded calls of one slab of the copy: slabs are whole chunks, and at least one.
_SLAB_BYTES = 32 * 2**20
# Chunk objects of a slab fetched at once from an object store (or unsealed).
_CONCURRENT_READS = 8
# Opened stores kept by kept_open (a server, a worker or a scan process works on a
# few datasets at a time).
_KEPT_OPEN = 8


@dataclasses.dataclass(frozen=True)
class GenotypeSource:
    """Where a dataset's VCF Zarr is, in plain (picklable) values.

    ``path``: a plain local directory (with the content's ``fingerprint`` when
    :meth:`of` made it, which only tells sources apart). With ``node_dir``: the
    dataset ``dataset_id`` (content ``fingerprint``, VCF Zarr ``vcz`` inside it)
    of the node at ``node_dir``, opened through its storage and key.
    """

    path: str = ""
    node_dir: str = ""
    dataset_id: str = ""
    fingerprint: str = ""
    vcz: str = ""

    @classmethod
    def of(cls, node: Node, dataset_id: str, fingerprint: str, vcz: str) -> Self:
        """The source of a published dataset: its directory when it is a plain
        local one, else the node's coordinates."""
        location, read_object = node.dataset_zarr(dataset_id, fingerprint, vcz)
        if read_object is None:
            # The fingerprint only tells sources apart (kept_open): a dataset
            # published again at the same path is another source.
            return cls(path=str(location), fingerprint=fingerprint)
        return cls(
            node_dir=str(node.config.node_dir),
            dataset_id=dataset_id,
            fingerprint=fingerprint,
            vcz=vcz,
        )

    def open(self) -> GenotypeRows:
        """The store, opened for reading (here or on a worker)."""
        if not self.node_dir:
            return GenotypeRows(zarr.open_group(self.path, mode="r"), None, self.path)
        from ..config import load_config
        from .node import Node

        node = Node(load_config(self.node_dir))
        location, read_object = node.dataset_zarr(
            self.dataset_id, self.fingerprint, self.vcz
        )
        if read_object is None:  # the node says it is local and plain after all
            return GenotypeRows(zarr.open_group(location, mode="r"), None, location)
        return GenotypeRows(zarr.open_group(location, mode="r"), read_object, None)


_kept: collections.OrderedDict[GenotypeSource, GenotypeRows] = collections.OrderedDict()
_kept_lock = threading.Lock()


def kept_open(source: GenotypeSource) -> GenotypeRows:
    """``source.open()``, kept for the next call in this process (the last
    :data:`_KEPT_OPEN` sources; a server's threads, a Dask worker's tasks and a
    scan process share them).

    Opening reads the group's and three arrays' metadata: ~5 ms of CPU, more
    than counting every call of a 1,000-sample cohort. A source names content
    (:meth:`GenotypeSource.of` puts the fingerprint in), so a dataset published
    again at the same path is opened afresh.
    """
    with _kept_lock:
        rows = _kept.get(source)
        if rows is not None:
            _kept.move_to_end(source)
            return rows
    rows = source.open()
    with _kept_lock:
        _kept[source] = rows
        while len(_kept) > _KEPT_OPEN:
            _kept.popitem(last=False)
    return rows


class GenotypeRows:
    """An opened VCF Zarr: its group (``root``) and block reads of its calls."""

    def __init__(
        self,
        root: Any,
        read_object: Callable[[str], bytes | None] | None,
        directory: str | pathlib.Path | None,
    ) -> None:
        self.root = root
        self._read_object = read_object
        self._directory = pathlib.Path(directory) if directory is not None else None
        call_genotype = root["call_genotype"]
        num_variants, num_samples, ploidy = call_genotype.shape
        self.shape: tuple[int, int, int] = (num_variants, num_samples, ploidy)
        self.chunks: tuple[int, ...] = tuple(call_genotype.chunks)
        #: Alleles of the store (``variant_allele``'s width).
        self.num_alleles = int(root["variant_allele"].shape[1])
        self._copy = root.get(_BY_VARIANT)
        if self._copy is not None and not _plain_chunks(self._copy):
            self._copy = None  # a layout this reader does not decode itself

    @property
    def reads_copy(self) -> bool:
        """Whether blocks come from ``call_genotype_by_variant``."""
        return self._copy is not None

    def _chunk_bytes(self, key: str) -> bytes | None:
        name = f"{_BY_VARIANT}/{key}"
        if self._read_object is not None:
            return self._read_object(name)
        assert self._directory is not None
        try:
            return (self._directory / name).read_bytes()
        except FileNotFoundError:
            return None

    def _read_copy(self, start: int, stop: int) -> np.ndarray:
        """Calls of rows ``start:stop`` (all samples) from the copy's chunk files."""
        copy = self._copy
        length = int(copy.chunks[0])
        inner = tuple(int(value) for value in copy.shape[1:])
        codec = copy.metadata.compressor
        separator = copy.metadata.dimension_separator
        out = np.empty((stop - start, *inner), dtype=np.int8)
        indices = range(start // length, (stop - 1) // length + 1)
        keys = [separator.join([str(index), "0", "0"]) for index in indices]
        if self._read_object is None:
            found: Iterator[bytes | None] = map(self._chunk_bytes, keys)
        else:
            # An object store answers each GET in milliseconds: ask for a slab's
            # chunks together rather than one after another.
            with ThreadPoolExecutor(max_workers=_CONCURRENT_READS) as pool:
                found = iter(list(pool.map(self._chunk_bytes, keys)))
        for index, data in zip(indices, found, strict=True):
            first, last = index * length, (index + 1) * length
            target = out[max(first, start) - start : min(last, stop) - start]
            if data is None:
                target[...] = -1  # the copy's fill value: a chunk of missing calls
            elif first >= start and last <= stop:
                codec.decode(data, out=target)
            else:  # an edge of the block: decode whole, keep the part inside
                chunk = np.frombuffer(codec.decode(data), dtype=np.int8)
                chunk = chunk.reshape(length, *inner)
                target[...] = chunk[max(first, start) - first : min(last, stop) - first]
        return out

    def blocks(
        self, start: int, stop: int, *, samples_needed: np.ndarray | None = None
    ) -> Iterator[tuple[int, slice, np.ndarray]]:
        """Calls of rows ``start:stop`` as ``(first row, samples, calls)`` pieces.

        From the copy: slabs of whole chunks of all samples (about
        ``_SLAB_BYTES``). Else stored chunks of ``call_genotype`` one sample chunk
        at a time, skipping sample chunks where ``samples_needed`` (bool per
        sample) is all False. The next piece is decoded in a thread (decoders
        release the GIL) while the caller works on this one.
        """
        num_samples, ploidy = self.shape[1], self.shape[2]
        pieces: list[tuple[int, slice, Callable[[], np.ndarray]]] = []
        if self._copy is not None:
            length = int(self._copy.chunks[0])
            row_bytes = max(1, num_samples * ploidy)
            rows = max(length, _SLAB_BYTES // row_bytes // length * length)
            # Slabs start on chunk boundaries so that only block edges are split.
            first = start
            while first < stop:
                last = min(stop, (first // length) * length + rows)
                pieces.append(
                    (
                        first,
                        slice(0, num_samples),
                        _bind(self._read_copy, first, last),
                    )
                )
                first = last
        else:
            call_genotype = self.root["call_genotype"]
            step = int(self.chunks[1])
            for column in range(0, num_samples, step):
                samples = slice(column, min(column + step, num_samples))
                if samples_needed is not None and not samples_needed[samples].any():
                    continue
                pieces.append(
                    (
                        start,
                        samples,
                        _bind(_zarr_read, call_genotype, slice(start, stop), samples),
                    )
                )
        if not pieces:
            return
        if len(pieces) == 1:  # nothing to overlap with: no thread
            first, samples, read = pieces[0]
            yield first, samples, read()
            return
        with ThreadPoolExecutor(max_workers=1) as reader:
            upcoming = reader.submit(pieces[0][2])
            for index, (first, samples, _read) in enumerate(pieces):
                calls = upcoming.result()
                if index + 1 < len(pieces):
                    upcoming = reader.submit(pieces[index + 1][2])
                yield first, samples, calls


def _bind(function: Callable[..., np.ndarray], *args: Any) -> Callable[[], np.ndarray]:
    return lambda: function(*args)


def _zarr_read(array: Any, rows: slice, samples: slice) -> np.ndarray:
    return np.asarray(array[rows, samples])


def _plain_chunks(array: Any) -> bool:
    """Whether the array's chunks are Zarr v2 objects of compressed C-order bytes
    (chunked by variants only), so that they can be decoded without zarr."""
    metadata = array.metadata
    return (
        getattr(metadata, "zarr_format", None) == 2
        and not metadata.filters
        and metadata.order == "C"
        and metadata.compressor is not None
        and tuple(array.chunks[1:]) == tuple(array.shape[1:])
    )

"""VCF → VCF Zarr with bio2zarr, in resumable partitions, plus per-variant statistics.

bio2zarr converts in two phases, each init → partitions → finalise: *explode* parses
the VCF into its intermediate columnar format (ICF), *encode* writes the Zarr arrays.
Partitions are resumable on their own: a finished explode partition leaves
``wip/p<i>.json``, a finished encode partition ``wip/partitions/p<i>``; the finalise
of encode resumes where a killed run left it (:func:`_finalise`).

When the VCF's FORMAT fields allow (:func:`calls.direct_fields`), the ICF holds only
the per-variant fields and each encode partition writes the ``call_*`` arrays
straight from the VCF (:mod:`.calls`): the same store, without the per-sample
round trip through the ICF. ``DIRECT_CALLS = False`` converts with bio2zarr alone.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import shutil
from collections.abc import Callable
from typing import Any

import numcodecs
from bio2zarr import vcf as bio2zarr_vcf
from bio2zarr import vcz as bio2zarr_vcz

from ..errors import Stopped, VcfError
from ..store.genotypes import (
    create_genotypes_by_variant,
    statistics_for_rows,
    write_statistics,
)
from ..store.objects import write_text_atomic
from . import calls, sites
from .workers import Reporter, checkpoint, run_tasks

__all__ = ["encode", "explode", "statistics"]

logger = logging.getLogger(__name__)

# Write the call arrays straight from the VCF when the file allows (module
# docstring); False: bio2zarr's explode and encode for everything (the tests
# compare the two stores).
DIRECT_CALLS = True


def _bio2zarr_error(vcf: pathlib.Path, error: Exception) -> VcfError:
    return VcfError(f"cannot convert: {type(error).__name__}: {error}", path=vcf)


# The intermediate format lives only until encode has read it: compress it fast.
# bio2zarr's default (zstd level 7) spends more time compressing than parsing;
# zstd level 1 still spent ~12 s of CPU compressing and ~8 s decompressing the
# pickled calls of 20,000 samples x 10,918 variants, lz4 a quarter of that for an
# intermediate ~1.5 times larger (docs/benchmarks.md, "Ingest, 2026-12-03").
_ICF_COMPRESSOR = numcodecs.Blosc(
    cname="lz4", clevel=5, shuffle=numcodecs.Blosc.NOSHUFFLE
)


# Per-sample FORMAT fields (DP, GQ, AD...) are most of a cohort's bytes and, unlike
# genotypes, nearly incompressible: bio2zarr's default (zstd level 7) encodes them at
# 6-11 MB/s for a ratio zstd level 1 matches at 200-500 MB/s (docs/benchmarks.md,
# "Ingest, 2026-12-03"). Genotypes and flags keep bit-shuffle, one level lower
# than bio2zarr's 7: twice as fast, 3 % larger.
_CALL_FIELD_COMPRESSOR = {
    "id": "blosc",
    "cname": "zstd",
    "clevel": 1,
    "shuffle": numcodecs.Blosc.SHUFFLE,
    "blocksize": 0,
}
_CALL_GENOTYPE_COMPRESSOR = {
    "id": "blosc",
    "cname": "zstd",
    "clevel": 5,
    "shuffle": numcodecs.Blosc.BITSHUFFLE,
    "blocksize": 0,
}


def _fast_call_compressors(schema: Any) -> None:
    """Give the per-sample arrays of ``schema`` the compressors above."""
    fields = []
    for field in schema.fields:
        if field.name.startswith("call_genotype"):
            field = dataclasses.replace(
                field, compressor=dict(_CALL_GENOTYPE_COMPRESSOR)
            )
        elif field.name.startswith("call_"):
            field = dataclasses.replace(field, compressor=dict(_CALL_FIELD_COMPRESSOR))
        fields.append(field)
    schema.fields = fields


def _num_partitions(worker_processes: int, cluster: Any = None) -> int:
    """Partitions to cut a VCF into: four per worker (slots to balance uneven
    partitions), at least four even in-process (each is a unit of resumable
    work). On a Dask cluster, four per worker thread of the cluster as it is
    when the step starts, not per local ``worker_processes``: a cluster of 64
    workers was given 8 partitions."""
    if cluster is not None:
        threads = sum(cluster.nthreads().values())
        return max(4, threads * 4)
    return max(4, worker_processes * 4)


def _bio2zarr_encode_partition(vcz: pathlib.Path, index: int) -> None:
    """bio2zarr's encode partition, writing every chunk (calls.writing_every_chunk)."""
    with calls.writing_every_chunk():
        bio2zarr_vcf.encode_partition(vcz, index)


def _then_checkpoint(advance: Callable[[], None], name: str) -> Callable[[], None]:
    def advance_and_check() -> None:
        advance()
        checkpoint(name)

    return advance_and_check


def _run_partitions(
    title: str,
    function: Callable[[pathlib.Path, int], None],
    path: pathlib.Path,
    num_partitions: int,
    finished: Callable[[int], bool],
    *,
    checkpoint_name: str,
    source: pathlib.Path,
    worker_processes: int,
    reporter: Reporter,
    cluster: Any = None,
) -> None:
    """Run the partitions a killed run did not finish; errors name ``source``."""
    pending = [(path, index) for index in range(num_partitions) if not finished(index)]
    with reporter.step(title, num_partitions) as advance:
        for _ in range(num_partitions - len(pending)):
            advance()
        try:
            run_tasks(
                function,
                pending,
                worker_processes=worker_processes,
                advance=_then_checkpoint(advance, checkpoint_name),
                cluster=cluster,
            )
        except (calls.Unsupported, Stopped):
            raise
        # cyvcf2 raises a bare Exception on records htslib cannot parse.
        except Exception as error:
            raise _bio2zarr_error(source, error) from None


def _written_whole(path: pathlib.Path) -> bool:
    """Whether a JSON file bio2zarr writes in place is there and whole: a SIGKILL
    in the write leaves it empty or cut short, and then its step is not done.
    Explode's partition summaries (``wip/p<i>.json``) and ``explode_init``'s
    ``wip/metadata.json`` are written so (a kill from the thread beside the
    conversion found the second)."""
    try:
        json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return False
    return True


def _fallback_marker(icf: pathlib.Path) -> pathlib.Path:
    """Beside the ICF when the direct writer gave up on the file: the VCF to
    explode again, with bio2zarr alone."""
    return icf.with_name("calls-fallback.json")


def explode(
    vcf: pathlib.Path,
    icf: pathlib.Path,
    *,
    source: pathlib.Path,
    worker_processes: int,
    reporter: Reporter,
    cluster: Any = None,
) -> None:
    """VCF → ICF, skipping partitions a killed run already finished.

    ``vcf`` is the file to read (perhaps a link beside a fresh index), ``source``
    the operator's file that errors name. The ICF leaves out the FORMAT fields
    when encode can write them from the VCF (module docstring).
    """
    if (icf / "metadata.json").exists() and not (icf / "wip").exists():
        return
    if not _written_whole(icf / "wip" / "metadata.json"):
        shutil.rmtree(icf, ignore_errors=True)
        try:
            bio2zarr_vcf.explode_init(
                icf,
                [vcf],
                target_num_partitions=_num_partitions(worker_processes, cluster),
                worker_processes=0,
                compressor=_ICF_COMPRESSOR,
            )
        except (ValueError, OSError) as error:
            shutil.rmtree(icf, ignore_errors=True)
            raise _bio2zarr_error(source, error) from None
        if DIRECT_CALLS and not _fallback_marker(icf).exists():
            calls.strip_calls(icf)
    elif (icf / calls.CALL_FIELDS).exists():
        # A run killed while taking the FORMAT fields out: finish it.
        calls.strip_calls(icf)
    direct = (icf / calls.CALL_FIELDS).exists()
    num_partitions = len(
        json.loads((icf / "wip" / "metadata.json").read_text())["partitions"]
    )
    _run_partitions(
        "Parse VCF",
        sites.explode_partition if direct else bio2zarr_vcf.explode_partition,
        icf,
        num_partitions,
        lambda index: _written_whole(icf / "wip" / f"p{index}.json"),
        checkpoint_name="explode:partition",
        source=source,
        worker_processes=worker_processes,
        reporter=reporter,
        cluster=cluster,
    )
    try:
        bio2zarr_vcf.explode_finalise(icf)
    except (ValueError, OSError, AssertionError) as error:
        # bio2zarr asserts on partitions that overlap: records out of order.
        raise _bio2zarr_error(source, error) from None


def _schema(
    store: Any,
    *,
    variants_chunk_size: int,
    samples_chunk_size: int,
    drop_info_fields: tuple[str, ...],
) -> Any:
    """bio2zarr's schema for the ICF ``store``, less the named INFO fields, with
    the fast codecs for the call arrays."""
    schema = store.generate_schema(
        variants_chunk_size=variants_chunk_size,
        samples_chunk_size=samples_chunk_size,
    )
    dropped = {f"variant_{name}" for name in drop_info_fields}
    schema.fields = [field for field in schema.fields if field.name not in dropped]
    _fast_call_compressors(schema)
    return schema


def encode(
    vcf: pathlib.Path,
    icf: pathlib.Path,
    vcz: pathlib.Path,
    *,
    variants_chunk_size: int,
    samples_chunk_size: int,
    drop_info_fields: tuple[str, ...],
    worker_processes: int,
    reporter: Reporter,
    sites_only: bool = False,
    cluster: Any = None,
) -> None:
    """ICF → VCF Zarr at ``vcz``; leaves out the named INFO fields."""
    fallback = _fallback_marker(icf)
    if fallback.exists() and (
        not (icf / "metadata.json").exists() or (icf / "wip").exists()
    ):
        # Killed while exploding again for bio2zarr alone: finish that first.
        explode(
            pathlib.Path(json.loads(fallback.read_text())["vcf"]),
            icf,
            source=vcf,
            worker_processes=worker_processes,
            reporter=reporter,
            cluster=cluster,
        )
    last_array = "variant_position" if sites_only else "call_genotype"
    marker = vcz / "wip" / "metadata.json"
    if vcz.exists() and not marker.exists():
        # Either a finished encode, or one killed inside its finalise; only the
        # former has every array in place and no wip directory.
        if (vcz / last_array).exists() and not (vcz / "wip").exists():
            return
        shutil.rmtree(vcz)
    direct = (icf / calls.CALL_FIELDS).exists()

    def make_schema(store: Any) -> Any:
        return _schema(
            store,
            variants_chunk_size=variants_chunk_size,
            samples_chunk_size=samples_chunk_size,
            drop_info_fields=drop_info_fields,
        )

    if not vcz.exists():
        if drop_info_fields:
            logger.warning(
                "leaving out INFO fields with Number=G (not supported by the "
                "converter): %s",
                ", ".join(sorted(drop_info_fields)),
            )
        store = (
            calls.icf_with_calls(icf)
            if direct
            else bio2zarr_vcf.IntermediateColumnarFormat(icf)
        )
        schema_path = icf.with_name("schema.json")
        schema_path.write_text(make_schema(store).asjson())
        try:
            bio2zarr_vcf.encode_init(
                icf,
                vcz,
                _num_partitions(worker_processes, cluster),
                schema_path=schema_path,
            )
        except (ValueError, OSError) as error:
            shutil.rmtree(vcz, ignore_errors=True)
            raise _bio2zarr_error(vcf, error) from None
    writer = bio2zarr_vcz.VcfZarrWriter(bio2zarr_vcf.IntermediateColumnarFormat, vcz)
    writer.load_metadata()

    def encode_partitions() -> None:
        _run_partitions(
            "Write genotypes",
            calls.encode_partition if direct else _bio2zarr_encode_partition,
            vcz,
            writer.num_partitions,
            lambda index: writer.partition_path(index).exists(),
            checkpoint_name="encode:partition",
            source=vcf,
            worker_processes=worker_processes,
            reporter=reporter,
            cluster=cluster,
        )

    try:
        encode_partitions()
        # The call arrays' dtypes and shapes for the whole file are known only
        # now: partitions written otherwise are encoded again (calls.settle).
        # Once is enough: those then start from the final schema.
        settle_rounds = 0
        while direct and calls.settle(writer, make_schema):
            settle_rounds += 1
            if settle_rounds > 2:
                raise RuntimeError(f"the call arrays of {vcf} do not settle")
            encode_partitions()
    except calls.Unsupported as reason:
        logger.warning(
            "converting %s with bio2zarr alone: the direct call writer does not "
            "support %s",
            vcf,
            reason,
        )
        metadata = json.loads((icf / "metadata.json").read_text())
        write_text_atomic(
            fallback, json.dumps({"vcf": metadata["partitions"][0]["vcf_path"]})
        )
        shutil.rmtree(vcz)
        shutil.rmtree(icf)
        encode(
            vcf,
            icf,
            vcz,
            variants_chunk_size=variants_chunk_size,
            samples_chunk_size=samples_chunk_size,
            drop_info_fields=drop_info_fields,
            worker_processes=worker_processes,
            reporter=reporter,
            sites_only=sites_only,
            cluster=cluster,
        )
        return
    _finalise(writer)


def _finalise(writer: Any) -> None:
    """bio2zarr's ``encode_finalise``, resumable: an ingest killed inside it has
    moved some arrays into place already (bio2zarr would then refuse with "Array
    ... already exists"); those are kept, the others finalised (moving chunks is
    a rename per file, so a half-moved array finishes moving), then the work
    directory goes."""
    missing = [
        partition
        for partition in range(writer.num_partitions)
        if not writer.partition_path(partition).exists()
    ]
    if missing:
        raise FileNotFoundError(f"partitions not encoded: {missing}")
    for field in writer.schema.fields:
        if not (writer.path / field.name).exists():
            writer.finalise_array(field.name)
            checkpoint("encode:finalise-array")
    shutil.rmtree(writer.wip_path)


def statistics(
    vcz: pathlib.Path,
    *,
    num_variants: int,
    variants_chunk_size: int,
    worker_processes: int,
    reporter: Reporter,
    cluster: Any = None,
) -> None:
    """Compute and store per-variant allele and genotype counts.

    The same pass over ``call_genotype`` writes ``call_genotype_by_variant``: each
    task owns one block of ``variants_chunk_size`` rows, whole chunks of the copy,
    so tasks in concurrent workers never write the same chunk. A rerun (after a
    kill) starts from an empty copy and so writes the same chunks.
    """
    create_genotypes_by_variant(vcz, variants_chunk_size)
    starts = list(range(0, num_variants, variants_chunk_size))
    arguments = [
        (str(vcz), start, min(start + variants_chunk_size, num_variants))
        for start in starts
    ]
    with reporter.step("Count genotypes", len(arguments)) as advance:
        results = run_tasks(
            statistics_for_rows,
            arguments,
            worker_processes=worker_processes,
            advance=advance,
            cluster=cluster,
        )
    write_statistics(vcz, list(zip(starts, results, strict=True)))

"""A QC task holds one stored chunk of calls and a few numbers per sample,
never the cohort: its peak memory (tracemalloc, every numpy buffer) at 32,000
samples stays near its peak at 16,000.

The variant task's largest temporary is the HWE exact test's batch (at most
~2 million terms, ~130 MB), which a cohort of a few thousand samples fills:
constant beyond, as the sample counts here show.

(The whole run's peak RSS at two cohort sizes is measured by
``python bench/qc.py --memory``: docs/qc.md "Memory and time".)
"""

from __future__ import annotations

import pathlib
import tracemalloc

import numpy as np
import pytest
import zarr

from genomenode.qc.samples import AUTOSOME, sample_block
from genomenode.qc.settings import QcSettings
from genomenode.qc.variants import variant_block

_ROWS = 1_000
_SAMPLE_CHUNK = 500


def _store(path: pathlib.Path, num_samples: int) -> tuple[object, int]:
    """A VCF Zarr of 1,000 biallelic SNPs × ``num_samples`` in chunks of
    1,000 × 500, with DP and GQ; and the bytes of its calls."""
    rng = np.random.default_rng(num_samples)
    root = zarr.open_group(path, mode="w")
    calls = rng.integers(-1, 2, (_ROWS, num_samples, 2), np.int8)
    root.create_array("call_genotype", data=calls, chunks=(_ROWS, _SAMPLE_CHUNK, 2))
    for name in ("call_DP", "call_GQ"):
        values = rng.integers(0, 60, (_ROWS, num_samples), np.int8)
        root.create_array(name, data=values, chunks=(_ROWS, _SAMPLE_CHUNK))
    alleles = np.array([["A", "G"]] * _ROWS, dtype=str)
    root.create_array("variant_allele", data=alleles)
    alternate = (calls == 1).sum(axis=(1, 2))
    called = (calls >= 0).sum(axis=(1, 2))
    root.create_array(
        "variant_allele_count",
        data=np.stack([called - alternate, alternate], axis=1).astype(np.int32),
    )
    root.create_array("variant_allele_total", data=called.astype(np.int32))
    return root, calls.nbytes


def _peaks(path: pathlib.Path, num_samples: int) -> tuple[int, int, int]:
    """Peak bytes of one sample-pass task and one variant-pass task over the
    store's 1,000 rows; and the bytes of its calls."""
    root, calls_bytes = _store(path, num_samples)
    kinds = np.full(_ROWS, AUTOSOME, dtype=np.int8)
    common = np.arange(0, _ROWS, 10)  # 100 common rows
    passing = np.ones(num_samples, dtype=bool)
    cells = np.zeros(num_samples, dtype=np.int64)
    tracemalloc.start()
    sample_part = sample_block(root, 0, _ROWS, kinds, common)
    _, sample_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    variant_part = variant_block(root, 0, _ROWS, kinds, passing, cells, 1, QcSettings())
    _, variant_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # The tasks did their work (each sample's calls and each row's are counted).
    called = np.asarray(root["call_genotype"][:]) >= 0
    assert sample_part["totals"]["num_called"].sum() == called.any(axis=2).sum()
    assert sample_part["dosages"].shape == (len(common), num_samples)
    assert np.isfinite(variant_part["call_rate"]).all()
    return sample_peak, variant_peak, calls_bytes


@pytest.mark.slow
def test_a_qc_task_holds_one_stored_chunk_not_the_cohort(tmp_path):
    small_sample, small_variant, _ = _peaks(tmp_path / "small.vcz", 16_000)
    large_sample, large_variant, calls = _peaks(tmp_path / "large.vcz", 32_000)
    # Twice the samples: the per-sample numbers (~200 bytes a sample) and the
    # common rows' dosages grow, the chunk's temporaries do not.
    assert large_sample < 1.5 * small_sample, (small_sample, large_sample)
    assert large_variant < 1.2 * small_variant, (small_variant, large_variant)
    assert large_sample < calls / 2, (large_sample, calls)

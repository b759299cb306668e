"""The allele-frequency pass's counting kernel against its obvious twin."""

from __future__ import annotations

import numpy as np
import pytest

from genomenode.store.compute import allele_count_rows


@pytest.mark.parametrize("shape", [(50, 300, 2), (7, 13, 1), (3, 1, 2), (4, 9, 2)])
def test_allele_count_rows_equals_summing_the_tests(shape):
    rng = np.random.default_rng(sum(shape))
    # Multi-allelic calls, missing (-1) and fill (-2) included.
    calls = rng.integers(-2, 4, size=shape).astype(np.int8)
    alternate, called = allele_count_rows(calls)
    assert alternate.tolist() == (calls > 0).sum(axis=(1, 2)).tolist()
    assert called.tolist() == (calls >= 0).sum(axis=(1, 2)).tolist()
    assert called.sum() > alternate.sum() > 0

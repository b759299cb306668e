"""Keyed noise: the same question gets the same draw; the draws over many
questions follow the mechanism's distribution; the key file is private."""

from __future__ import annotations

import math
import os
import stat

import pytest

from genomenode.config import Secret
from genomenode.disclosure.noise import NoiseKey, laplace, uniform
from genomenode.errors import ConfigError

KEY = NoiseKey(Secret("ab" * 32))


def _kolmogorov_p(statistic: float, n: int) -> float:
    """P(D > statistic) for the one-sample KS statistic (asymptotic)."""
    x = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * statistic
    return max(
        0.0,
        min(
            1.0,
            2
            * sum(
                (-1) ** (k - 1) * math.exp(-2 * k * k * x * x) for k in range(1, 101)
            ),
        ),
    )


def _laplace_cdf(x: float, scale: float) -> float:
    if x < 0:
        return 0.5 * math.exp(x / scale)
    return 1 - 0.5 * math.exp(-x / scale)


def test_the_same_question_gets_the_same_draw():
    assert laplace(KEY, "q", 2.0) == laplace(KEY, "q", 2.0)
    assert laplace(KEY, "q", 2.0) != laplace(KEY, "q2", 2.0)
    assert laplace(KEY, "q", 2.0, "count") != laplace(KEY, "q", 2.0, "boolean")
    other = NoiseKey(Secret("cd" * 32))
    assert laplace(KEY, "q", 2.0) != laplace(other, "q", 2.0)


def test_draws_over_many_questions_are_laplace():
    scale = 2.0
    draws = sorted(laplace(KEY, f"question {i}", scale) for i in range(20_000))
    n = len(draws)
    statistic = max(
        max((i + 1) / n - _laplace_cdf(x, scale), _laplace_cdf(x, scale) - i / n)
        for i, x in enumerate(draws)
    )
    assert _kolmogorov_p(statistic, n) > 0.01, statistic
    mean = sum(draws) / n
    variance = sum((x - mean) ** 2 for x in draws) / n
    assert abs(mean) < 0.1
    assert abs(variance - 2 * scale**2) < 0.1 * 2 * scale**2


def test_uniform_draws_are_uniform():
    draws = [uniform(KEY, f"u{i}") for i in range(20_000)]
    assert all(0 < x < 1 for x in draws)
    assert abs(sum(draws) / len(draws) - 0.5) < 0.01


def test_the_key_file_is_created_private_once(tmp_path):
    path = tmp_path / "keys" / "disclosure.key"
    first = NoiseKey.load_or_create(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = NoiseKey.load_or_create(path)
    assert laplace(first, "q", 1.0) == laplace(again, "q", 1.0)
    assert "ab" not in repr(KEY) and "*" in repr(KEY)


@pytest.mark.parametrize("text", ["", "not hex", "ab" * 8])
def test_a_bad_key_file_is_a_config_error(tmp_path, text):
    path = tmp_path / "disclosure.key"
    path.write_text(text)
    with pytest.raises(ConfigError):
        NoiseKey.load_or_create(path)

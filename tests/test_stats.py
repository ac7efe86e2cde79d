"""Paired statistics against hand-computed values."""

import math

import pytest

from grpo_lab import stats


def test_t_quantiles_match_the_tables():
    for df, expected in [(1, 12.7062), (2, 4.3027), (4, 2.7764), (7, 2.3646), (30, 2.0423), (1000, 1.9623)]:
        assert stats.t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)


def test_exact_sign_flip_p_by_hand():
    # all five differences negative: only the all-minus and all-plus patterns are as extreme -> 2/32
    assert stats.sign_flip_p([-1.5, -1.0, -1.0, -1.0, -1.5]) == (2 / 32, True)
    # [1, 2, -3]: sums over the 8 sign patterns are 0, 6, -2, 4, -4, 2, -6, 0; |sum| >= 0 for all -> 1
    assert stats.sign_flip_p([1, 2, -3]) == (1.0, True)
    # [3, 1, 1]: observed 5; patterns with |sum| >= 5: (+,+,+) and (-,-,-) -> 2/8
    assert stats.sign_flip_p([3, 1, 1]) == (0.25, True)
    # [4, 1, -1]: observed 4; |sums|: 4, 6, 2, 4, 4, 2, 6, 4 -> six of eight
    assert stats.sign_flip_p([4, 1, -1]) == (0.75, True)


def test_paired_summary_by_hand():
    diffs = [0.02, 0.04, 0.01, 0.03]
    result = stats.paired(diffs)
    assert result.n == 4 and result.mean == pytest.approx(0.025)
    sd = math.sqrt(sum((d - 0.025) ** 2 for d in diffs) / 3)
    assert result.sd == pytest.approx(sd)
    half = 3.182446 * sd / 2  # t(0.975, 3) = 3.1824
    assert result.ci_low == pytest.approx(0.025 - half, abs=1e-6) and result.ci_high == pytest.approx(0.025 + half)
    assert result.p == pytest.approx(2 / 16) and result.min_p == pytest.approx(0.125) and result.too_small


def test_how_many_pairs_a_significant_result_needs():
    assert stats.min_sign_flip_p(5) == 0.0625 and stats.paired([1.0] * 5).too_small
    assert stats.min_sign_flip_p(6) == pytest.approx(0.03125) and not stats.paired([1.0] * 6).too_small
    assert stats.min_sign_flip_p(8) < 0.01


def test_holm_by_hand():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert stats.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # 2 x 0.8 capped at 1, then kept monotone
    assert stats.holm([0.04, 0.3]) == pytest.approx([0.08, 0.3])


def test_many_pairs_are_sampled_and_say_so():
    p, exact = stats.sign_flip_p([1.0] * 20)
    assert not exact and p < 1e-4

"""Paired statistics against hand-computed values."""

import math
import random

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


@pytest.mark.parametrize("x", [0.05, 0.3, 0.5, 0.7, 0.95])
def test_the_incomplete_beta_function_matches_closed_forms(x):
    betainc = stats._betainc
    assert betainc(1, 1, x) == pytest.approx(x, abs=1e-12)
    assert betainc(3, 1, x) == pytest.approx(x**3, abs=1e-12)
    assert betainc(1, 4, x) == pytest.approx(1 - (1 - x) ** 4, abs=1e-12)
    assert betainc(2.5, 0.5, x) == pytest.approx(1 - betainc(0.5, 2.5, 1 - x), abs=1e-12)
    # I_x(2, 3): the chance of at least 2 successes in 4 trials of chance x
    assert betainc(2, 3, x) == pytest.approx(6 * x**2 * (1 - x) ** 2 + 4 * x**3 * (1 - x) + x**4, abs=1e-12)


def test_the_incomplete_beta_function_at_and_beyond_its_ends():
    for a, b in ((0.5, 0.5), (2.0, 3.0)):
        assert stats._betainc(a, b, 0.0) == 0.0 and stats._betainc(a, b, -0.5) == 0.0
        assert stats._betainc(a, b, 1.0) == 1.0 and stats._betainc(a, b, 1.5) == 1.0
        assert stats._betainc(a, a, 0.5) == pytest.approx(0.5, abs=1e-12)


def test_the_t_distribution_at_more_points_of_its_table():
    assert stats.t_cdf(0.0, 5) == 0.5
    assert stats.t_cdf(2.015048, 5) == pytest.approx(0.95, abs=1e-6)
    assert stats.t_cdf(1.0, 1) == pytest.approx(0.75, abs=1e-12)  # Cauchy: 1/2 + atan(1)/pi
    for q, df, expected in [(0.95, 5, 2.0150), (0.995, 10, 3.1693), (0.9, 3, 1.6377), (0.975, 2, 4.3027),
                            (0.6, 5, 0.2672), (0.75, 1, 1.0)]:  # fmt: skip
        assert stats.t_quantile(q, df) == pytest.approx(expected, abs=1e-4)


def test_one_and_two_pairs():
    one = stats.paired([0.5])
    assert (one.n, one.mean, one.sd, one.ci_low, one.ci_high, one.p, one.min_p) == (1, 0.5, None, None, None, 1.0, 1.0)
    assert one.too_small and one.exact
    two = stats.paired([1.0, 3.0])
    assert two.sd == pytest.approx(math.sqrt(2))
    assert two.ci_low == pytest.approx(2 - 12.7062 * 1, abs=1e-3) and two.ci_high == pytest.approx(
        2 + 12.7062, abs=1e-3
    )
    with pytest.raises(ValueError, match="^no pairs$"):
        stats.paired([])
    assert (stats.min_sign_flip_p(0), stats.min_sign_flip_p(1), stats.min_sign_flip_p(2)) == (1.0, 1.0, 0.5)


def test_ties_within_the_floating_point_tolerance_count_as_extreme():
    # |sums| 2.6e-9 (twice) and 1.4e-9 (twice): the tolerance is 1e-9 for differences this small, so only the
    # two extreme patterns count
    assert stats.sign_flip_p([2e-9, 0.6e-9]) == (0.5, True)
    assert stats.sign_flip_p([1.0, 1.0]) == (0.5, True)  # exact ties with the observed sum count
    # on larger differences the tolerance grows with them: 3 ± 1e-9 are the same sum, so all four patterns count
    assert stats.sign_flip_p([3.0, 1e-9]) == (1.0, True)


def test_exact_up_to_sixteen_pairs_sampled_beyond_reproducibly():
    assert stats.sign_flip_p([1.0] * 16) == (2 / 2**16, True)
    sampled = stats.sign_flip_p([1.0] * 17)
    assert sampled == ((6 + 1) / (stats.MONTE_CARLO + 1), False)  # 6 of 200,000 patterns all one sign, seed 0
    assert stats.sign_flip_p([1.0] * 17) == sampled  # the same every time
    mixed = [1.0, -0.5, 0.25, 2.0, -1.5, 0.75, 1.25, -0.25, 0.5, 1.0, -2.0, 0.3, 0.7, -0.9, 1.1, 0.2, -0.4]
    assert stats.sign_flip_p(mixed)[0] == pytest.approx(0.42706286468567656, abs=1e-12)


# --- power -----------------------------------------------------------------------------------------------------------


def _holm_power(effect: float, n: int, arms: int, alpha: float, reps: int, seed: int) -> float:
    """The share of simulated sweeps in which Holm over ``arms`` arms (one with the effect, the others null)
    confirms the arm with the effect: the production sign-flip p-values and Holm, nothing shared with stats.power."""
    rng = random.Random(seed)
    hits = 0
    for _ in range(reps):
        pvalues = []
        for arm in range(arms):
            diffs = [rng.gauss(effect if arm == 0 else 0.0, 1.0) for _ in range(n)]
            pvalues.append(stats.sign_flip_p(diffs)[0])
        hits += stats.holm(pvalues)[0] < alpha
    return hits / reps


@pytest.mark.slow
@pytest.mark.parametrize(("n", "arms"), [(6, 1), (8, 3), (8, 6), (10, 2)])
def test_the_minimum_detectable_effect_is_what_a_simulated_sweep_detects_80_percent_of_the_time(n, arms):
    effect = stats.mde(n, arms, 0.05)
    assert effect is not None
    at = _holm_power(effect, n, arms, 0.05, reps=1500, seed=n * 100 + arms)
    below = _holm_power(0.7 * effect, n, arms, 0.05, reps=1500, seed=n * 100 + arms + 1)
    assert 0.76 <= at <= 0.87, at  # Holm is at least as strong as the alpha / arms floor the MDE is computed at
    assert below < 0.7, below


def test_seeds_that_cannot_reach_the_significance_at_all_have_no_mde():
    # 5 seeds, 6 arms: the smallest p is 2/2^5 = 0.0625, Holm makes it 6 x 0.0625 = 0.375
    assert not stats.reachable(5, 6, 0.05) and stats.mde(5, 6) is None
    assert _holm_power(10.0, 5, 6, 0.05, reps=200, seed=1) == 0.0
    assert stats.reachable(9, 6, 0.05) and stats.mde(9, 6) is not None
    assert stats.reachable(5, 1, 0.1) and not stats.reachable(5, 1, 0.05)


def test_seeds_needed_is_the_fewest_that_reach_80_percent():
    n = stats.seeds_needed(1.2, arms=3)
    assert n is not None and stats.mde(n, 3) <= 1.2 < (stats.mde(n - 1, 3) or float("inf"))
    assert stats.seeds_needed(0.0) is None and stats.seeds_needed(0.01, most=8) is None


def test_power_beyond_the_simulated_pairs_is_an_upper_bound_on_the_mde():
    # the normal approximation past 20 pairs understates power, so the MDE it gives is never below the simulated one
    assert stats.mde(21, 6) >= stats.mde(20, 6) * 0.98

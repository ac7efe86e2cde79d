"""Paired statistics for seed-matched comparisons: differences, a t interval, an exact sign-flip
permutation test, and Holm's adjustment across several comparisons. Pure Python, no SciPy.

With n pairs the exact two-sided sign-flip test cannot give a p-value below 2 / 2**n (0.0625 for
n = 5): ``min_p`` says so, and callers print it next to the p-value.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

EXACT_UP_TO = 16  # pairs; beyond this the sign-flip test samples MONTE_CARLO sign patterns instead
MONTE_CARLO = 200_000


@dataclass(frozen=True)
class Paired:
    n: int
    mean: float
    sd: float | None
    ci_low: float | None  # 95% t interval of the mean difference
    ci_high: float | None
    p: float  # two-sided sign-flip permutation p-value
    exact: bool  # False when the p-value was sampled (n > EXACT_UP_TO)
    min_p: float  # the smallest p-value n pairs can give

    @property
    def too_small(self) -> bool:
        """No outcome of n pairs could reach p < 0.05."""
        return self.min_p >= 0.05


def paired(diffs: Sequence[float]) -> Paired:
    if not diffs:
        raise ValueError("no pairs")
    n = len(diffs)
    mean = statistics.fmean(diffs)
    sd = statistics.stdev(diffs) if n > 1 else None
    low = high = None
    if sd is not None:
        half = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
        low, high = mean - half, mean + half
    p, exact = sign_flip_p(diffs)
    return Paired(n, mean, sd, low, high, p, exact, min_sign_flip_p(n))


def min_sign_flip_p(n: int) -> float:
    return min(1.0, 2.0 / 2**n)


def sign_flip_p(diffs: Sequence[float]) -> tuple[float, bool]:
    """Two-sided p: the share of the 2**n sign patterns whose |sum| is at least the observed |sum|."""
    n = len(diffs)
    observed = abs(math.fsum(diffs))
    tolerance = 1e-9 * max(1.0, sum(abs(d) for d in diffs))
    if n <= EXACT_UP_TO:
        hits = sum(
            abs(math.fsum(s * d for s, d in zip(signs, diffs, strict=True))) >= observed - tolerance
            for signs in itertools.product((1, -1), repeat=n)
        )
        return hits / 2**n, True
    rng = random.Random(0)
    hits = sum(
        abs(math.fsum(d if rng.random() < 0.5 else -d for d in diffs)) >= observed - tolerance
        for _ in range(MONTE_CARLO)
    )
    return (hits + 1) / (MONTE_CARLO + 1), False


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def t_quantile(q: float, df: int) -> float:
    """The q-quantile (q > 0.5) of Student's t with df degrees of freedom, by bisection on its CDF."""
    lo, hi = 0.0, 1000.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def t_cdf(x: float, df: int) -> float:
    """P(T <= x) for x >= 0, through the regularized incomplete beta function."""
    return 1.0 - 0.5 * _betainc(df / 2, 0.5, df / (df + x * x))


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) by its continued fraction (Numerical Recipes' betacf form)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc(b, a, 1.0 - x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return front * f / a


# --- power: what a paired comparison of n seeds, against m arms with Holm, can detect --------------------------------
#
# The test is the one above: the exact two-sided sign-flip test on n paired differences, its p-value Holm-adjusted
# over the m arms compared with the baseline. Holm rejects an arm whose p is at most alpha / m whatever the other
# arms do, so the chance of p <= alpha / m is a floor on the arm's power under Holm (the other arms' rejections can
# only help it), and the effect reaching that chance 80% of the time is the minimum detectable effect (MDE) reported
# here: conservative by construction, and exact for the case that matters, one arm with an effect among nulls.
#
# The paired differences are taken to be normal with mean delta and sd sigma: the p-value of the sign-flip test is
# unchanged when every difference is scaled, so power depends on delta / sigma alone (the standardized effect), which
# is what these functions take and return; multiply by sigma (the sd of the paired differences, from a pilot) for the
# effect in the metric's units. Power is estimated by simulating POWER_SIMS sets of n differences with a fixed seed
# (the same answer every time) and computing each one's exact p-value over all 2^n sign patterns (n <= 20; beyond
# 16 pairs grpo-lab samples its p-values from 200,000 patterns, which estimates the same exact p); beyond 20 pairs
# by a normal approximation of the sign-flip statistic, which understates the power (so overstates the MDE: at 16
# pairs and 9 arms it gives 62% power where the simulation gives 80%), so an MDE beyond 20 pairs is an upper bound.

POWER = 0.8  # the chance of detecting the effect that "minimum detectable" means
POWER_SIMS = 4000
POWER_EXACT_UP_TO = 20  # pairs simulated exactly (2^(n/2) work per draw); beyond, the normal approximation
_POWER_CACHE: dict[tuple, float] = {}


def power(effect: float, n: int, threshold: float, sims: int = POWER_SIMS) -> float:
    """The chance that n paired differences ~ N(effect, 1) give a two-sided sign-flip p <= ``threshold``."""
    if n < 1 or min_sign_flip_p(n) > threshold * (1 + 1e-12):
        return 0.0
    if n > EXACT_UP_TO:  # fewer draws where each costs more (an estimate within about 1.3 points of power)
        sims = min(sims, 1000)
    key = (round(effect, 9), n, threshold, sims)
    if key not in _POWER_CACHE:
        _POWER_CACHE[key] = (
            _simulated_power(effect, n, threshold, sims)
            if n <= POWER_EXACT_UP_TO
            else _normal_power(effect, n, threshold)
        )
    return _POWER_CACHE[key]


def _simulated_power(effect: float, n: int, threshold: float, sims: int) -> float:
    import numpy as np

    rng = np.random.default_rng(20261202 + n)  # fixed: the same answer every time; common draws for every effect
    diffs = rng.standard_normal((sims, n)) + effect
    counts = np.concatenate([_extreme_counts(diffs[i : i + 1000]) for i in range(0, sims, 1000)])
    return float((counts / 2**n <= threshold * (1 + 1e-12)).mean())


def _extreme_counts(d):
    """For each row of differences: how many of the 2^n sign patterns give |sum| at least the observed |sum| (the
    exact sign-flip p-value times 2^n, as sign_flip_p counts it), by meeting in the middle: the sums of each half's
    2^(n/2) patterns, one half sorted, and for every sum of the other half the count of partners reaching it."""
    import numpy as np

    rows, n = d.shape
    a = np.abs(d)
    observed = np.abs(d.sum(axis=1)) - 1e-9 * np.maximum(1.0, a.sum(axis=1))
    half = n // 2
    left = _pattern_sums(a[:, :half])  # rows x 2^half
    right = np.sort(_pattern_sums(a[:, half:]), axis=1)  # rows x 2^(n - half)
    width = right.shape[1]
    # one sorted array for every row at once: row r's sums shifted by r * span never meet another row's
    span = 4 * (a.sum(axis=1).max() + 1)
    shift = (np.arange(rows) * span)[:, None]
    flat = (right + shift).ravel()
    start = (np.arange(rows) * width)[:, None]
    high = width - (np.searchsorted(flat, (observed[:, None] - left + shift).ravel()).reshape(left.shape) - start)
    low = np.searchsorted(flat, (-observed[:, None] - left + shift).ravel(), side="right").reshape(left.shape) - start
    return (high + low).sum(axis=1)


def _pattern_sums(a):
    """Every sign pattern's sum of each row: rows x 2^k."""
    import numpy as np

    k = a.shape[1]
    signs = 1.0 - 2.0 * ((np.arange(2**k)[:, None] >> np.arange(k)[None, :]) & 1)
    return a @ signs.T


def _normal_power(effect: float, n: int, threshold: float) -> float:
    """For many pairs: T = sum(d) / sqrt(sum(d^2)), the sign-flip statistic, is close to N(0, 1) under the null; for
    d ~ N(effect, 1) its mean is sqrt(n) effect / sqrt(1 + effect^2) and its variance, by the delta method,
    1/(1+e^2) - 2e^2/(1+e^2)^2 + e^2 (1+2e^2) / (2 (1+e^2)^3)."""
    z = _normal_quantile(1 - threshold / 2)
    e2 = effect**2
    mean = math.sqrt(n) * effect / math.sqrt(1 + e2)
    sd = math.sqrt(1 / (1 + e2) - 2 * e2 / (1 + e2) ** 2 + e2 * (1 + 2 * e2) / (2 * (1 + e2) ** 3))
    return (1 - _normal_cdf((z - mean) / sd)) + _normal_cdf((-z - mean) / sd)


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def _normal_quantile(q: float) -> float:
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if _normal_cdf(mid) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def holm_threshold(alpha: float, arms: int) -> float:
    """The p-value an arm must reach for Holm to reject it whatever the other arms do: alpha / arms."""
    return alpha / max(1, arms)


def reachable(n: int, arms: int, alpha: float, adjusted: bool = True) -> bool:
    """Whether n pairs can reach p (Holm-adjusted over ``arms`` when ``adjusted``) below ``alpha`` at all."""
    return min_sign_flip_p(n) * (arms if adjusted else 1) < alpha


def mde(n: int, arms: int = 1, alpha: float = 0.05, target: float = POWER) -> float | None:
    """The standardized effect (delta / sigma of the paired differences) that n seeds detect with probability
    ``target`` at Holm's alpha over ``arms`` arms; None when n seeds cannot reach the significance at all."""
    threshold = holm_threshold(alpha, arms)
    if not reachable(n, arms, alpha):
        return None
    lo, hi = 0.0, 1.0
    while power(hi, n, threshold) < target:
        lo, hi = hi, hi * 2
        if hi > 1e4:
            return None
    for _ in range(30):
        mid = (lo + hi) / 2
        if power(mid, n, threshold) >= target:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-3 * hi:
            break
    return hi


def seeds_needed(
    effect: float, arms: int = 1, alpha: float = 0.05, target: float = POWER, most: int = 64
) -> int | None:
    """The fewest seeds detecting a standardized effect (delta / sigma) with probability ``target`` at Holm's
    alpha over ``arms`` arms; None when even ``most`` seeds do not."""
    if effect <= 0:
        return None
    threshold = holm_threshold(alpha, arms)
    for n in range(2, most + 1):
        if reachable(n, arms, alpha) and power(effect, n, threshold) >= target:
            return n
    return None

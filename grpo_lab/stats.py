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

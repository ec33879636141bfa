"""Confidence sequences for a proportion and for a histogram's quantiles (pure mathematics).

Method: **one-sided beta-binomial mixture martingales** (Robbins 1970; Howard, Ramdas, McAuliffe and
Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence sequences", Annals of Statistics 49(2),
2021, section 3 and its one-sided conjugate-mixture boundaries; the same object as the mixture SPRT
behind Johari et al.'s "always valid p-values"). For a proportion ``p`` (errors per request, or the
share of requests slower than a bucket bound), ``k`` hits in ``n`` requests and a prior ``pi`` =
``Beta(a, b)`` on the alternatives ``q``, the likelihood ratio ``L_n(q) / L_n(p)`` with
``L_n(q) = q^k (1 - q)^(n - k)`` is a nonnegative martingale with mean 1 under ``p``, and so is any
mixture of them over a distribution fixed in advance. The **lower** bound mixes over the alternatives
above ``p`` only (``pi`` restricted to ``q > p`` and renormalised), the **upper** bound over those below:

    M+_n(p) = E[L_n(q) | q > p] / L_n(p),    M-_n(p) = E[L_n(q) | q < p] / L_n(p)   (q ~ pi)

By Ville's inequality ``P(exists n: M+_n(p) >= 1/alpha) <= alpha``, so the lower bound
``inf{p : M+_n(p) < 1/alpha}`` is **under the true proportion at every n at once with probability at
least 1 - alpha**, and likewise the upper bound (the mixture over ``q < p``) over it. Each bound spends
all of ``alpha`` on its own side: the judge asks one-sided questions ("is the canary surely over the
limit?" uses the lower bound only, "surely under it?" the upper bound only), and for a given truth
only one of them can be answered wrongly. The two-sided mixture (over every ``q``) spends ``alpha`` on
both sides together and needs more requests for the same answer: 598 requests without an error to
show a ratio under 0.5%, against 527 here (``bench/analysis.py`` measures what that does to whole
canaries). The pair ``(lower, upper)`` is an interval at ``1 - 2 alpha``.

Computing it: for ``p`` under the observed ``k / n`` the likelihood ratio of every ``q <= p`` is at most
1, so with ``M_n(p)`` the two-sided mixture (closed form: ``B(k + a, n - k + b) / B(a, b) / L_n(p)``) and
``P(p)`` the prior's mass above ``p``, ``M+_n(p) >= (M_n(p) - (1 - P(p))) / P(p)``. So
``M_n(p) >= 1 + P(p) (1/alpha - 1)`` at and below a point proves it is under the infimum: the bound
given is never tighter than the method allows, a little looser than the exact infimum (527 requests
in the example above against 514), and never looser than the two-sided bound, since
``1 + P(p) (1/alpha - 1) <= 1/alpha``.

The prior only shapes how fast the bounds close; its mean ``centre`` is the proportion the limit is
about (1% for errors and p99, 50% for p50), with little weight on ``a`` for rare events (it closes
faster on zero hits).

Quantiles: the share of requests slower than each bucket bound is such a proportion. The q-quantile's
upper bound is read from the histogram whose bucket shares are the upper bounds (lower bound: the
lower ones), interpolated within a bucket as Prometheus's ``histogram_quantile`` does. The bucket
bounds are simultaneous: ``S_n(b)`` (requests slower than ``b``) is monotone in ``b``, so a bound that
is wrong at some ``b`` is wrong at the true quantile (Howard and Ramdas, "Sequential estimation of
quantiles with applications to A/B-testing and best-arm identification", Bernoulli 28(3), 2022). The
guarantee is on those shares at the bucket bounds; between two bounds the interpolation assumes
requests spread evenly, as ``histogram_quantile`` does.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scipy.special import betaincc

Buckets = tuple[tuple[float, float], ...]
"""A histogram: ``(upper bound in seconds, cumulative count)`` by bound, ``+Inf`` last."""


@functools.lru_cache(maxsize=4096)
def lower(hits: int, n: int, alpha: float, centre: float) -> float:
    """The one-sided lower confidence bound of a proportion after ``hits`` in ``n``: under the true
    proportion at every ``n`` at once with probability ``1 - alpha`` (0 before any hit)."""
    k = min(max(hits, 0), n)
    if n <= 0 or k == 0:
        return 0.0
    a, b = _prior(centre)
    return _bound(k, n - k, a, b, alpha)


@functools.lru_cache(maxsize=4096)
def upper(hits: int, n: int, alpha: float, centre: float) -> float:
    """The one-sided upper confidence bound of a proportion after ``hits`` in ``n`` (1 before any
    request, and when every request was a hit)."""
    k = min(max(hits, 0), n)
    if n <= 0 or k == n:
        return 1.0
    a, b = _prior(centre)
    return 1.0 - _bound(n - k, k, b, a, alpha)  # the lower bound of the misses' share, the prior mirrored


def interval(hits: int, n: int, alpha: float, centre: float) -> tuple[float, float]:
    """``(lower, upper)``: each bound at ``1 - alpha`` over every look, so an interval at ``1 - 2 alpha``."""
    return lower(hits, n, alpha, centre), upper(hits, n, alpha, centre)


def _prior(centre: float) -> tuple[float, float]:
    """Beta(a, b) with mean ``centre``: little weight on ``a`` for rare events (it closes faster on
    zero hits), uniform-like for common ones."""
    a = 0.2 if centre < 0.1 else 1.0
    return a, a * (1.0 - centre) / centre


def _betaln(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _bound(k: int, m: int, a: float, b: float, alpha: float) -> float:
    """The lower bound of a proportion with ``k`` hits and ``m`` misses, prior ``Beta(a, b)``: a ``p``
    with ``f(x) <= t(x)`` at every ``x <= p``, where ``f(x) = k log x + m log(1 - x)`` and
    ``t(x) = log B(k + a, m + b) - log B(a, b) - log(1 + P(x) (1/alpha - 1))`` (``M_n(x)`` over the
    module docstring's threshold; ``P(x)`` the prior's mass above ``x``).

    ``f`` rises up to ``k / (k + m)`` and ``t`` rises everywhere (``P`` falls). ``p0`` solves ``f = t0``,
    ``t0`` being ``t`` with ``P = 1`` (the two-sided root; ``t0 <= t``), and the answer ``p1`` solves
    ``f = t(p0)``. For ``x <= p0``, ``f(x) <= t0 <= t(x)``; for ``x`` between them,
    ``f(x) <= f(p1) = t(p0) <= t(x)``. (Further such steps climb on, but by less than 1% together.)
    """
    mixture = _betaln(k + a, m + b) - _betaln(a, b)
    first = _root(k, m, mixture - math.log(1.0 / alpha))
    return _root(k, m, mixture - math.log1p(float(betaincc(a, b, first)) * (1.0 / alpha - 1.0)), start=first)


def _root(k: int, m: int, t: float, start: float | None = None) -> float:
    """The ``p`` below ``k / (k + m)`` where ``k log p + m log(1 - p) = t`` (concave in ``x = log p``:
    Newton from the left of the root converges monotonically; ``start``: a point left of it)."""
    if m == 0:
        return math.exp(min(t / k, 0.0))
    n = k + m
    top = k / n

    def g(x: float) -> float:
        return k * x + m * math.log1p(-math.exp(x)) - t

    gap = k * math.log(top) + m * math.log1p(-top) - t  # > 0: the maximum is inside
    if gap <= 0:
        return top
    guess = top - math.sqrt(2.0 * gap * top * (1.0 - top) / n) * 1.1 if start is None else start
    x = math.log(guess) if guess > 0 else math.log(top) - 1.0
    # from either side, Newton's first step lands left of the root (the tangent lies above g), then it
    # climbs monotonically
    for _ in range(100):
        e = math.exp(x)
        value = g(x)
        slope = k - m * e / (1.0 - e)
        if abs(value) < 1e-7 or slope <= 0:
            break
        x -= value / slope
    return math.exp(x)


# ------------------------------------------------------------------------------------------ quantiles


@dataclass(frozen=True)
class QuantileBounds:
    estimate: float | None
    low: float | None  # None: no data
    high: float | None  # inf: beyond the last finite bucket


def quantile(buckets: Buckets, q: float, alpha: float) -> QuantileBounds:
    """The ``q``-quantile of a histogram as ``histogram_quantile`` estimates it, and its lower and upper
    confidence bounds (each at ``1 - alpha`` over every look)."""
    finite = [(b, c) for b, c in buckets if math.isfinite(b)]
    total = _whole(buckets[-1][1]) if buckets and math.isinf(buckets[-1][0]) else 0
    if buckets and buckets[-1][1] < 0:
        raise ValueError(f"negative measurement: {buckets[-1][1]}")
    if not finite or not total:
        return QuantileBounds(None, None, None)
    bounds = [b for b, _ in finite]
    counts = [min(_whole(c), total) for _, c in finite]
    for i in range(1, len(counts)):  # cumulative counts never decrease
        counts[i] = max(counts[i], counts[i - 1])
    size = len(bounds)
    slow_low: dict[int, float] = {}
    slow_high: dict[int, float] = {}

    def empirical(j: int) -> float:
        return counts[j] / total

    def pessimistic(j: int) -> float:  # the share at or under bounds[j], if as many are slow as may be
        if j not in slow_high:
            slow_high[j] = upper(total - counts[j], total, alpha, 1.0 - q)
        return 1.0 - slow_high[j]

    def optimistic(j: int) -> float:
        if j not in slow_low:
            slow_low[j] = lower(total - counts[j], total, alpha, 1.0 - q)
        return 1.0 - slow_low[j]

    j0 = _first(empirical, q, 0, size)
    if j0 is None:  # beyond the last finite bound, as histogram_quantile says
        estimate = bounds[-1]
        j0 = size - 1
    else:
        estimate = _interpolate(bounds, empirical, j0, q)
    j_high = _first(pessimistic, q, j0, size)
    high = math.inf if j_high is None else _interpolate(bounds, pessimistic, j_high, q)
    j_low = _first(optimistic, q, j0, size)
    low = bounds[-1] if j_low is None else _interpolate(bounds, optimistic, j_low, q)
    return QuantileBounds(estimate, min(low, estimate), max(high, estimate))


def _whole(x: float) -> int:
    """A count from Prometheus (``increase`` may make it fractional; NaN, infinite or negative: 0)."""
    return max(round(x), 0) if math.isfinite(x) else 0


def _interpolate(bounds: Sequence[float], cdf: Callable[[int], float], j: int, q: float) -> float:
    """``histogram_quantile``'s linear interpolation within bucket ``j`` (``cdf(j) >= q``)."""
    below_bound = bounds[j - 1] if j > 0 else 0.0
    below = cdf(j - 1) if j > 0 else 0.0
    value = cdf(j)
    if value <= below:
        return bounds[j]
    return below_bound + (bounds[j] - below_bound) * (q - below) / (value - below)


def _first(cdf: Callable[[int], float], q: float, start: int, size: int) -> int | None:
    """The first bucket index whose ``cdf`` reaches ``q`` (``cdf`` never decreases), searching from
    ``start`` in whichever direction it lies; ``None`` when none does."""
    j = start
    if j < size and cdf(j) >= q:
        while j > 0 and cdf(j - 1) >= q:
            j -= 1
        return j
    while j < size and cdf(j) < q:
        j += 1
    return j if j < size else None

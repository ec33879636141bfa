"""The canary judge: one window of canary and stable numbers in, a :class:`Verdict` out (pure).

The window is whatever the caller measured both versions over, best the cumulative counts since
the current step began (``increase(...[since])``), so that every look sees all the evidence so far.
Four metrics are judged; any failing one fails the canary:

* **error ratio** (5xx / requests), canary against stable. The test is the conditional exact test
  for two Poisson rates: given the ``E`` errors of both versions together, if the canary were no
  worse than stable its share of them would be ``Binomial(E, n_canary / (n_canary + n_stable))``;
  the confidence is one minus the chance of the canary getting at least the errors it got. It is
  exact at small counts (3 errors in 20 against 0 in 200: 99.9%), needs no prior, and is a
  ``scipy.special.bdtrc`` call. The canary fails when that confidence reaches
  ``confidence`` *and* its ratio exceeds stable's by more than ``error_tolerance``.
* **success** against the absolute SLO ``min_success``, whatever stable does: an exact one-sided
  binomial test of "the canary's error ratio is at most ``1 - min_success``". An observed 98% over
  50 requests (1 error) is not a failure: a 0.5% error ratio gives that one time in five.
* **p50** and **p99 latency**: the canary fails when its quantile is above ``max_latency_ratio``
  times stable's *and* above the absolute floor (``latency_floor``, and stable + ``latency_margin``):
  0.4 ms against 0.2 ms is no regression. A quantile is judged only once the window holds
  ``tail_requests / (1 - q)`` requests of each version: a "p99" of 60 requests is just the
  slowest one, and judging it makes false aborts (p99 needs 500 requests, p50 the minimum).

Both error rules also need ``min_errors`` canary errors: one error in three requests is an
anecdote, however unlikely under the null. Repeated looks at growing windows inflate false
alarms, so the default per-look ``confidence`` is strict (99.9%); ``bench/analysis`` measures the
false-abort rate this gives over whole runs.

No data is never a pass: missing or NaN numbers, or fewer than ``min_requests`` canary (or
stable) requests, give INCONCLUSIVE with the reason. A window too small to pass can still fail when
the evidence is already strong enough (3 errors in 20 requests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from scipy.special import bdtrc


class State(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class WindowStats:
    """One version over the analysis window; ``None`` (or NaN) where Prometheus had no answer.

    ``requests`` and ``errors`` (5xx) are counts over the window (Prometheus' ``increase`` may make
    them fractional); ``p50`` and ``p99`` are request latencies in seconds.
    """

    requests: float | None
    errors: float | None
    p50: float | None = None
    p99: float | None = None


@dataclass(frozen=True, kw_only=True)
class AnalysisSettings:
    min_requests: int = 50  # canary (and stable) requests in the window before anything can pass
    max_latency_ratio: float = 1.5  # canary quantile / stable quantile
    min_success: float = 0.99  # absolute SLO for the canary
    latency_floor: float = 0.005  # s: a canary quantile under this is never a regression
    latency_margin: float = 0.002  # s: nor one within this of stable's
    error_tolerance: float = 0.005  # canary error ratio may exceed stable's by this much
    min_errors: int = 3  # canary errors before an error rule may fail
    confidence: float = 0.999  # per look, for the error rules
    tail_requests: int = 5  # requests beyond a quantile before it is judged (p99: 500 requests)


@dataclass(frozen=True)
class MetricResult:
    """One row of the verdict card. ``threshold`` is the canary value that would fail the metric
    (for success: the value it must stay above); ``confidence`` is None for rules without a test."""

    name: str
    canary: float | None
    stable: float | None
    threshold: float | None
    requests: int
    confidence: float | None
    outcome: State
    note: str


@dataclass(frozen=True)
class Verdict:
    state: State
    reason: str
    metrics: tuple[MetricResult, ...]
    seconds: float


def judge(
    canary: WindowStats,
    stable: WindowStats,
    settings: AnalysisSettings | None = None,
    *,
    seconds: float = 60.0,
) -> Verdict:
    """Judge ``canary`` against ``stable`` over one window of ``seconds``."""
    s = settings or AnalysisSettings()
    n_c, e_c = _count(canary.requests), _count(canary.errors)
    n_s, e_s = _count(stable.requests), _count(stable.errors)
    e_c = None if e_c is None or n_c is None else min(e_c, n_c)
    e_s = None if e_s is None or n_s is None else min(e_s, n_s)
    rows = (
        _error_ratio(n_c, e_c, n_s, e_s, s),
        _success(n_c, e_c, n_s, e_s, s),
        *(_latency(name, q, _value(getattr(canary, name)), _value(getattr(stable, name)), n_c, n_s, s)
          for name, q in (("p50", 0.5), ("p99", 0.99))),
    )
    failed = [r for r in rows if r.outcome is State.FAIL]
    if failed:
        also = f" (also failing: {', '.join(r.name for r in failed[1:])})" if failed[1:] else ""
        return Verdict(State.FAIL, failed[0].note + also, rows, seconds)
    window = f"{_secs(seconds)} s"
    if n_c is None or e_c is None:
        reason = f"no data for the canary in {window}"
    elif n_c < s.min_requests:
        reason = f"{n_c} requests to the canary in {window}, need {s.min_requests}"
    elif n_s is None or e_s is None:
        reason = f"no data for stable in {window}, nothing to compare with"
    elif n_s < s.min_requests:
        reason = f"{n_s} requests to stable in {window}, need {s.min_requests} to compare"
    elif missing := [r.name for r in rows if r.canary is None or r.stable is None]:
        reason = f"no {' or '.join(missing)} data in {window}"
    else:
        errors, success, *latency = rows
        summary = [f"errors {errors.canary:.1%} vs {errors.stable:.1%}", f"success {success.canary:.1%}"]
        summary += [f"{r.name} {_ms(r.canary)} vs {_ms(r.stable)}" for r in latency if r.outcome is State.PASS]
        reason = f"no regression in {n_c} canary requests over {window}: {', '.join(summary)}"
        if later := [r.note for r in rows if r.outcome is State.INCONCLUSIVE]:
            reason += "; not judged yet: " + ", ".join(later)
        return Verdict(State.PASS, reason, rows, seconds)
    return Verdict(State.INCONCLUSIVE, reason, rows, seconds)


# --------------------------------------------------------------------------------------- the rules


def _error_ratio(n_c: int | None, e_c: int | None, n_s: int | None, e_s: int | None,
                 s: AnalysisSettings) -> MetricResult:
    ratio_c = _ratio(e_c, n_c)
    ratio_s = _ratio(e_s, n_s)
    threshold = None if ratio_s is None else ratio_s + s.error_tolerance
    if ratio_c is None or ratio_s is None or threshold is None:
        return MetricResult("error ratio", ratio_c, ratio_s, threshold, n_c or 0, None, State.INCONCLUSIVE, "no data")
    assert n_c is not None and e_c is not None and n_s is not None and e_s is not None
    # P(canary gets >= e_c of all the errors | both versions have the same error ratio)
    share = n_c / (n_c + n_s)
    p_value = float(bdtrc(e_c - 1, e_c + e_s, share)) if e_c > 0 else 1.0
    confidence = 1.0 - p_value
    text = (f"{e_c} errors in {n_c} requests ({ratio_c:.1%}) vs {e_s} in {n_s} ({ratio_s:.1%}), "
            f"{confidence:.1%} confident the canary is worse")
    if confidence >= s.confidence and ratio_c > threshold and e_c >= s.min_errors:
        outcome = State.FAIL
    elif n_c < s.min_requests or n_s < s.min_requests:
        outcome = State.INCONCLUSIVE
    else:
        outcome = State.PASS
    return MetricResult("error ratio", ratio_c, ratio_s, threshold, n_c, confidence, outcome, text)


def _success(n_c: int | None, e_c: int | None, n_s: int | None, e_s: int | None,
             s: AnalysisSettings) -> MetricResult:
    ratio_c = _ratio(e_c, n_c)
    ratio_s = _ratio(e_s, n_s)
    success_s = None if ratio_s is None else 1.0 - ratio_s
    if ratio_c is None:
        return MetricResult("success", None, success_s, s.min_success, n_c or 0, None, State.INCONCLUSIVE, "no data")
    assert n_c is not None and e_c is not None
    # P(at least e_c errors in n_c requests | the canary's error ratio is exactly 1 - min_success)
    p_value = float(bdtrc(e_c - 1, n_c, 1.0 - s.min_success)) if e_c > 0 else 1.0
    confidence = 1.0 - p_value
    text = (f"success {1 - ratio_c:.1%} over {n_c} requests, SLO {s.min_success:.1%}, "
            f"{confidence:.1%} confident it is below")
    if confidence >= s.confidence and e_c >= s.min_errors:
        outcome = State.FAIL
    elif n_c < s.min_requests:
        outcome = State.INCONCLUSIVE
    else:
        outcome = State.PASS
    return MetricResult("success", 1.0 - ratio_c, success_s, s.min_success, n_c, confidence, outcome, text)


def _latency(name: str, q: float, canary: float | None, stable: float | None, n_c: int | None, n_s: int | None,
             s: AnalysisSettings) -> MetricResult:
    if canary is None or stable is None:
        return MetricResult(name, canary, stable, None, n_c or 0, None, State.INCONCLUSIVE, "no data")
    threshold = max(stable * s.max_latency_ratio, stable + s.latency_margin, s.latency_floor)
    need = max(s.min_requests, math.ceil(s.tail_requests / (1.0 - q) - 1e-9))
    ratio = f"{canary / stable:.2f}x" if stable > 0 else "stable 0"
    text = f"{_ms(canary)} vs {_ms(stable)} ({ratio}, limit {_ms(threshold)})"
    if n_c is None or n_s is None or min(n_c, n_s) < need:
        counted = "?" if n_c is None or n_s is None else str(min(n_c, n_s))
        return MetricResult(name, canary, stable, threshold, n_c or 0, None, State.INCONCLUSIVE,
                            f"{name} needs {need} requests of each version, has {counted}")
    outcome = State.FAIL if canary > threshold else State.PASS
    return MetricResult(name, canary, stable, threshold, n_c, None, outcome,
                        f"{name} latency {text}" if outcome is State.FAIL else text)


# ------------------------------------------------------------------------------------------ helpers


def _value(x: float | None) -> float | None:
    """None for missing, NaN or infinite numbers (PromQL's answer for an empty window)."""
    if x is None or not math.isfinite(x):
        return None
    if x < 0:
        raise ValueError(f"negative measurement: {x}")
    return float(x)


def _count(x: float | None) -> int | None:
    v = _value(x)
    return None if v is None else round(v)


def _ratio(errors: int | None, requests: int | None) -> float | None:
    if errors is None or requests is None or requests == 0:
        return None
    return errors / requests


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _secs(seconds: float) -> str:
    return f"{seconds:g}"

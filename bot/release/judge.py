"""The canary judge: the evidence so far in, a :class:`Verdict` out (pure).

The evidence is the cumulative counts of both versions since the canary's analysis began (the engine
reads ``increase(...[since])`` from Prometheus at every look): requests, 5xx errors and the
request-duration histogram's bucket counts. There are three outcomes, each on evidence:

* **FAIL** when the data show, at the configured ``confidence``, that the canary is worse than stable
  by more than ``error_tolerance``, has an error ratio over the SLO's budget (``1 - min_success``),
  or a p50 / p99 latency over its limit;
* **PASS** only when the data show, at the same standard, that it is within all of them: the upper
  confidence bound of the canary's error ratio under stable's lower bound + ``error_tolerance`` and
  under the SLO's budget, and the upper bound of each judged latency quantile under its limit, with
  at least ``min_requests`` canary requests;
* **WAIT** otherwise, saying what is not decided yet; :meth:`Verdict.needs` projects how many more
  canary requests would decide it if the proportions seen so far hold.

Method: **confidence sequences** (Howard, Ramdas, McAuliffe and Sekhon, "Time-uniform, nonparametric,
nonasymptotic confidence sequences", Annals of Statistics 49(2), 2021): for each proportion (errors
per request; the share of requests slower than each bucket bound) a one-sided beta-binomial mixture
martingale, bounded by Ville's inequality, gives a lower and an upper bound (:mod:`bot.release.confidence`
has the mathematics). **Guarantee: each bound holds at every look at once with probability at least
``confidence``**, however often the judge looks and although the window grows and the evidence carries
from one traffic step to the next (the same version). So its chance of failing a canary that is within
a limit, or of passing one that is beyond it, stays at most ``alpha = 1 - confidence`` per limit over
the whole run, not per look; a comparison with stable uses a bound of each version (at most
``2 * alpha``). A fail rests only on lower bounds over a limit and a pass only on upper bounds under it,
so each question spends ``alpha`` on its own side.

Latency: p50 and p99 are judged from the request-duration bucket counts; their bounds come from the
bounds of the share of requests slower than each bucket bound, interpolated as ``histogram_quantile``
does. A limit is ``max_latency_ratio`` times stable's quantile, and never under ``latency_floor`` or
stable + ``latency_margin`` (0.4 ms against 0.2 ms is no regression); to fail, the canary's lower bound
must exceed the limit computed from stable's upper bound, and to pass its upper bound must be under
the limit computed from stable's lower bound. Without bucket counts the latency cannot be judged and
the verdict waits. With ``p99_advisory`` a p99 not decided yet (or without buckets) does not hold back
a pass, and the verdict says so; a p99 shown over its limit still fails.

No data is never a pass: missing or NaN numbers, no stable to compare with, or fewer than
``min_requests`` canary requests give WAIT; such a look is ``blind`` when there is nothing to judge
at all (no canary request, no stable, no metrics), which the analysis runner counts separately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum

from bot.release.confidence import Buckets, lower, quantile, upper

__all__ = ["AnalysisSettings", "Buckets", "MetricResult", "State", "Verdict", "WindowStats", "duration",
           "judge"]


class State(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WAIT = "wait"


@dataclass(frozen=True)
class WindowStats:
    """One version over the analysis window; ``None`` (or NaN) where Prometheus had no answer.

    ``requests`` and ``errors`` (5xx) are counts over the window (Prometheus' ``increase`` may make
    them fractional); ``p50`` and ``p99`` are Prometheus's interpolated latencies in seconds;
    ``buckets`` the request-duration histogram over the same window (empty: unknown).
    """

    requests: float | None
    errors: float | None
    p50: float | None = None
    p99: float | None = None
    buckets: Buckets = ()


@dataclass(frozen=True, kw_only=True)
class AnalysisSettings:
    min_requests: int = 50  # canary requests in the evidence before anything can pass
    max_latency_ratio: float = 1.5  # canary quantile / stable quantile
    min_success: float = 0.99  # absolute SLO for the canary
    latency_floor: float = 0.005  # s: a canary quantile under this is never a regression
    latency_margin: float = 0.002  # s: nor one within this of stable's
    error_tolerance: float = 0.005  # canary error ratio may exceed stable's by this much
    confidence: float = 0.90  # time-uniform, per bound: 1 - alpha
    p99_advisory: bool = False  # a p99 not decided yet does not hold back a pass
    load_rps: float = 0.0  # requests/s the analysis load puts on each track while a step is judged (the estimate)

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence


@dataclass(frozen=True)
class MetricResult:
    """One row of the verdict card.

    ``canary`` and ``stable`` are the estimates, ``low``-``high`` the canary's confidence bounds
    (for success: of the success ratio), ``threshold`` the limit they are judged against (for
    success: the value it must stay above). ``confidence`` is the level of each bound. ``advisory``:
    this metric not decided yet does not hold back a pass.
    """

    name: str
    canary: float | None
    stable: float | None
    threshold: float | None
    requests: int
    confidence: float | None
    outcome: State
    note: str
    low: float | None = None
    high: float | None = None
    advisory: bool = False


@dataclass(frozen=True)
class Verdict:
    state: State
    reason: str
    metrics: tuple[MetricResult, ...]
    seconds: float
    blind: bool = False  # nothing to judge at all: no metrics, no canary request, no stable
    evidence: tuple[WindowStats, WindowStats, AnalysisSettings] | None = field(default=None, repr=False)

    @property
    def canary_requests(self) -> int:
        return max((m.requests for m in self.metrics), default=0)

    def needs(self, limit: float = 200.0) -> int | None:
        """About how many more canary requests would decide a waiting verdict if the proportions seen
        so far held (the stable side grows in step); ``None`` when it cannot tell or not within
        ``limit`` times the evidence so far."""
        if self.state is not State.WAIT or self.evidence is None:
            return None
        canary, stable, settings = self.evidence
        n = _count(canary.requests) or 0
        if n <= 0:
            return None

        def decided(scale: float) -> bool:
            state = judge(_scaled(canary, scale), _scaled(stable, scale), settings, seconds=self.seconds).state
            return state is not State.WAIT

        grid = [1.1, 1.25, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 100, 150, 200]
        hi = next((s for s in grid if s <= limit and decided(s)), None)
        if hi is None:
            return None
        lo = max([s for s in grid if s < hi] or [1.0])
        for _ in range(6):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if decided(mid) else (mid, hi)
        return max(1, math.ceil(max(n * (hi - 1), settings.min_requests - n)))

    def waiting_text(self, rate: float | None = None) -> str:
        """``needs about 240 more canary requests, about 8 min at the current rate`` (``rate``: canary
        requests per second; by default the evidence's average, and never less than the analysis load's
        rate, which goes on whatever the real traffic does); "" when not waiting."""
        if self.state is not State.WAIT or self.blind:
            return ""
        more = self.needs()
        if more is None:
            return "cannot tell yet how many more canary requests it needs"
        text = f"needs about {_round(more)} more canary requests"
        if rate is None:
            average = self.canary_requests / self.seconds if self.seconds > 0 else 0.0
            rate = max(average, self.evidence[2].load_rps if self.evidence is not None else 0.0)
        if rate and rate > 0:
            text += f", about {duration(more / rate)} at the current rate"
        return text


# ------------------------------------------------------------------------------------------ judge


def judge(
    canary: WindowStats,
    stable: WindowStats,
    settings: AnalysisSettings | None = None,
    *,
    seconds: float = 60.0,
) -> Verdict:
    """Judge ``canary`` against ``stable`` on the evidence of the last ``seconds``."""
    s = settings or AnalysisSettings()
    n_c, e_c = _count(canary.requests), _count(canary.errors)
    n_s, e_s = _count(stable.requests), _count(stable.errors)
    e_c = None if e_c is None or n_c is None else min(e_c, n_c)
    e_s = None if e_s is None or n_s is None else min(e_s, n_s)
    rows = (
        _error_ratio(n_c, e_c, n_s, e_s, s),
        _success(n_c, e_c, s),
        _latency("p50", 0.5, canary, stable, n_c, s),
        replace(_latency("p99", 0.99, canary, stable, n_c, s), advisory=s.p99_advisory),
    )
    evidence = (canary, stable, s)
    window = duration(seconds)
    failed = sorted((r for r in rows if r.outcome is State.FAIL), key=lambda r: r.name != "success")
    if failed:  # the SLO first: it holds whatever stable does
        also = f" (also failing: {', '.join(r.name for r in failed[1:])})" if failed[1:] else ""
        return Verdict(State.FAIL, failed[0].note + also, rows, seconds, evidence=evidence)
    blind = not n_c or e_c is None or n_s is None or e_s is None or not n_s
    if n_c is None or e_c is None:
        reason = f"no data for the canary in {window}"
    elif n_c == 0:
        reason = f"0 requests to the canary in {window}"
    elif n_s is None or e_s is None or n_s == 0:
        reason = f"no data for stable in {window}, nothing to compare with"
    elif n_c < s.min_requests:
        reason = f"{n_c} requests to the canary in {window}, need at least {s.min_requests}"
    elif undecided := [r for r in rows if r.outcome is State.WAIT and not r.advisory]:
        reason = f"not decided yet over {n_c} canary requests in {window}: " + "; ".join(r.note for r in undecided)
    else:
        reason = f"within every limit over {n_c} canary requests in {window}: " + "; ".join(
            r.note if r.outcome is State.PASS else f"{r.name} is advisory and not decided yet ({r.note})" for r in rows)
        return Verdict(State.PASS, reason, rows, seconds, evidence=evidence)
    return Verdict(State.WAIT, reason, rows, seconds, blind=blind, evidence=evidence)


# --------------------------------------------------------------------------------------- the rules


def _error_ratio(n_c: int | None, e_c: int | None, n_s: int | None, e_s: int | None,
                 s: AnalysisSettings) -> MetricResult:
    ratio_c, ratio_s = _ratio(e_c, n_c), _ratio(e_s, n_s)
    if ratio_c is None or ratio_s is None or n_c is None or e_c is None or n_s is None or e_s is None:
        return MetricResult("error ratio", ratio_c, ratio_s, None, n_c or 0, s.confidence, State.WAIT,
                            "error ratio: no data" if ratio_c is None else "error ratio: no stable to compare")
    centre = 1.0 - s.min_success
    low_c, high_c = lower(e_c, n_c, s.alpha, centre), upper(e_c, n_c, s.alpha, centre)
    low_s, high_s = lower(e_s, n_s, s.alpha, centre), upper(e_s, n_s, s.alpha, centre)
    seen = f"error ratio {_pct(ratio_c)} ({_pct(low_c)}–{_pct(high_c)}) vs stable {_pct(ratio_s)}"
    if low_c > high_s + s.error_tolerance:
        outcome, note = State.FAIL, f"{seen}: worse than stable by more than {_pct(s.error_tolerance)} " \
                                    f"(at least {_pct(low_c)} against at most {_pct(high_s)})"
        limit = high_s + s.error_tolerance
    elif high_c < low_s + s.error_tolerance:
        outcome, note = State.PASS, f"{seen}, limit {_pct(low_s + s.error_tolerance)}"
        limit = low_s + s.error_tolerance
    else:
        limit = low_s + s.error_tolerance
        outcome, note = State.WAIT, f"{seen}: could be up to {_pct(high_c)}, limit {_pct(limit)}"
    return MetricResult("error ratio", ratio_c, ratio_s, limit, n_c, s.confidence, outcome, note, low_c, high_c)


def _success(n_c: int | None, e_c: int | None, s: AnalysisSettings) -> MetricResult:
    ratio_c = _ratio(e_c, n_c)
    if ratio_c is None or n_c is None or e_c is None:
        return MetricResult("success", None, None, s.min_success, n_c or 0, s.confidence, State.WAIT,
                            "success: no data")
    budget = 1.0 - s.min_success
    low, high = lower(e_c, n_c, s.alpha, budget), upper(e_c, n_c, s.alpha, budget)
    seen = f"success {_pct(1 - ratio_c)} ({_pct(1 - high)}–{_pct(1 - low)}), SLO {_pct(s.min_success)}"
    if low > budget:
        outcome, note = State.FAIL, f"{seen}: under the SLO (at most {_pct(1 - low)})"
    elif high < budget:
        outcome, note = State.PASS, seen
    else:
        outcome, note = State.WAIT, f"{seen}: could be as low as {_pct(1 - high)}"
    return MetricResult("success", 1.0 - ratio_c, None, s.min_success, n_c, s.confidence, outcome, note,
                        1.0 - high, 1.0 - low)


def _latency(name: str, q: float, canary: WindowStats, stable: WindowStats, n_c: int | None,
             s: AnalysisSettings) -> MetricResult:
    c, st = quantile(canary.buckets, q, s.alpha), quantile(stable.buckets, q, s.alpha)
    estimate_c = c.estimate if c.estimate is not None else _value(getattr(canary, name))
    estimate_s = st.estimate if st.estimate is not None else _value(getattr(stable, name))
    if c.low is None or c.high is None or st.low is None or st.high is None:
        what = "no histogram buckets" if not canary.buckets or not stable.buckets else "no requests"
        return MetricResult(name, estimate_c, estimate_s, None, n_c or 0, s.confidence, State.WAIT,
                            f"{name}: {what}, cannot judge the latency")

    def limit(x: float) -> float:
        return max(x * s.max_latency_ratio, x + s.latency_margin, s.latency_floor)

    seen = f"{name} {_ms(estimate_c)} ({_ms(c.low)}–{_ms(c.high)}) vs stable {_ms(estimate_s)}"
    fail_at, pass_at = limit(st.high), limit(st.low)
    if c.low > fail_at:
        return MetricResult(name, estimate_c, estimate_s, fail_at, n_c or 0, s.confidence, State.FAIL,
                            f"{seen}: over the limit {_ms(fail_at)}", c.low, c.high)
    if c.high <= pass_at:
        return MetricResult(name, estimate_c, estimate_s, pass_at, n_c or 0, s.confidence, State.PASS,
                            f"{seen}, limit {_ms(pass_at)}", c.low, c.high)
    return MetricResult(name, estimate_c, estimate_s, pass_at, n_c or 0, s.confidence, State.WAIT,
                        f"{seen}: could be up to {_ms(c.high)}, limit {_ms(pass_at)}", c.low, c.high)


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


def _scaled(w: WindowStats, scale: float) -> WindowStats:
    def times(x: float | None) -> float | None:
        v = _value(x)
        return None if v is None else v * scale

    return replace(w, requests=times(w.requests), errors=times(w.errors),
                   buckets=tuple((b, c * scale) for b, c in w.buckets))


def _pct(ratio: float) -> str:
    """``0.0123`` -> ``1.23%``; two significant figures under 1%, one decimal place above."""
    value = ratio * 100
    if value == 0:
        return "0%"
    if abs(value) < 1:
        return f"{value:.2g}%"
    return f"{value:.1f}%"


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if math.isinf(seconds):
        return "∞"
    ms = seconds * 1000
    return f"{ms:.2g} ms" if ms < 10 else f"{ms:.0f} ms"


def _round(n: float) -> str:
    """Two significant figures: ``243`` -> ``240``, ``1234`` -> ``1,200``."""
    if n < 100:
        return str(round(n))
    digits = math.floor(math.log10(n)) - 1
    return f"{round(n, -digits):,.0f}"


def duration(seconds: float) -> str:
    """As people write it: ``45 s``, ``8 min``, ``1 h 5 min``."""
    whole = max(0, round(seconds))
    if whole <= 90:
        return f"{whole} s"
    minutes = round(whole / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


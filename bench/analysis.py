"""Whole analysed canaries on simulated traffic: how often each judge promotes or aborts, and how soon.

Offline and seeded. Each run is one canary through the product's flow with the default settings:
the weight steps of ``HELLO_CANARY_STEPS`` (10%, 25%, 50%), a look every ``HELLO_ANALYSIS_INTERVAL``
(60 s), and after each look the product's own decision (:func:`bot.release.analysis_runner.decide`
on :func:`bot.release.judge.judge`'s verdict over the evidence since the canary's analysis began):
a pass moves to the next step (after the last one: promoted), a fail aborts, a wait looks again, and
when the runner asks a person, the person clicks Continue. A run ends at promotion, abort or 60
minutes (undecided). Requests arrive as Poisson streams split by the weight; each fails with its
version's error ratio and takes a log-normal time (stable: median 20 ms, p99 64 ms), counted into
helloworld's histogram buckets, as Prometheus would give them.

The same flow, with its own rule in place of the judge and runner:

* **Flagger-style**: each look checks the last interval: success >= 99% and p99 (interpolated from
  the interval's buckets) within the same latency limit as ours; a passing check moves to the next
  step, a failing one (or an interval without canary requests) counts, and the 5th (``threshold: 5``)
  aborts;
* **Kayenta-style**: each look compares the per-interval error ratios and p99 of canary and stable
  since the step began with a Mann-Whitney U test (scipy; 98% two-sided, i.e. one-sided p < 0.01); a
  significantly higher metric aborts at once, and a step passes at the end of its lifetime
  (``--kayenta-lifetime``, 10 intervals).

Scenarios: 1, 5 and 50 requests/s in all; stable at 0% and 0.5% errors; canary errors 1.5x, 2x and 5x
the SLO's budget (1 - HELLO_ANALYSIS_MIN_SUCCESS = 1%), or equal to stable; p99 at 1.5x and 2x stable's
(errors equal to stable). Prints per scenario and judge: share promoted, share aborted, median
minutes to the decision (">60" when most runs were undecided), then which goals are met.
``--p99-advisory`` runs this project's judge with ``HELLO_ANALYSIS_P99_ADVISORY=true``; ``--only-ours``
leaves the other two rules out. ``--load RPS`` is the analysis load (``HELLO_ANALYSIS_LOAD_RPS``, read by
the product's own reader into its settings, so the judge's estimate counts it too): RPS more requests
per second to each version while the canary is analysed, with that version's errors and latency.
``--load auto`` (the product's default, so the default here): ours chooses the rate after each look with
the product's own :func:`bot.release.analysis_runner.load_rate` (up to ``HELLO_LOADTEST_MAX_RPS``, 50), and
the next minute runs under it; the Flagger- and Kayenta-style rules get that most throughout. ``--load 0``:
no load at all.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import mannwhitneyu, norm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.core.config import Config, setting
from bot.core.readers import AUTO_LOAD
from bot.release.analysis import settings_for
from bot.release.analysis_runner import Action, Policy, decide, load_rate
from bot.release.judge import AnalysisSettings, WindowStats, judge
from helloworld.metrics import BUCKETS

HORIZON = 60  # minutes
MEDIAN = 0.020  # s, both versions
SIGMA = 0.5  # stable's log-normal spread: p99 = 64 ms
BOUNDS = np.array([*BUCKETS, math.inf])
BUDGET = 0.01  # 1 - HELLO_ANALYSIS_MIN_SUCCESS


def defaults() -> Config:
    """The product's defaults (the tokens are required and irrelevant here)."""
    return Config(slack_bot_token="xoxb-bench", slack_signing_secret="bench")


@dataclass(frozen=True)
class Scenario:
    rps: float  # requests/s to both versions together
    stable_errors: float
    canary_errors: float
    p99_factor: float = 1.0
    label: str = ""

    @property
    def bad(self) -> bool:
        """Beyond a limit: under the SLO, or p99 beyond 1.5x stable's (1.5x itself is the boundary)."""
        return self.canary_errors > BUDGET or self.p99_factor > 1.5

    @property
    def healthy(self) -> bool:
        return self.canary_errors == self.stable_errors and self.p99_factor == 1.0


def scenarios() -> list[Scenario]:
    out = []
    for rps in (1.0, 5.0, 50.0):
        for stable in (0.0, 0.005):
            s = f"{rps:g} req/s, stable {stable:.1%}"
            out.append(Scenario(rps, stable, stable, label=f"{s}, canary = stable"))
            for times in (1.5, 2.0, 5.0):
                out.append(Scenario(rps, stable, BUDGET * times, label=f"{s}, canary {BUDGET * times:.1%} errors"))
            for factor in (1.5, 2.0):
                out.append(Scenario(rps, stable, stable, factor, label=f"{s}, canary p99 x{factor:g}"))
    return out


def probabilities(p99_factor: float) -> np.ndarray:
    """Bucket probabilities of a log-normal with the stable median and p99 times ``p99_factor``."""
    sigma = SIGMA + math.log(p99_factor) / norm.ppf(0.99)
    cdf = norm.cdf((np.log(BOUNDS[:-1]) - math.log(MEDIAN)) / sigma)
    return np.diff(np.concatenate([[0.0], cdf, [1.0]]))


@dataclass
class Traffic:
    """One version's counts, per interval and in all (since the analysis began)."""

    requests: int = 0
    errors: int = 0
    buckets: np.ndarray = field(default_factory=lambda: np.zeros(len(BOUNDS), dtype=np.int64))
    last: tuple[int, int, np.ndarray] | None = None

    def add(self, rng: np.random.Generator, rate: float, error_ratio: float, probs: np.ndarray) -> None:
        n = int(rng.poisson(rate))
        e = int(rng.binomial(n, error_ratio)) if n else 0
        h = rng.multinomial(n, probs)
        self.requests += n
        self.errors += e
        self.buckets = self.buckets + h
        self.last = (n, e, h)

    def stats(self) -> WindowStats:
        cumulative = np.cumsum(self.buckets)
        return WindowStats(self.requests, self.errors,
                           buckets=tuple(zip(BOUNDS.tolist(), cumulative.tolist(), strict=True)))


def histogram_quantile(q: float, buckets: np.ndarray) -> float:
    """Prometheus's histogram_quantile on per-bucket counts (+Inf last); NaN when empty."""
    cum = np.cumsum(buckets).astype(float)
    total = cum[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    i = int(np.searchsorted(cum, rank))
    if i >= len(BOUNDS) - 1:
        return float(BOUNDS[-2])
    lower = float(BOUNDS[i - 1]) if i > 0 else 0.0
    below = cum[i - 1] if i > 0 else 0.0
    inside = buckets[i]
    return lower + (float(BOUNDS[i]) - lower) * (rank - below) / inside if inside else float(BOUNDS[i])


# ---------------------------------------------------------------------------------------- the rules
# A rule sees the run so far and answers "next", "abort" or "wait"; the flow is the same for all.


class Ours:
    """The product's judge and analysis runner, as the engine calls them."""

    name = "this project"

    def __init__(self, settings: AnalysisSettings, policy: Policy, interval: float, config: Config) -> None:
        self.settings, self.policy, self.interval = settings, policy, interval
        self.inconclusive = 0
        self.auto = config.analysis_load_rps == AUTO_LOAD
        self.cap = config.loadtest_max_rps
        self.load = 0.0 if self.auto else float(config.analysis_load_rps)  # req/s to each version

    def start_step(self) -> None:
        self.inconclusive = 0

    def look(self, canary: Traffic, stable: Traffic, minute: int, step_minutes: int, percent: int,
             series: list[tuple[float, float, float, float]]) -> str:
        verdict = judge(canary.stats(), stable.stats(), self.settings, seconds=minute * self.interval)
        move = decide(verdict, policy=self.policy, percent=percent, inconclusive=self.inconclusive,
                      waited=step_minutes * self.interval)
        self.inconclusive = move.inconclusive
        if self.auto and move.action == Action.WAIT:  # the product's own choice of the next looks' load
            self.load = load_rate(verdict, current=int(self.load), cap=self.cap, interval=self.interval)
        if move.action in (Action.NEXT, Action.ASK):  # the person asked clicks Continue
            return "next"
        return "abort" if move.action == Action.ABORT else "wait"


def latency_limit(stable_p99: float, settings: AnalysisSettings) -> float:
    return max(stable_p99 * settings.max_latency_ratio, stable_p99 + settings.latency_margin, settings.latency_floor)


class Flagger:
    name = "Flagger-style"

    def __init__(self, settings: AnalysisSettings, load: float, threshold: int = 5) -> None:
        self.settings, self.threshold, self.failed = settings, threshold, 0
        self.load = load

    def start_step(self) -> None:
        pass

    def look(self, canary: Traffic, stable: Traffic, minute: int, step_minutes: int, percent: int,
             series: list[tuple[float, float, float, float]]) -> str:
        assert canary.last is not None and stable.last is not None
        n, e, h = canary.last
        ok = n > 0 and 1 - e / n >= 0.99
        if ok and stable.last[0] > 0:
            ok = histogram_quantile(0.99, h) <= latency_limit(histogram_quantile(0.99, stable.last[2]), self.settings)
        if ok:
            return "next"
        self.failed += 1
        return "abort" if self.failed >= self.threshold else "wait"


class Kayenta:
    name = "Kayenta-style"

    def __init__(self, lifetime: int, load: float) -> None:
        self.lifetime, self.load = lifetime, load

    def start_step(self) -> None:
        pass

    def look(self, canary: Traffic, stable: Traffic, minute: int, step_minutes: int, percent: int,
             series: list[tuple[float, float, float, float]]) -> str:
        points = [p for p in series if not any(math.isnan(x) for x in p)]
        if len(points) >= 3:
            values = np.array(points)
            for c, s in ((0, 1), (2, 3)):
                if mann_whitney_greater(values[:, c], values[:, s]) < 0.01:
                    return "abort"
        return "next" if step_minutes >= self.lifetime else "wait"


def mann_whitney_greater(x: np.ndarray, y: np.ndarray) -> float:
    """One-sided p-value of the Mann-Whitney U test that ``x`` tends to be greater than ``y``: the normal
    approximation with tie correction and continuity correction, as ``scipy.stats.mannwhitneyu(...,
    alternative="greater", method="asymptotic")`` computes it (checked in ``--check``), without its
    per-call overhead."""
    n1, n2 = len(x), len(y)
    u = float((x[:, None] > y[None, :]).sum() + 0.5 * (x[:, None] == y[None, :]).sum())
    n = n1 + n2
    _, ties = np.unique(np.concatenate([x, y]), return_counts=True)
    variance = n1 * n2 / 12 * ((n + 1) - float((ties ** 3 - ties).sum()) / (n * (n - 1)))
    if variance <= 0:
        return 1.0
    z = (u - n1 * n2 / 2 - 0.5) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2))


# ------------------------------------------------------------------------------------------ the flow


@dataclass(frozen=True)
class Outcome:
    promoted: bool
    aborted: bool
    minutes: int  # to the decision; HORIZON + 1 when undecided


def run(rule: Any, sc: Scenario, steps: tuple[int, ...], rng: np.random.Generator, interval: float) -> Outcome:
    """One canary; ``rule.load``: the analysis load's requests per second to each version besides its share
    (with ``auto``, ours changes it after a look, and the next minute runs under it)."""
    canary, stable = Traffic(), Traffic()
    p_canary, p_stable = probabilities(sc.p99_factor), probabilities(1.0)
    index, step_began = 0, 0
    series: list[tuple[float, float, float, float]] = []
    rule.start_step()
    for minute in range(1, HORIZON + 1):
        weight = steps[index] / 100
        canary.add(rng, (sc.rps * weight + rule.load) * interval, sc.canary_errors, p_canary)
        stable.add(rng, (sc.rps * (1 - weight) + rule.load) * interval, sc.stable_errors, p_stable)
        assert canary.last is not None and stable.last is not None
        (n_c, e_c, h_c), (n_s, e_s, h_s) = canary.last, stable.last
        series.append((e_c / n_c if n_c else math.nan, e_s / n_s if n_s else math.nan,
                       histogram_quantile(0.99, h_c), histogram_quantile(0.99, h_s)))
        answer = rule.look(canary, stable, minute, minute - step_began, steps[index], series)
        if answer == "abort":
            return Outcome(False, True, minute)
        if answer == "next":
            index, step_began, series = index + 1, minute, []
            if index == len(steps):
                return Outcome(True, False, minute)
            rule.start_step()
    return Outcome(False, False, HORIZON + 1)


@dataclass(frozen=True)
class Row:
    promoted: float
    aborted: float
    median: float  # minutes; > HORIZON: undecided
    within30: float  # share promoted within 30 minutes

    def cell(self) -> str:
        median = f">{HORIZON}" if self.median > HORIZON else f"{self.median:g}"
        return f"{self.promoted:4.0%} {self.aborted:4.0%} {median:>4}"


def measure(make: Callable[[], Any], sc: Scenario, runs: int, seed: int, index: int, config: Config) -> Row:
    outcomes = [run(make(), sc, config.canary_steps, np.random.default_rng([seed, index, r]),
                    config.analysis_interval_seconds) for r in range(runs)]
    return Row(promoted=sum(o.promoted for o in outcomes) / runs, aborted=sum(o.aborted for o in outcomes) / runs,
               median=statistics.median(o.minutes for o in outcomes),
               within30=sum(o.promoted and o.minutes <= 30 for o in outcomes) / runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100, help="runs per scenario and judge (default 100)")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--kayenta-lifetime", type=int, default=10, help="intervals per step (default 10)")
    parser.add_argument("--check", action="store_true", help="compare the Mann-Whitney test with scipy's and stop")
    parser.add_argument("--p99-advisory", action="store_true", help="ours with HELLO_ANALYSIS_P99_ADVISORY")
    parser.add_argument("--only-ours", action="store_true", help="leave out the Flagger- and Kayenta-style rules")
    parser.add_argument("--load", default=None, metavar="RPS",
                        help="the analysis load: requests/s to each version while analysed, or auto "
                             "(HELLO_ANALYSIS_LOAD_RPS; default: the product's, auto)")
    args = parser.parse_args()
    if args.check:
        return check()
    field_name, read = setting("HELLO_ANALYSIS_LOAD_RPS")  # the product's reader: its rules and its field
    config = replace(defaults(), analysis_p99_advisory=args.p99_advisory,
                     **({} if args.load is None else {field_name: read("--load", args.load)}))
    settings, policy = settings_for(config), Policy.from_config(config)
    auto = config.analysis_load_rps == AUTO_LOAD
    theirs = float(config.loadtest_max_rps if auto else config.analysis_load_rps)  # auto: the most ours may use
    rules: dict[str, Callable[[], Any]] = {
        "this project": lambda: Ours(settings, policy, config.analysis_interval_seconds, config),
        "Flagger-style": lambda: Flagger(settings, theirs),
        "Kayenta-style": lambda: Kayenta(args.kayenta_lifetime, theirs),
    }
    if args.only_ours:
        rules = {"this project": rules["this project"]}
    started = time.perf_counter()
    print(f"steps {'/'.join(map(str, config.canary_steps))}%, a look every {config.analysis_interval_seconds:g} s, "
          f"{HORIZON} min at most; {args.runs} runs per cell, seed {args.seed}")
    print(f"ours: {settings.confidence:.0%} time-uniform confidence, SLO {settings.min_success:.0%}, tolerance "
          f"{settings.error_tolerance:.1%} over stable, latency limit {settings.max_latency_ratio:g}x stable, a person "
          f"asked after {policy.max_wait_seconds / 60:g} min undecided in a step clicks Continue"
          + (", p99 advisory" if settings.p99_advisory else "")
          + (f"; analysis load {settings.load_rps:g} req/s to each version" if settings.load_rps else "")
          + (f"; analysis load auto (ours: chosen at each look, up to {theirs:g} req/s to each version; the other "
             f"rules: {theirs:g} req/s throughout)" if auto else ""))
    print()
    width = 44
    print("cells: promoted aborted median-minutes-to-decision")
    print("| scenario".ljust(width) + "".join(f"| {name:<17}" for name in rules) + "|")
    print("|" + "-" * (width - 1) + "|------------------" * len(rules) + "|")
    table: dict[tuple[int, str], Row] = {}
    all_scenarios = scenarios()
    for i, sc in enumerate(all_scenarios):
        cells = []
        for name, make in rules.items():
            row = measure(make, sc, args.runs, args.seed, i, config)
            table[i, name] = row
            cells.append(row.cell())
        print(f"| {sc.label}".ljust(width) + "".join(f"| {c:<17}" for c in cells) + "|", flush=True)
    print()
    goals(all_scenarios, table, args.runs)
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


def check() -> int:
    """The bench's Mann-Whitney p-values against scipy's on random samples with ties."""
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(200):
        x, y = rng.integers(0, 5, rng.integers(3, 30)) / 10, rng.integers(0, 5, rng.integers(3, 30)) / 10
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = mannwhitneyu(x, y, alternative="greater", method="asymptotic").pvalue
        worst = max(worst, abs(mann_whitney_greater(x, y) - (1.0 if math.isnan(expected) else expected)))
    print(f"largest difference from scipy's p-value: {worst:.2e}")
    return 0 if worst < 1e-9 else 1


def goals(all_scenarios: list[Scenario], table: dict[tuple[int, str], Row], runs: int) -> None:
    ours, flagger, kayenta = "this project", "Flagger-style", "Kayenta-style"
    bad = [(i, sc) for i, sc in enumerate(all_scenarios)
           if sc.canary_errors >= 2 * BUDGET or sc.p99_factor >= 2.0]
    worst_bad = max(table[i, ours].promoted for i, _ in bad)
    healthy = [(i, sc) for i, sc in enumerate(all_scenarios) if sc.healthy]
    worst_abort = max(table[i, ours].aborted for i, _ in healthy)
    at5 = {sc.stable_errors: table[i, ours].within30 for i, sc in healthy if sc.rps == 5.0}
    at1 = {sc.stable_errors: table[i, ours].within30 for i, sc in healthy if sc.rps == 1.0}
    beyond = [(i, sc) for i, sc in enumerate(all_scenarios) if sc.bad]

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(f"goals ({runs} runs per cell):")
    print(f"- a canary with 2x the error budget or worse, or p99 doubled, promoted in <= 1% of runs: "
          f"{met(worst_bad <= 0.01)} (worst {worst_bad:.0%})")
    print(f"- a healthy canary aborted in <= 1% of runs: {met(worst_abort <= 0.01)} (worst {worst_abort:.0%})")
    for stable, share in sorted(at5.items()):
        print(f"- healthy, stable at {stable:.1%}, 5 req/s: promoted within 30 min in >= 97% of runs: "
              f"{met(share >= 0.97)} ({share:.0%})")
    print("  (at 1 req/s: " + ", ".join(f"stable at {stable:.1%} {share:.0%}" for stable, share in sorted(at1.items()))
          + " promoted within 30 min)")
    if (0, flagger) in table:
        not_worse = [sc.label for i, sc in beyond if table[i, ours].promoted > table[i, flagger].promoted]
        print(f"- no more bad promotions than Flagger-style in any scenario beyond a limit: {met(not not_worse)}"
              + (f" (more in: {'; '.join(not_worse)})" if not_worse else ""))
    if (0, kayenta) in table:
        faster = [sc.label for i, sc in enumerate(all_scenarios) if table[i, ours].median < table[i, kayenta].median]
        same = [sc.label for i, sc in enumerate(all_scenarios) if table[i, ours].median == table[i, kayenta].median]

        def later(i: int, sc: Scenario) -> str:
            k = table[i, kayenta]
            wrong = k.aborted if not sc.bad else k.promoted  # within every limit: an abort is wrong, and beyond
            return f"{sc.label} (Kayenta-style {'aborts' if not sc.bad else 'promotes'} {wrong:.0%} of them)"

        slower = [later(i, sc) for i, sc in enumerate(all_scenarios)
                  if table[i, ours].median > table[i, kayenta].median]
        print(f"- faster decisions than Kayenta-style: {met(not slower and not same)}: faster in {len(faster)} of "
              f"{len(all_scenarios)} scenarios, as soon in {len(same)}"
              + (f", later in {len(slower)}: {'; '.join(slower)}" if slower else ""))


if __name__ == "__main__":
    raise SystemExit(main())

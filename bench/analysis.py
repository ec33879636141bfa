"""Canary judges on synthetic traffic: how soon each aborts a regression, how often it aborts a healthy canary.

Offline and seeded. Requests arrive as Poisson streams, 10% of them to the canary; each request fails
with the version's error ratio and takes a log-normal time (stable: median 20 ms, p99 64 ms). Every
60-second analysis interval is reduced to what Prometheus would give: request and 5xx counts, and the
request-duration histogram in helloworld's buckets, whose quantiles are interpolated the way
``histogram_quantile`` does. The canary stays at 10% for 30 intervals; each judge looks after every
interval and the first FAIL aborts. Three judges see the same streams:

* this project's (``bot.release.judge``) on the cumulative window since the canary started;
* Flagger-style: the interval's success rate must be >= 99%, an interval without requests counts as
  failed too, and the 5th failed check (``threshold: 5``) aborts;
* Kayenta-style: per-interval error ratio and p99 of canary against stable since the start,
  Mann-Whitney U (scipy) at 98% confidence (two-sided, as Kayenta's classifier: one-sided p < 0.01);
  either metric significantly higher fails the canary. Intervals without data are dropped.

Prints the median minutes to an abort per regression (with the share of runs aborted within the 30
minutes), the false-abort rate over healthy runs (canary = stable), and what each judge does with
0.2 requests/s. Goal (issue #15): ours aborts every regression sooner than the Flagger-style rule at
an equal or lower false-abort rate, false aborts <= 1%, and no pass on missing data.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu, norm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.release.judge import AnalysisSettings, State, WindowStats, judge
from helloworld.metrics import BUCKETS

INTERVAL = 60.0
HORIZON = 30  # intervals per run
WEIGHT = 0.10
MEDIAN = 0.020  # s, both versions
SIGMA = 0.5  # stable's log-normal spread: p99 = 64 ms
SIGMA_P99X2 = SIGMA + math.log(2) / norm.ppf(0.99)  # same median, p99 doubled (128 ms)
BOUNDS = np.array([*BUCKETS, math.inf])


@dataclass(frozen=True)
class Scenario:
    name: str
    rps: float  # requests/s to both versions together
    canary_errors: float = 0.0
    stable_errors: float = 0.0
    canary_sigma: float = SIGMA


@dataclass
class Streams:
    """Per run and interval: counts and bucket counts (non-cumulative) of each version."""

    n_c: np.ndarray  # (runs, intervals)
    e_c: np.ndarray
    h_c: np.ndarray  # (runs, intervals, buckets)
    n_s: np.ndarray
    e_s: np.ndarray
    h_s: np.ndarray


def bucket_probabilities(sigma: float) -> np.ndarray:
    cdf = norm.cdf((np.log(BOUNDS[:-1]) - math.log(MEDIAN)) / sigma)
    return np.diff(np.concatenate([[0.0], cdf, [1.0]]))


def simulate(sc: Scenario, runs: int, rng: np.random.Generator) -> Streams:
    shape = (runs, HORIZON)
    n_c = rng.poisson(sc.rps * WEIGHT * INTERVAL, shape)
    n_s = rng.poisson(sc.rps * (1 - WEIGHT) * INTERVAL, shape)
    return Streams(
        n_c, rng.binomial(n_c, sc.canary_errors), rng.multinomial(n_c, bucket_probabilities(sc.canary_sigma)),
        n_s, rng.binomial(n_s, sc.stable_errors), rng.multinomial(n_s, bucket_probabilities(SIGMA)),
    )


def histogram_quantile(q: float, buckets: np.ndarray) -> np.ndarray:
    """Prometheus' histogram_quantile over the last axis (per-bucket counts, +Inf last); NaN if empty."""
    cum = np.cumsum(buckets, axis=-1).astype(float)
    total = cum[..., -1]
    rank = q * total
    i = np.minimum((cum < rank[..., None]).sum(axis=-1), len(BOUNDS) - 1)
    upper = BOUNDS[i]
    lower = np.where(i > 0, BOUNDS[np.maximum(i - 1, 0)], 0.0)
    below = np.where(i > 0, np.take_along_axis(cum, np.maximum(i - 1, 0)[..., None], -1)[..., 0], 0.0)
    inside = np.take_along_axis(buckets, i[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        value = lower + (upper - lower) * (rank - below) / inside
    value = np.where(np.isinf(upper), BOUNDS[-2], value)  # in +Inf: the highest finite bound
    return np.where(total > 0, value, np.nan)


# ----------------------------------------------------------------------------------------- judges
# Each returns, per run, the interval (1-based) of the first abort, or 0 for none in the horizon.


def ours(st: Streams, settings: AnalysisSettings, states: list[State] | None = None) -> np.ndarray:
    cum = {k: np.cumsum(getattr(st, k), axis=1) for k in ("n_c", "e_c", "h_c", "n_s", "e_s", "h_s")}
    q = {(k, p): histogram_quantile(p, cum[k]) for k in ("h_c", "h_s") for p in (0.5, 0.99)}
    out = np.zeros(len(st.n_c), dtype=int)
    for r in range(len(out)):
        for t in range(HORIZON):
            canary = WindowStats(cum["n_c"][r, t], cum["e_c"][r, t], q["h_c", 0.5][r, t], q["h_c", 0.99][r, t])
            stable = WindowStats(cum["n_s"][r, t], cum["e_s"][r, t], q["h_s", 0.5][r, t], q["h_s", 0.99][r, t])
            verdict = judge(canary, stable, settings, seconds=INTERVAL * (t + 1))
            if states is not None:
                states.append(verdict.state)
            if verdict.state is State.FAIL:
                out[r] = t + 1
                break
    return out


def flagger(st: Streams, threshold: int = 5) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        success = 1 - st.e_c / st.n_c
    failed = (st.n_c == 0) | (success < 0.99)
    count = np.cumsum(failed, axis=1)
    hit = count >= threshold
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)


def kayenta(st: Streams) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        errors = (st.e_c / st.n_c, st.e_s / st.n_s)
    metrics = [errors, (histogram_quantile(0.99, st.h_c), histogram_quantile(0.99, st.h_s))]
    out = np.zeros(len(st.n_c), dtype=int)
    for t in range(1, HORIZON):  # one point per version can tell nothing
        alive = out == 0
        high = np.zeros(len(out), dtype=bool)
        for c, s in metrics:
            high |= alive & _mwu_greater(c[:, : t + 1], s[:, : t + 1])
        out[high] = t + 1
    return out


def _mwu_greater(c: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Per row: is the canary significantly higher (one-sided p < 0.01, i.e. a 98% two-sided interval)?"""
    result = np.zeros(len(c), dtype=bool)
    clean = ~(np.isnan(c).any(axis=1) | np.isnan(s).any(axis=1))
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore")
        if clean.any():
            p = mannwhitneyu(c[clean], s[clean], alternative="greater", axis=1, method="asymptotic").pvalue
            result[clean] = np.nan_to_num(p, nan=1.0) < 0.01
        for r in np.flatnonzero(~clean):
            x, y = c[r][~np.isnan(c[r])], s[r][~np.isnan(s[r])]
            if len(x) >= 2 and len(y) >= 2:
                p = mannwhitneyu(x, y, alternative="greater", method="asymptotic").pvalue
                result[r] = not math.isnan(p) and p < 0.01
    return result


# ---------------------------------------------------------------------------------------- report


def median_minutes(aborts: np.ndarray) -> str:
    """Median abort time in minutes over all runs (a run never aborted counts as beyond the horizon)."""
    times = [a if a else math.inf for a in aborts]
    m = statistics.median(times)
    share = np.count_nonzero(aborts) / len(aborts)
    return f"{'>' + str(HORIZON) if math.isinf(m) else f'{m:g}'} min ({share:.0%})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="runs per regression")
    parser.add_argument("--healthy-runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    settings = AnalysisSettings()
    judges: dict[str, Callable[[Streams], np.ndarray]] = {
        "this project": lambda st: ours(st, settings), "Flagger-style": flagger, "Kayenta-style": kayenta,
    }
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    width = 34
    print(f"canary at {WEIGHT:.0%} weight, {INTERVAL:g} s analysis intervals, runs of {HORIZON} intervals; {settings}")
    print()
    print(f"median minutes to abort ({args.runs} runs each; in brackets: runs aborted within {HORIZON} min)")
    print("scenario".ljust(width) + "".join(name.ljust(20) for name in judges))
    regressions = [("errors 0->2%", {"canary_errors": 0.02}), ("errors 0->5%", {"canary_errors": 0.05}),
                   ("errors 0->15%", {"canary_errors": 0.15}), ("p99 latency x2", {"canary_sigma": SIGMA_P99X2})]
    for label, change in regressions:
        for rps in (5.0, 50.0):
            st = simulate(Scenario(label, rps, **change), args.runs, rng)
            cells = [median_minutes(j(st)) for j in judges.values()]
            print(f"{label}, {rps:g} req/s".ljust(width) + "".join(c.ljust(20) for c in cells))
    print()
    print(f"false aborts over {args.healthy_runs} healthy runs of {HORIZON} min (canary = stable)")
    print("scenario".ljust(width) + "".join(name.ljust(20) for name in judges))
    for errors in (0.0, 0.005):
        for rps in (5.0, 50.0):
            st = simulate(Scenario("healthy", rps, errors, errors), args.healthy_runs, rng)
            cells = [f"{np.count_nonzero(j(st)) / args.healthy_runs:.1%}" for j in judges.values()]
            print(f"healthy, {errors:.1%} errors, {rps:g} req/s".ljust(width) + "".join(c.ljust(20) for c in cells))
    print()
    print(f"0.2 req/s in all (canary: ~{0.2 * WEIGHT * INTERVAL:.1f} requests per interval), {args.runs} runs")
    healthy = simulate(Scenario("healthy", 0.2), args.runs, rng)
    bad = simulate(Scenario("15%", 0.2, canary_errors=0.15), args.runs, rng)
    states: list[State] = []
    ours(healthy, settings, states)
    looks = {s: states.count(s) / len(states) for s in State}
    print(f"  this project:  healthy: {looks[State.INCONCLUSIVE]:.0%} of looks inconclusive (weight held; a person "
          f"is asked after 3 in a row, HELLO_ANALYSIS_MAX_INCONCLUSIVE), {looks[State.PASS]:.0%} pass, "
          f"{looks[State.FAIL]:.0%} fail; "
          f"0->15% errors: aborted after {median_minutes(ours(bad, settings))}")
    print(f"  Flagger-style: healthy: aborted after {median_minutes(flagger(healthy))} (intervals without requests "
          f"count as failed); 0->15% errors: aborted after {median_minutes(flagger(bad))}")
    print(f"  Kayenta-style: healthy: aborted after {median_minutes(kayenta(healthy))}, otherwise passes (empty "
          f"intervals dropped); 0->15% errors: aborted after {median_minutes(kayenta(bad))}")
    print(f"\n({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

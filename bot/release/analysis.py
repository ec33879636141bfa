"""Canary analysis between the engine and the judge: settings from the configuration, the numbers a
window gave, and the verdict card (all pure; the engine does the waiting, querying and posting; the
decision after each look is :mod:`bot.release.analysis_runner`'s).
"""

from __future__ import annotations

from typing import Any

from bot.chat import views
from bot.chat.views import kit
from bot.core.config import Config
from bot.core.errors import DependencyUnavailable
from bot.core.target import Target
from bot.release.judge import AnalysisSettings, MetricResult, State, Verdict, WindowStats, duration, judge

MARK = {State.PASS: ":white_check_mark:", State.FAIL: ":x:", State.WAIT: ":hourglass_flowing_sand:"}
WORD = {State.PASS: "passed", State.FAIL: "failed", State.WAIT: "waiting"}


def word(verdict: Verdict) -> str:
    """``passed`` / ``failed`` / ``waiting``, and ``inconclusive`` for a look with nothing to judge."""
    return "inconclusive" if verdict.blind else WORD[verdict.state]


def mark(verdict: Verdict) -> str:
    return ":grey_question:" if verdict.blind else MARK[verdict.state]


def summary(verdict: Verdict) -> str:
    """The verdict in one line for the release's message: the word, what it rests on, per metric the
    estimate, its interval and the limit, and what a waiting look needs."""
    more = verdict.waiting_text()
    if verdict.blind or not verdict.metrics:
        head = verdict.reason
    elif verdict.state is State.FAIL:
        head = verdict.reason
    else:
        head = f"{verdict.canary_requests} canary requests in {duration(verdict.seconds)}"
    parts = [head, compact(verdict)] if verdict.metrics and not verdict.blind else [head]
    return f"{word(verdict)}: " + "; ".join(p for p in [*parts, more] if p)


def compact(verdict: Verdict) -> str:
    """``error ratio 0% (0%–1.5%, limit 0.5%) · success 100% (98.47%–100%, SLO 99%) · ...``"""
    out = []
    for m in verdict.metrics:
        if m.canary is None:
            continue
        interval = f"{_value(m, m.low)}–{_value(m, m.high)}" if m.low is not None and m.high is not None else ""
        limit = "" if m.threshold is None else f"{'SLO' if m.name == 'success' else 'limit'} {_value(m, m.threshold)}"
        inside = ", ".join(x for x in (interval, limit) if x)
        out.append(f"{m.name} {_value(m, m.canary)}" + (f" ({inside})" if inside else ""))
    return " · ".join(out)


def settings_for(config: Config) -> AnalysisSettings:
    """The judge's thresholds from ``HELLO_ANALYSIS_*`` (and the analysis load's rate, for its estimate)."""
    return AnalysisSettings(min_requests=config.analysis_min_requests,
                            max_latency_ratio=config.analysis_max_latency_ratio,
                            min_success=config.analysis_min_success / 100,
                            confidence=config.analysis_confidence / 100,
                            p99_advisory=config.analysis_p99_advisory, load_rps=float(config.analysis_load_rps)
                            if isinstance(config.analysis_load_rps, int) else 0.0)


def stats(counts: Any | None) -> WindowStats:
    """A :class:`~bot.observe.prom.WindowCounts` (or nothing) as the judge's input."""
    if counts is None:
        return WindowStats(requests=None, errors=None, p50=None, p99=None)
    return WindowStats(requests=counts.requests, errors=counts.errors, p50=counts.p50, p99=counts.p99,
                       buckets=tuple(getattr(counts, "buckets", ()) or ()))


STATUS_WINDOW = 600.0  # seconds of evidence /hello status judges a running canary on


async def canary_warning(target: Target, state: Any, seconds: float = STATUS_WINDOW) -> str:
    """A warning when a canary with traffic is significantly worse than stable, analysed or not ("" if not):
    the judge's own verdict on the last ``seconds`` (a FAIL: a bound of its confidence sequence beyond a limit).

    ``state`` is the :class:`~bot.cluster.kube.Deployed` just read; metrics that cannot be read say
    nothing here (the status shows that on its own).
    """
    canary, stable = state.canary, state.stable
    weight = (state.canary_route.weight or 0) if state.canary_route is not None else 0
    if not weight or canary is None or stable is None or not canary.version or canary.version == stable.version:
        return ""
    config, prometheus = target.config, target.prometheus
    if prometheus is None:
        return ""
    try:
        counts = await prometheus.window(seconds)
    except DependencyUnavailable:
        return ""
    verdict = judge(stats(counts.get(canary.version)), stats(counts.get(stable.version)),
                    settings_for(config), seconds=seconds)
    if verdict.state != State.FAIL:
        return ""
    return (f"canary {views.escape(canary.version)} at {weight}% is significantly worse than stable over the "
            f"last {duration(seconds)} ({verdict.metrics[0].confidence or 0:.0%} confidence): "
            f"{views.escape(verdict.reason)}")


def _value(result: MetricResult, number: float | None) -> str:
    if number is None:
        return "–"
    if result.name in ("p50", "p99"):
        if number == float("inf"):
            return "∞"
        ms = number * 1000
        return f"{ms:.2g} ms" if ms < 10 else f"{ms:.0f} ms"
    percent = number * 100
    if percent in (0, 100):
        return f"{percent:.0f}%"
    if percent < 1:
        return f"{percent:.2g}%"
    return f"{percent:.2f}".rstrip("0").rstrip(".") + "%"


def metric_lines(verdict: Verdict) -> list[str]:
    """One line per metric (mrkdwn): the canary's estimate and confidence bounds (each at the level
    shown), the limit it is judged against, stable's estimate, the canary requests counted, and whether
    it is advisory."""
    lines = []
    for m in verdict.metrics:
        interval = ""
        if m.low is not None and m.high is not None:
            level = f"{m.confidence:.0%} " if m.confidence is not None else ""
            interval = f" ({level}bounds {_value(m, m.low)}–{_value(m, m.high)})"
        if m.threshold is None:
            limit = ""
        elif m.name == "success":
            limit = f" · SLO at least {_value(m, m.threshold)}"
        else:
            limit = f" · limit {_value(m, m.threshold)}"
        stable = f" · stable {_value(m, m.stable)}" if m.stable is not None else ""
        advisory = " · advisory: does not hold back a pass" if m.advisory else ""
        lines.append(f"{MARK[m.outcome]} *{m.name}*: canary {_value(m, m.canary)}{interval}{limit}{stable}"
                     f" · {m.requests} canary requests{advisory}")
    return lines


def card(verdict: Verdict, *, version: str, percent: int, index: int, total: int, look: int,
         links: list[tuple[str, str]]) -> tuple[str, list[dict]]:
    """The verdict card posted in the release's thread: every number the verdict stands on."""
    more = verdict.waiting_text()
    reason = verdict.reason + (f"; {more}" if more else "")
    head = (f"{mark(verdict)} Canary `{views.escape(version)}` at {percent}% (step {index}/{total}, "
            f"check {look}): analysis {word(verdict)} — {views.escape(reason)}")
    link_text = " · ".join(f"<{url}|{views.escape(label)}>" for label, url in links)
    level = next((m.confidence for m in verdict.metrics if m.confidence is not None), None)
    method = f", {level:.0%} confidence over every look" if level is not None else ""
    blocks = kit.blocks(
        kit.section(head),
        kit.section("\n".join(metric_lines(verdict)) or "–"),
        kit.context(f"evidence: the last {duration(verdict.seconds)}, canary against stable{method}"
                    + (f" · {link_text}" if link_text else "")),
    )
    text = f"Canary {version} at {percent}%: analysis {word(verdict)}: {reason}"
    return text, blocks

"""Canary analysis between the engine and the judge: settings from the configuration, the numbers a
window gave, and the verdict card (all pure; the engine does the waiting, querying and posting).
"""

from __future__ import annotations

from typing import Any

from bot.chat import render
from bot.core.config import Config
from bot.release.judge import AnalysisSettings, MetricResult, State, Verdict, WindowStats

MARK = {State.PASS: ":white_check_mark:", State.FAIL: ":x:", State.INCONCLUSIVE: ":grey_question:"}
WORD = {State.PASS: "passed", State.FAIL: "failed", State.INCONCLUSIVE: "inconclusive"}


def settings_for(config: Config) -> AnalysisSettings:
    """The judge's thresholds from ``HELLO_ANALYSIS_*``."""
    return AnalysisSettings(min_requests=config.analysis_min_requests,
                            max_latency_ratio=config.analysis_max_latency_ratio,
                            min_success=config.analysis_min_success / 100)


def stats(counts: Any | None) -> WindowStats:
    """A :class:`~bot.observe.prom.WindowCounts` (or nothing) as the judge's input."""
    if counts is None:
        return WindowStats(requests=None, errors=None, p50=None, p99=None)
    return WindowStats(requests=counts.requests, errors=counts.errors, p50=counts.p50, p99=counts.p99)


STATUS_WINDOW = 600.0  # seconds of evidence /hello status judges a running canary on


async def canary_warning(services: Any, state: Any, seconds: float = STATUS_WINDOW, config: Any = None) -> str:
    """A warning when a canary with traffic is significantly worse than stable, analysed or not ("" if not).

    ``state`` is the :class:`~bot.cluster.kube.ReleaseState` just read; metrics that cannot be read say
    nothing here (the status shows that on its own).
    """
    from bot.core.errors import DependencyUnavailable
    from bot.release.judge import judge

    canary, stable = state.canary, state.stable
    weight = (state.canary_route.weight or 0) if state.canary_route is not None else 0
    if not weight or canary is None or stable is None or not canary.version or canary.version == stable.version:
        return ""
    config = config or services.config
    prometheus = services.prometheus_for(config)
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
    return (f"canary {render.escape(canary.version)} at {weight}% is significantly worse than stable over the "
            f"last {int(seconds // 60)} min: {render.escape(verdict.reason)}")


def _value(result: MetricResult, number: float | None) -> str:
    if number is None:
        return "–"
    if result.name in ("p50", "p99"):
        return f"{number * 1000:.1f} ms"
    return f"{number * 100:.2f}%"


def metric_lines(verdict: Verdict) -> list[str]:
    """One line per metric: canary, stable, threshold, requests, confidence, outcome (mrkdwn)."""
    lines = []
    for m in verdict.metrics:
        confidence = f" · {m.confidence * 100:.1f}% confident" if m.confidence is not None else ""
        threshold = f" · limit {_value(m, m.threshold)}" if m.threshold is not None else ""
        note = f" · {render.escape(m.note)}" if m.note else ""
        lines.append(f"{MARK[m.outcome]} *{m.name}*: canary {_value(m, m.canary)} vs stable {_value(m, m.stable)}"
                     f"{threshold} · {m.requests} canary requests{confidence}{note}")
    return lines


def card(verdict: Verdict, *, version: str, percent: int, index: int, total: int, look: int,
         links: list[tuple[str, str]]) -> tuple[str, list[dict]]:
    """The verdict card posted in the release's thread: every number the verdict stands on."""
    head = (f"{MARK[verdict.state]} Canary `{render.escape(version)}` at {percent}% (step {index}/{total}, "
            f"check {look}): analysis {WORD[verdict.state]} — {render.escape(verdict.reason)}")
    link_text = " · ".join(f"<{url}|{render.escape(label)}>" for label, url in links)
    blocks = render.validate([
        {"type": "section", "text": {"type": "mrkdwn", "text": head[:3000]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(metric_lines(verdict))[:3000] or "–"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"window: the last {int(verdict.seconds)} s, canary against stable"
            + (f" · {link_text}" if link_text else ""))[:3000]}]},
    ])
    text = f"Canary {version} at {percent}%: analysis {WORD[verdict.state]}: {verdict.reason}"
    return text, blocks

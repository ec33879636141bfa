"""A load test's latency chart in its release's thread: each track's response times over the test, side by
side (:func:`bot.observe.charts.render_loadtest`), posted at the end with a line saying what it shows.

Best effort: the figures live in the driver that ran the step (:attr:`bot.release.driver.Driver.measured`);
a replica that took the release up after its load step has none, and posts no chart.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.core.errors import DependencyUnavailable
from bot.core.text import escape
from bot.release.plan import StepKind

if TYPE_CHECKING:
    from bot.release.driver import Driver

log = logging.getLogger(__name__)


def caption(service: str, rps: int, seconds: int, tracks: list[str]) -> str:
    """The line of text posted with the chart: what it shows and how to read it."""
    each = " and ".join(tracks)
    side = "side by side, on the same scale" if len(tracks) > 1 else "its"
    return (f"Latency of `{escape(service)}` under the load test ({rps} req/s for {seconds} s to {each}): "
            f"a dot per response and the median of each second as a line, {side} panel per track "
            "(stable blue, canary orange).")


async def post(driver: Driver) -> None:
    """Post the chart of the load test this driver measured (nothing for another kind of release)."""
    from bot.observe import charts  # deferred: charts imports matplotlib, which most releases never need

    release, measured = driver.release, driver.measured
    if not release.ts or not measured or not any(s.kind == StepKind.LOAD for s in release.steps):
        return
    service, p = driver.config.stable_deployment, release.params
    latencies = {track: list(figures.latencies) for track, figures in measured.items()}
    try:
        png = await charts.render_loadtest_async(latencies, service=service,
                                                 title=f"{service} · load test · {p.rps} req/s for {p.seconds} s")
        await driver.engine.services.messenger.upload(
            release.channel, png, f"loadtest-{release.id}.png", f"{service} load test latency",
            thread_ts=release.ts, comment=caption(service, p.rps, p.seconds, list(measured)))
    except DependencyUnavailable as exc:
        log.info("release %s: no load test chart: %s", release.id, exc)

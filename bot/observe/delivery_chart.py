"""The delivery chart of ``/hello stats``: a :class:`bot.observe.delivery.Delivery` in, PNG bytes out.

Pure and thread-safe like :mod:`bot.observe.charts` (its own ``Figure`` on the Agg canvas, no ``pyplot``),
in the same light card style. Two panels over the range, by UTC day: deployments per day (bars; the
failed changes in red beside them), and each deployment's request-to-live time (dots, with the median).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta

import matplotlib.dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from bot.observe.charts import BACKGROUND, DPI, GRID, PANEL, TEXT, figure_png
from bot.observe.delivery import Delivery, duration

SIZE = (12.0, 6.5)  # inches; 1200x650 px at DPI
DEPLOYED = "#2f9e44"
FAILED = "#c92a2a"
LEAD = "#1f6feb"


def _style(ax, title: str) -> None:  # type: ignore[no-untyped-def]
    ax.set_facecolor(PANEL)
    ax.set_title(title, loc="left", color=TEXT, fontsize=11)
    ax.grid(True, axis="y", color=GRID, linewidth=0.8)
    ax.tick_params(colors=TEXT, labelsize=9)
    for spine in ax.spines.values():
        spine.set_color(GRID)


def build_figure(d: Delivery, *, service: str = "helloworld") -> Figure:
    fig = Figure(figsize=SIZE, dpi=DPI, facecolor=BACKGROUND)
    FigureCanvasAgg(fig)
    width, height = SIZE
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={
        "left": 0.8 / width, "right": 1 - 0.3 / width, "top": 1 - 0.8 / height, "bottom": 0.6 / height,
        "hspace": 0.45})
    rate = "–" if d.failure_rate is None else f"{d.failure_rate * 100:.0f}%"
    fig.suptitle(f"{service}: delivery, last {d.days} days (UTC) — {d.deployments} deployments, "
                 f"change failure rate {rate}", x=0.8 / width, ha="left", color=TEXT, fontsize=13)
    noon = [mdates.date2num(datetime.combine(day.day, time(12), tzinfo=d.end.tzinfo)) for day in d.daily]
    width = 0.38  # of a day, each: deployments left of noon, failures right of it
    top.bar([x - width / 2 for x in noon], [day.deployments for day in d.daily], width=width, color=DEPLOYED,
            label="deployments")
    top.bar([x + width / 2 for x in noon], [day.failures for day in d.daily], width=width, color=FAILED,
            label="failed changes")
    _style(top, "Deployments and failed changes per day")
    top.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    top.set_ylim(0, max([1, *(max(day.deployments, day.failures) for day in d.daily)]) * 1.35)
    top.legend(loc="upper left", frameon=False, fontsize=9, labelcolor=TEXT, ncols=2)

    longest = max((s for _, s in d.leads), default=0.0)
    unit, scale = ("seconds", 1.0) if longest < 120 else ("minutes", 60.0) if longest < 7200 else ("hours", 3600.0)
    _style(bottom, f"Request to live, per deployment ({unit})")
    if d.leads:
        bottom.plot([mdates.date2num(at) for at, _ in d.leads], [s / scale for _, s in d.leads], "o", color=LEAD,
                    markersize=6, label="request → live")
        if d.lead.seconds is not None:
            bottom.axhline(d.lead.seconds / scale, color=LEAD, linestyle="--", linewidth=1.2,
                           label=f"median {duration(d.lead.seconds)}")
        bottom.legend(loc="upper left", frameon=False, fontsize=9, labelcolor=TEXT, ncols=2)
        bottom.set_ylim(0, longest / scale * 1.35)
        bottom.yaxis.set_major_locator(MaxNLocator(nbins=5))
        bottom.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    else:
        bottom.text(0.5, 0.5, "No deployment in this range", transform=bottom.transAxes, ha="center",
                    va="center", color=TEXT, fontsize=12)
        bottom.set_yticks([])
    # whole UTC days, so that today's bars are not cut at "now"
    first = datetime.combine(d.daily[0].day, time(0), tzinfo=d.end.tzinfo) if d.daily else d.start
    last = datetime.combine(d.daily[-1].day, time(0), tzinfo=d.end.tzinfo) + timedelta(days=1) if d.daily else d.end
    end = d.end
    bottom.set_xlim(mdates.date2num(first), mdates.date2num(last))
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10, tz=end.tzinfo)
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%b %d", tz=end.tzinfo))
    return fig


def render(d: Delivery, *, service: str = "helloworld") -> bytes:
    return figure_png(build_figure(d, service=service))


async def render_async(d: Delivery, *, service: str = "helloworld") -> bytes:
    """:func:`render` in a worker thread: matplotlib never runs on the event loop."""
    return await asyncio.to_thread(render, d, service=service)

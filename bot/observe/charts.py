"""Status charts: a :class:`bot.prom.Snapshot` in, PNG bytes out.

Pure and thread-safe: each call builds its own ``matplotlib.figure.Figure`` on the Agg canvas (no
``pyplot`` global state), so :func:`render_chart_async` can run it in a worker thread.

Design choices:

* Background: an opaque light card (near-white figure, white plots, dark text). Slack shows images as
  they are, on a white page in the light theme and a near-black one in the dark theme; a transparent
  image with dark text would vanish on the dark theme, while an opaque light card stays readable on
  both and matches how Grafana panels are usually shared.
* Stable and canary differ by colour *and* line style (blue solid vs. orange dashed) so they stay apart
  for colour-blind readers and in grey-scale; the legend reads ``v1 (stable)`` / ``v2 (canary)``.
* Times are drawn in UTC (the title says so); long series are bucketed to at most
  :data:`MAX_POINTS` points per line (mean for rate and success, max for latency so spikes survive),
  which keeps the render time flat from 15 minutes to 7 days.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from itertools import chain
from typing import Any

import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

from bot.observe.series import Series, Snapshot

KINDS = ("all", "traffic", "errors", "latency")
MAX_POINTS = 600
DPI = 100
SPARSE_POINTS = 60
SIZES = {"all": (12.0, 9.0), "traffic": (12.0, 4.5), "errors": (12.0, 4.5), "latency": (12.0, 4.5)}
"""Figure size in inches per kind; at :data:`DPI` that is 1200x900 px for ``all``, 1200x450 otherwise."""

NO_TRAFFIC = "No traffic in this range"

BACKGROUND = "#f4f5f7"
PANEL = "#ffffff"
TEXT = "#1d1c1d"
GRID = "#d5d8dd"
STABLE = {"color": "#1f6feb", "linestyle": "-", "linewidth": 2.0}
CANARY = {"color": "#e8590c", "linestyle": "--", "linewidth": 2.0}
OTHERS = ("#6f42c1", "#2f9e44", "#868e96", "#c2255c")
MARKER_COLOURS = {"deploy": "#2f9e44", "canary": "#e8590c", "rollback": "#c92a2a"}


@dataclass(frozen=True)
class Marker:
    """A vertical line at a release event (``kind``: ``deploy``, ``canary``, ``rollback``, ...)."""

    at: datetime
    label: str
    kind: str = "deploy"


@dataclass(frozen=True)
class Window:
    """A shaded span: an analysed window and its verdict (``state``: ``pass``, ``fail``, ``inconclusive``)."""

    start: datetime
    end: datetime
    label: str
    state: str = "pass"


WINDOW_COLOURS = {"pass": "#2b9348", "fail": "#d00000", "inconclusive": "#868e96"}


@dataclass(frozen=True)
class _Panel:
    title: str
    unit: str
    series: list[Series]
    scale: float
    reduce: str  # "mean" or "max"


def downsample(ts: np.ndarray, ys: np.ndarray, limit: int = MAX_POINTS, how: str = "mean"):
    """Bucket ``(ts, ys)`` into at most ``limit`` points: bucket start time, NaN-aware mean or max.

    NaN (no data) stays NaN when a whole bucket is empty, so gaps are kept.
    """
    n = len(ts)
    if n <= limit:
        return ts, ys
    size = -(-n // limit)
    buckets = -(-n // size)
    pad = buckets * size - n
    grid = np.concatenate([ys, np.full(pad, np.nan)]).reshape(buckets, size)
    if how == "max":
        out = np.fmax.reduce(grid, axis=1)
    else:
        present = ~np.isnan(grid)
        count = present.sum(axis=1)
        total = np.where(present, grid, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return ts[::size][:buckets], out


def _arrays(series: Series, scale: float) -> tuple[np.ndarray, np.ndarray]:
    if not series.points:
        return np.empty(0), np.empty(0)
    flat = chain.from_iterable(series.points)
    try:  # fast path: no gaps
        grid = np.fromiter(flat, dtype=float, count=2 * len(series.points)).reshape(-1, 2)
    except TypeError:  # a None (NaN from PromQL): numpy turns it into NaN in a float array
        grid = np.array([x for p in series.points for x in p], dtype=float).reshape(-1, 2)
    return grid[:, 0], grid[:, 1] * scale


def _style(version: str, index: int, stable: str | None, canary: str | None) -> tuple[dict, str]:
    if version == stable:
        return STABLE, f"{version} (stable)"
    if version == canary:
        return CANARY, f"{version} (canary)"
    if stable is None and canary is None and index < 2:
        return (STABLE, version) if index == 0 else (CANARY, version)
    colour = OTHERS[index % len(OTHERS)]
    return {"color": colour, "linestyle": ":", "linewidth": 1.8}, version


def _panels(snapshot: Snapshot, kind: str) -> list[_Panel]:
    traffic = _Panel("Requests per second", "req/s", snapshot.rate, 1.0, "mean")
    errors = _Panel("Success (non-5xx)", "%", snapshot.success, 100.0, "mean")
    latency = _Panel("Latency p99", "ms", snapshot.p99, 1000.0, "max")
    return {"all": [traffic, errors, latency], "traffic": [traffic], "errors": [errors],
            "latency": [latency]}[kind]


def _order(versions: list[str], stable: str | None, canary: str | None) -> list[str]:
    first = [v for v in (stable, canary) if v in versions]
    return first + [v for v in sorted(versions) if v not in first]


def _draw_panel(
    ax: Axes,
    panel: _Panel,
    versions: list[str],
    stable: str | None,
    canary: str | None,
    traffic: bool,
    legend: bool,
) -> bool:
    ax.set_facecolor(PANEL)
    ax.set_title(panel.title, loc="left", fontsize=12, color=TEXT, fontweight="bold")
    ax.set_ylabel(panel.unit, color=TEXT)
    ax.grid(True, color=GRID, linewidth=0.8)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    ax.tick_params(colors=TEXT, labelsize=10)
    for spine in ax.spines.values():
        spine.set_color(GRID)
    drawn = False
    low = np.inf
    by_version = {s.version: s for s in panel.series}
    for index, version in enumerate(versions):
        series = by_version.get(version)
        if series is None:
            continue
        ts, ys = _arrays(series, panel.scale)
        if not traffic or not np.any(~np.isnan(ys)):
            continue
        ts, ys = downsample(ts, ys, how=panel.reduce)
        low = min(low, float(np.nanmin(ys)))
        style, label = _style(version, index, stable, canary)
        if len(ts) <= SPARSE_POINTS:  # a few samples in a long range would be an invisible sliver: dot them
            style = {**style, "marker": "o", "markersize": 3.5}
        ax.plot(ts / 86400.0, ys, label=label, **style)
        drawn = True
    if not drawn:
        ax.text(0.5, 0.5, NO_TRAFFIC, transform=ax.transAxes, ha="center", va="center",
                fontsize=14, color="#5e6673")
        ax.yaxis.set_major_locator(NullLocator())  # a scale without data would only mislead
    elif panel.unit == "%":
        ax.set_ylim(max(0.0, min(low - 5.0, 95.0)), 100.5)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
    else:
        ax.set_ylim(bottom=0)
    if drawn and legend:
        # Above the panel, right-aligned on the title's line, so it never hides a line; the panels
        # share their versions and styles, so one legend (on the first panel) serves them all.
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=4, fontsize=10, frameon=False,
                  labelcolor=TEXT, borderaxespad=0.2)
    return drawn


def data_window(snapshot: Snapshot, share: float = 0.2) -> tuple[datetime, datetime | None]:
    """Where the time axis starts, and since when there is data when that is later than the range.

    When the data covers less than ``share`` of the range (a service that started minutes ago,
    asked for the last hour), the axis starts just before the first sample instead of squeezing
    every point into the right edge; the title then says since when there is data.
    """
    start, end = snapshot.start.astimezone(UTC), snapshot.end.astimezone(UTC)
    stamps = [t for group in (snapshot.rate, snapshot.success, snapshot.p99) for series in group
              for t, value in series.points if value is not None]
    if not stamps:
        return start, None
    first = datetime.fromtimestamp(min(stamps), UTC)
    if (end - first) >= (end - start) * share:
        return start, None
    margin = max((end - first) * 0.1, timedelta(seconds=snapshot.step or 1))
    return max(start, first - margin), first


def _shade_windows(axes: Sequence[Axes], windows: Sequence[Window], view_start: datetime, end: datetime) -> None:
    """Shade each analysed window (its part inside the view) in its verdict's colour, labelled at the bottom."""
    for window in windows:
        start, stop = max(window.start.astimezone(UTC), view_start), min(window.end.astimezone(UTC), end)
        if start >= stop:
            continue
        colour = WINDOW_COLOURS.get(window.state, "#868e96")
        for ax in axes:
            ax.axvspan(start.timestamp() / 86400.0, stop.timestamp() / 86400.0, color=colour, alpha=0.12, lw=0)
        axes[-1].annotate(window.label, xy=((start.timestamp() + stop.timestamp()) / 2 / 86400.0, 0.02),
                          xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=8, color=colour)


def _mark_releases(axes: Sequence[Axes], markers: Sequence[Marker], view_start: datetime, end: datetime) -> None:
    """A vertical line across every panel at each marker inside the view, labelled in the top panel."""
    for marker in markers:
        at = marker.at.astimezone(UTC)
        if not view_start <= at <= end:
            continue
        x = at.timestamp() / 86400.0
        colour = MARKER_COLOURS.get(marker.kind, "#495057")
        # Labels near the right edge go to the left of their line so they stay inside the panel.
        right_half = (at - view_start) > (end - view_start) * 0.7
        for ax in axes:
            ax.axvline(x, color=colour, linestyle="-.", linewidth=1.4, alpha=0.9)
        axes[0].annotate(
            marker.label, xy=(x, 1.0), xycoords=("data", "axes fraction"),
            xytext=(-3 if right_half else 3, -3), textcoords="offset points",
            ha="right" if right_half else "left", va="top", fontsize=9, color=colour, fontweight="bold",
            bbox={"boxstyle": "round,pad=0.2", "facecolor": PANEL, "edgecolor": colour, "alpha": 0.9},
        )


def build_figure(
    snapshot: Snapshot,
    *,
    service: str = "helloworld",
    kind: str = "all",
    markers: Sequence[Marker] = (),
    stable_version: str | None = None,
    canary_version: str | None = None,
    windows: Sequence[Window] = (),
) -> Figure:
    """The chart as a ``Figure`` (one axes per panel); :func:`render_chart` turns it into PNG bytes."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    fig = Figure(figsize=SIZES[kind], dpi=DPI, facecolor=BACKGROUND)
    FigureCanvasAgg(fig)
    panels = _panels(snapshot, kind)
    # Fixed margins (in inches, converted to fractions) instead of a layout engine: the size never
    # changes, and automatic layout would triple the render time.
    width, height = SIZES[kind]
    axes = fig.subplots(
        len(panels), 1, sharex=True, squeeze=False,
        gridspec_kw={"left": 0.75 / width, "right": 1 - 0.25 / width, "top": 1 - 0.75 / height,
                     "bottom": 0.65 / height, "hspace": 0.95 / (height / len(panels))},
    )[:, 0]
    versions = _order(snapshot.versions, stable_version, canary_version)
    legend_drawn = False
    for ax, panel in zip(axes, panels, strict=True):
        drawn = _draw_panel(
            ax, panel, versions, stable_version, canary_version, snapshot.has_traffic, not legend_drawn
        )
        legend_drawn = legend_drawn or drawn

    end = snapshot.end.astimezone(UTC)
    view_start, since = data_window(snapshot)
    bottom = axes[-1]
    bottom.set_xlim(view_start.timestamp() / 86400.0, end.timestamp() / 86400.0)
    locator = mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=10)
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    bottom.set_xlabel("time (UTC)", color=TEXT)

    _shade_windows(axes, windows, view_start, end)
    _mark_releases(axes, markers, view_start, end)

    title = f"{service} · last {snapshot.range} · until {end:%Y-%m-%d %H:%M} UTC"
    if since is not None:
        title += f" · data since {since:%H:%M:%S}"
    fig.suptitle(title, color=TEXT, fontsize=14, fontweight="bold")
    return fig


def figure_png(fig: Figure) -> bytes:
    out = BytesIO()
    # Light compression: a few hundred kB more or less does not matter to Slack, the time does.
    fig.savefig(out, format="png", dpi=DPI, facecolor=fig.get_facecolor(), pil_kwargs={"compress_level": 2})
    return out.getvalue()


def render_chart(snapshot: Snapshot, **options: Any) -> bytes:
    """PNG bytes of the chart (1200x900 px for ``all``, 1200x450 px for a single panel); ``options`` are
    :func:`build_figure`'s."""
    return figure_png(build_figure(snapshot, **options))


async def render_chart_async(snapshot: Snapshot, **options: Any) -> bytes:
    """:func:`render_chart` in a worker thread, so the event loop keeps serving."""
    return await asyncio.to_thread(render_chart, snapshot, **options)


def pixel_size(kind: str = "all") -> tuple[int, int]:
    """(width, height) in pixels of a chart of ``kind``."""
    width, height = SIZES[kind]
    return round(width * DPI), round(height * DPI)


LOADTEST_SIZE = (12.0, 4.5)
"""A load test's latency chart: 1200x450 px, one panel per track side by side."""


def loadtest_figure(latencies: Mapping[str, Sequence[tuple[float, float]]], *, service: str = "helloworld",
                    title: str = "") -> Figure:
    """Each track's response times over the load test (``(offset, seconds)`` points, as `hey` reports them):
    a dot per response and each second's median as a line, stable (blue) and canary (orange) side by side
    on the same scale. A track without responses says so in its panel."""
    tracks = list(latencies) or ["stable"]
    width, height = LOADTEST_SIZE
    fig = Figure(figsize=LOADTEST_SIZE, dpi=DPI, facecolor=BACKGROUND)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(tracks), sharey=True, squeeze=False,
                        gridspec_kw={"left": 0.85 / width, "right": 1 - 0.25 / width, "top": 1 - 0.75 / height,
                                     "bottom": 0.7 / height, "wspace": 0.1})[0]
    top = 1.0  # ms
    for ax, track in zip(axes, tracks, strict=True):
        style = CANARY if track == "canary" else STABLE
        ax.set_facecolor(PANEL)
        ax.grid(True, color=GRID, linewidth=0.8)
        ax.tick_params(colors=TEXT)
        ax.set_title(track, color=TEXT, fontsize=12)
        ax.set_xlabel("seconds since the start", color=TEXT)
        points = np.array(latencies.get(track) or [], dtype=float).reshape(-1, 2)
        if not len(points):
            ax.text(0.5, 0.5, "no responses", transform=ax.transAxes, ha="center", va="center", color=TEXT)
            continue
        ms = points[:, 1] * 1000.0
        ax.scatter(points[:, 0], ms, s=6, color=style["color"], alpha=0.35, linewidths=0)
        seconds = np.floor(points[:, 0])
        buckets = np.unique(seconds)
        medians = [float(np.median(ms[seconds == b])) for b in buckets]
        ax.plot(buckets + 0.5, medians, label=f"{track}: median per second", **style)
        ax.legend(loc="upper right", fontsize=9, frameon=False, labelcolor=TEXT)
        top = max(top, float(ms.max()))
    axes[0].set_ylim(0, top * 1.15)  # shared by the panels: one scale, room for the legend
    axes[0].set_ylabel("latency (ms)", color=TEXT)
    fig.suptitle(title or f"{service} · load test latency", color=TEXT, fontsize=14, fontweight="bold")
    return fig


def render_loadtest(latencies: Mapping[str, Sequence[tuple[float, float]]], **options: Any) -> bytes:
    """PNG bytes of :func:`loadtest_figure` (1200x450 px)."""
    return figure_png(loadtest_figure(latencies, **options))


async def render_loadtest_async(latencies: Mapping[str, Sequence[tuple[float, float]]], **options: Any) -> bytes:
    """:func:`render_loadtest` in a worker thread, so the event loop keeps serving."""
    return await asyncio.to_thread(render_loadtest, latencies, **options)

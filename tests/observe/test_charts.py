"""Chart rendering: size, panels, styles, markers, the no-traffic case and downsampling."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from matplotlib.image import imread

from bot.observe.charts import (
    MAX_POINTS,
    NO_TRAFFIC,
    Marker,
    build_figure,
    downsample,
    pixel_size,
    render_chart,
    render_chart_async,
)
from bot.observe.prom import Series, Snapshot

END = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)


def _snapshot(range_text: str = "1h", seconds: int = 3600, step: int = 15) -> Snapshot:
    start = END - timedelta(seconds=seconds)
    ts = np.arange(start.timestamp(), END.timestamp(), step)

    def series(version: str, values: np.ndarray) -> Series:
        return Series(version, tuple(zip(ts.tolist(), values.tolist(), strict=True)))

    n = len(ts)
    return Snapshot(
        range=range_text, start=start, end=END, step=step,
        rate=[series("v1", np.full(n, 20.0)), series("v2", np.full(n, 2.0))],
        success=[series("v1", np.full(n, 1.0)), series("v2", np.full(n, 0.7))],
        p99=[series("v1", np.full(n, 0.02)), series("v2", np.full(n, 0.05))],
    )


def _png_size(png: bytes) -> tuple[int, int]:
    image = imread(io.BytesIO(png), format="png")
    return image.shape[1], image.shape[0]


def test_all_kind_is_one_png_of_three_aligned_panels() -> None:
    png = render_chart(_snapshot(), stable_version="v1", canary_version="v2")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert _png_size(png) == pixel_size("all") == (1200, 900)
    fig = build_figure(_snapshot(), stable_version="v1", canary_version="v2")
    axes = fig.axes
    assert [ax.get_title(loc="left") for ax in axes] == ["Requests per second", "Success (non-5xx)", "Latency p99"]
    assert axes[0].get_shared_x_axes().joined(axes[0], axes[2])
    assert len({ax.get_position().x0 for ax in axes}) == 1  # aligned


def test_stable_and_canary_differ_by_colour_and_line_style() -> None:
    fig = build_figure(_snapshot(), stable_version="v1", canary_version="v2")
    for ax in fig.axes:
        stable, canary = ax.get_lines()[:2]
        assert stable.get_label() == "v1 (stable)" and canary.get_label() == "v2 (canary)"
        assert stable.get_color() != canary.get_color()
        assert stable.get_linestyle() != canary.get_linestyle()


def test_units_are_requests_percent_and_milliseconds() -> None:
    fig = build_figure(_snapshot())
    rate, success, latency = (ax.get_lines()[1].get_ydata() for ax in fig.axes)
    assert rate[0] == pytest.approx(2.0)
    assert success[0] == pytest.approx(70.0)
    assert latency[0] == pytest.approx(50.0)


def test_title_names_service_range_and_utc() -> None:
    fig = build_figure(_snapshot("6h", 6 * 3600), service="helloworld")
    title = fig.get_suptitle()
    assert "helloworld" in title and "6h" in title and "UTC" in title
    assert fig.axes[-1].get_xlabel() == "time (UTC)"


def test_markers_inside_the_range_are_drawn_on_every_panel() -> None:
    markers = [
        Marker(END - timedelta(minutes=30), "canary v2 10%", "canary"),
        Marker(END - timedelta(minutes=5), "rollback", "rollback"),
        Marker(END - timedelta(days=2), "old deploy", "deploy"),  # outside: skipped
    ]
    fig = build_figure(_snapshot(), markers=markers)
    for ax in fig.axes:
        assert len(ax.get_lines()) == 2 + 2  # two versions + two markers
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == ["canary v2 10%", "rollback"]


def test_analysed_windows_are_shaded_by_their_verdict_on_every_panel() -> None:
    from bot.observe.charts import WINDOW_COLOURS, Window

    windows = [Window(END - timedelta(minutes=20), END - timedelta(minutes=10), "10% pass", "pass"),
               Window(END - timedelta(minutes=10), END - timedelta(minutes=2), "25% fail", "fail"),
               Window(END - timedelta(days=2), END - timedelta(days=1), "old", "fail")]  # outside: skipped
    fig = build_figure(_snapshot(), windows=windows)
    for ax in fig.axes:
        spans = [p for p in ax.patches if p.get_alpha() == 0.12]
        assert [p.get_facecolor()[:3] for p in spans] == [
            tuple(int(WINDOW_COLOURS[state][i:i + 2], 16) / 255 for i in (1, 3, 5)) for state in ("pass", "fail")]
    labels = [t.get_text() for t in fig.axes[-1].texts]
    assert "10% pass" in labels and "25% fail" in labels and "old" not in labels


def test_no_traffic_is_written_on_empty_panels() -> None:
    empty = Snapshot(range="1h", start=END - timedelta(hours=1), end=END, step=10)
    fig = build_figure(empty)
    assert len(fig.axes) == 3
    for ax in fig.axes:
        assert ax.get_lines() == []
        assert [t.get_text() for t in ax.texts] == [NO_TRAFFIC]
    assert _png_size(render_chart(empty)) == (1200, 900)


@pytest.mark.parametrize(("kind", "title"), [("traffic", "Requests per second"),
                                             ("errors", "Success (non-5xx)"), ("latency", "Latency p99")])
def test_single_panel_kinds(kind: str, title: str) -> None:
    fig = build_figure(_snapshot(), kind=kind)
    assert [ax.get_title(loc="left") for ax in fig.axes] == [title]
    assert _png_size(render_chart(_snapshot(), kind=kind)) == pixel_size(kind) == (1200, 450)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        render_chart(_snapshot(), kind="pie")


def test_long_ranges_are_downsampled() -> None:
    week = _snapshot("7d", 7 * 86400, step=15)
    assert len(week.rate[0].points) == 40320
    fig = build_figure(week)
    for ax in fig.axes:
        for line in ax.get_lines():
            assert len(line.get_xdata()) <= MAX_POINTS


def test_downsample_keeps_means_spikes_and_gaps() -> None:
    ts = np.arange(1200, dtype=float)
    ys = np.ones(1200)
    ys[10] = 50.0
    ys[600:610] = np.nan
    t2, mean = downsample(ts, ys, limit=120, how="mean")
    _, peak = downsample(ts, ys, limit=120, how="max")
    assert len(t2) == len(mean) == 120 and t2[1] == 10
    assert mean[1] == pytest.approx(5.9) and peak[1] == 50.0
    assert np.isnan(mean[60]) and np.isnan(peak[60])
    short_t, short_y = downsample(ts[:50], ys[:50], limit=120)
    assert len(short_t) == 50 and np.array_equal(short_y, ys[:50], equal_nan=True)


async def test_render_off_the_event_loop() -> None:
    png = await render_chart_async(_snapshot(), kind="latency")
    assert _png_size(png) == (1200, 450)


def test_a_short_history_is_not_squeezed_into_the_right_edge() -> None:
    from datetime import UTC, datetime, timedelta

    from bot.observe.charts import build_figure, data_window
    from bot.observe.prom import Series, Snapshot, VersionStats

    end = datetime(2026, 11, 29, 14, 0, tzinfo=UTC)
    start = end - timedelta(hours=1)
    recent = tuple((end.timestamp() - 10 * i, 1.0) for i in range(12))  # the last two minutes only
    snap = Snapshot(range="1h", start=start, end=end, step=10.0, rate=[Series("v1", recent)],
                    success=[Series("v1", recent)], p99=[Series("v1", recent)],
                    latest=[VersionStats("v1", 1.0, 1.0, 0.001, 0.002, 0.003)])
    view_start, since = data_window(snap)
    assert since == end - timedelta(seconds=110)
    assert start < view_start < since
    fig = build_figure(snap)
    assert "data since 13:58:10" in fig.get_suptitle()
    left, right = fig.axes[-1].get_xlim()
    assert right - left < (1 / 24) * 0.2  # under a fifth of the hour is shown

    full = tuple((start.timestamp() + 60 * i, 1.0) for i in range(61))
    whole = Snapshot(range="1h", start=start, end=end, step=60.0, rate=[Series("v1", full)],
                     success=[Series("v1", full)], p99=[Series("v1", full)], latest=[])
    assert data_window(whole) == (start, None)
    assert "data since" not in build_figure(whole).get_suptitle()

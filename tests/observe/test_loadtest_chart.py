"""A load test's latency chart: each track's responses over time, side by side, as a PNG of a fixed size."""

from __future__ import annotations

from io import BytesIO

import numpy as np
from PIL import Image

from bot.observe import charts
from bot.release.load_chart import caption

STABLE_RGB, CANARY_RGB = (0x1F, 0x6F, 0xEB), (0xE8, 0x59, 0x0C)


def _points(seconds: int, rps: int, base: float) -> list[tuple[float, float]]:
    rng = np.random.default_rng(7)
    offsets = np.sort(rng.uniform(0, seconds, seconds * rps))
    return [(float(t), base + float(rng.exponential(base / 4))) for t in offsets]


def _image(png: bytes) -> Image.Image:
    image = Image.open(BytesIO(png))
    assert image.format == "PNG"
    return image.convert("RGB")


def _near(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 40) -> np.ndarray:
    return (np.abs(pixels.astype(int) - np.array(rgb)).sum(axis=2) < tolerance)


def test_both_tracks_are_drawn_side_by_side_in_their_colours() -> None:
    png = charts.render_loadtest({"stable": _points(20, 20, 0.004), "canary": _points(20, 20, 0.008)},
                                 service="greeter", title="greeter · load test")
    image = _image(png)
    assert image.size == (1200, 450)
    pixels = np.asarray(image)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # not a blank card
    stable, canary = _near(pixels, STABLE_RGB), _near(pixels, CANARY_RGB)
    assert stable.sum() > 500 and canary.sum() > 500, (stable.sum(), canary.sum())
    # stable on the left half, the canary on the right
    middle = image.size[0] // 2
    assert stable[:, :middle].sum() > 10 * stable[:, middle:].sum()
    assert canary[:, middle:].sum() > 10 * canary[:, :middle].sum()


def test_one_track_fills_the_chart_and_a_track_without_responses_says_so() -> None:
    one = _image(charts.render_loadtest({"canary": _points(5, 10, 0.003)}))
    assert one.size == (1200, 450) and _near(np.asarray(one), CANARY_RGB).sum() > 300
    empty = _image(charts.render_loadtest({"stable": [], "canary": _points(5, 10, 0.003)}))
    pixels = np.asarray(empty)
    assert _near(pixels, STABLE_RGB).sum() < 50  # nothing drawn for stable, only its "no responses" note
    figure = charts.loadtest_figure({"stable": [], "canary": [(0.5, 0.002)]})
    assert [t.get_text() for ax in figure.axes for t in ax.texts] == ["no responses"]


def test_the_caption_says_what_the_chart_shows_and_escapes_the_service() -> None:
    text = caption("a<b", 20, 5, ["stable", "canary"])
    assert "a&lt;b" in text and "20 req/s for 5 s to stable and canary" in text
    assert "side by side" in text and "median of each second" in text

"""Pictures of training drawn with Pillow: image grids and simple line charts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def image_grid(images: np.ndarray, columns: int = 8, gap: int = 2) -> Image.Image:
    """uint8 [N, H, W, 3] -> one picture, `columns` wide, on white."""
    n, height, width, _ = images.shape
    rows = -(-n // columns)
    grid = Image.new("RGB", (columns * (width + gap) + gap, rows * (height + gap) + gap), "white")
    for i, image in enumerate(images):
        row, column = divmod(i, columns)
        grid.paste(
            Image.fromarray(image), (gap + column * (width + gap), gap + row * (height + gap))
        )
    return grid


def line_chart(
    panels: list[tuple[str, dict[str, tuple[list[float], list[float]]]]],
    path: Path,
    size: tuple[int, int] = (720, 260),
) -> None:
    """One panel per (title, {label: (xs, ys)}), stacked vertically, saved as PNG."""
    width, height = size
    chart = Image.new("RGB", (width, height * len(panels)), "white")
    for index, (title, series) in enumerate(panels):
        draw_panel(ImageDraw.Draw(chart), (0, index * height, width, height), title, series)
    chart.save(path)


def draw_panel(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    title: str,
    series: dict[str, tuple[list[float], list[float]]],
) -> None:
    """Axes, min/max labels, a legend and one polyline per series."""
    left, top, width, height = box
    x0, y0, x1, y1 = left + 60, top + 24, left + width - 16, top + height - 24
    draw.rectangle((x0, y0, x1, y1), outline="#888888")
    draw.text((x0, top + 6), title, fill="black")
    points = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys, strict=True)]
    finite = [(x, y) for x, y in points if np.isfinite(y)]
    if not finite:
        return
    xs_all, ys_all = zip(*finite, strict=True)
    x_lo, x_hi = min(xs_all), max(xs_all) or 1
    y_lo, y_hi = min(ys_all), max(ys_all)
    y_hi = y_hi if y_hi > y_lo else y_lo + 1
    draw.text((4, y0), f"{y_hi:.3g}", fill="black")
    draw.text((4, y1 - 10), f"{y_lo:.3g}", fill="black")
    draw.text((x0, y1 + 6), f"{x_lo:g}", fill="black")
    draw.text((x1 - 40, y1 + 6), f"{x_hi:g}", fill="black")
    for k, (label, (xs, ys)) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        line = [
            (
                x0 + (x - x_lo) / max(x_hi - x_lo, 1e-9) * (x1 - x0),
                y1 - (y - y_lo) / (y_hi - y_lo) * (y1 - y0),
            )
            for x, y in zip(xs, ys, strict=True)
            if np.isfinite(y)
        ]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        elif line:
            draw.ellipse(
                (line[0][0] - 2, line[0][1] - 2, line[0][0] + 2, line[0][1] + 2), fill=colour
            )
        draw.text((x1 - 140, y0 + 6 + 14 * k), label, fill=colour)


def smooth(values: list[float], window: int = 50) -> list[float]:
    """Running mean over `window` points (shorter at the start)."""
    cumulative = np.cumsum(np.concatenate([[0.0], np.asarray(values, dtype=np.float64)]))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(0, ends - window)
    return list((cumulative[ends] - cumulative[starts]) / (ends - starts))

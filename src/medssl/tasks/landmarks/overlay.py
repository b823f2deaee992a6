"""Landmarks drawn on their radiograph: what ``predict`` writes beside each JSON and what the
report shows for the worst evaluated cases (annotated in green, predicted in red, a line
between the two of each landmark)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from medssl.atomic import write_atomic  # noqa: E402
from medssl.data.io import read_image  # noqa: E402

DPI = 110
PREDICTED, ANNOTATED = "#e41a1c", "#4daf4a"


def display_array(path: str | Path) -> np.ndarray:
    """The image as ``imshow`` shows it: rows = y, columns = x (RGB kept)."""
    image = read_image(path)
    array = np.asarray(image.array, dtype=np.float64)
    return np.swapaxes(array, 0, 1)


def draw_points(
    ax: plt.Axes,
    image: np.ndarray,
    predicted: np.ndarray | None,
    annotated: np.ndarray | None = None,
    names: Sequence[str] | None = None,
    title: str = "",
) -> None:
    """``image`` with ``(L, 2)`` continuous ``[x, y]`` points (pixel centres at ``i + 0.5``,
    shown at ``imshow``'s integer centres); NaN points are skipped; the first ``names`` label
    the predicted points."""
    height, width = image.shape[:2]
    ax.imshow(image, cmap="gray", extent=(0, width, height, 0), interpolation="nearest")
    if annotated is not None and predicted is not None:
        for a, p in zip(annotated, predicted, strict=True):
            if np.isfinite(a).all() and np.isfinite(p).all():
                ax.plot([a[0], p[0]], [a[1], p[1]], color="yellow", linewidth=0.8)
    if annotated is not None:
        ax.scatter(annotated[:, 0], annotated[:, 1], s=18, facecolors="none",
                   edgecolors=ANNOTATED, linewidths=1.2, label="annotated")  # fmt: skip
    if predicted is not None:
        ax.scatter(predicted[:, 0], predicted[:, 1], s=22, marker="x", color=PREDICTED,
                   linewidths=1.2, label="predicted")  # fmt: skip
        for i, point in enumerate(predicted if names else []):
            if np.isfinite(point).all():
                ax.annotate(str(names[i]), point, xytext=(3, 3), textcoords="offset points",
                            fontsize=6, color=PREDICTED)  # fmt: skip
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def save_png(fig: plt.Figure, out_png: Path) -> Path:
    """Write ``fig`` atomically (read back whole) and close it."""
    from PIL import Image

    def verify(tmp: Path) -> None:
        with Image.open(tmp) as png:
            png.load()

    try:
        fig.tight_layout()
        write_atomic(out_png, lambda tmp: fig.savefig(tmp, format="png"), verify)
    finally:
        plt.close(fig)
    return Path(out_png)


def write_point_overlay(
    out_png: Path,
    image_path: str | Path,
    predicted: np.ndarray,
    names: Sequence[str] | None = None,
    title: str = "",
) -> Path:
    """One image with its predicted landmarks, labelled by name (``predict``)."""
    image = display_array(image_path)
    height, width = image.shape[:2]
    fig, ax = plt.subplots(figsize=(6.0, 6.0 * height / max(width, 1)), dpi=DPI)
    draw_points(ax, image, np.asarray(predicted, dtype=np.float64), None, names, title)
    return save_png(fig, out_png)

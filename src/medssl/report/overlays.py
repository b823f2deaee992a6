"""Slice overlays for the run report: image | image + ground truth | image + prediction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from medssl.errors import file_error
from medssl.report.plots import DPI, _save


def plot_overlay(npz_path: Path, out_png: Path) -> Path:
    """Render one saved slice as image | image + ground truth | image + prediction.

    Classes are drawn as a translucent fill plus a contour in a fixed colour per class, so
    ground truth and prediction can be compared panel to panel; the legend uses
    ``class_names`` when the npz carries them. Raises :class:`DataError` for an unusable npz
    so the report can note it instead of failing.
    """
    npz_path, out_png = Path(npz_path), Path(out_png)
    arrays = _load_overlay(npz_path)
    image = arrays["image"]
    names = arrays.get("class_names")
    classes = sorted(
        {int(c) for key in ("label", "pred") if key in arrays for c in np.unique(arrays[key])} - {0}
    )
    fig, axes = plt.subplots(1, 3, figsize=(11.0, 4.0), dpi=DPI)
    low, high = _window(image)
    panels = ((None, "image"), ("label", "ground truth"), ("pred", "prediction"))
    for ax, (key, title) in zip(axes, panels, strict=True):
        ax.imshow(image, cmap="gray", vmin=low, vmax=high)
        ax.set_title(title)
        ax.set_axis_off()
        if key in arrays:
            _draw_classes(ax, arrays[key], classes)
        elif key is not None:
            ax.text(0.5, 0.5, f"no {title}", transform=ax.transAxes, ha="center", color="white")
    if classes:
        handles = [Patch(color=_class_colour(c), label=_class_name(c, names)) for c in classes]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8)
    fig.suptitle(_overlay_title(npz_path.stem, arrays), fontsize=10)
    fig.tight_layout(rect=(0, 0.07 if classes else 0, 1, 1))
    _save(fig, out_png, tight=False)
    return out_png


def _window(image: np.ndarray) -> tuple[float, float]:
    """1st-99th percentile grey window: CT/MR intensities have outliers that flatten contrast."""
    finite = image[np.isfinite(image)]
    if not finite.size:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(finite, [1, 99]))
    return low, high if high > low else low + 1.0


def _class_colour(label: int) -> tuple[float, float, float, float]:
    """The same colour for a class in every panel and in the legend."""
    return plt.get_cmap("tab10")((label - 1) % 10)


def _draw_classes(ax: plt.Axes, mask_array: np.ndarray, classes: Sequence[int]) -> None:
    """Translucent fill plus outline for each class present in ``mask_array``."""
    for label in classes:
        mask = mask_array == label
        if mask.any():
            colour = _class_colour(label)
            ax.imshow(np.ma.masked_where(~mask, mask), cmap=ListedColormap([colour]), alpha=0.3)
            ax.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=1.2)


def _load_overlay(npz_path: Path) -> dict[str, np.ndarray]:
    """Load and validate an overlay npz: 2-D ``image``, optional same-shape ``label``/``pred``."""
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as err:
        raise file_error(
            npz_path, f"cannot read overlay ({err})", "re-run medssl evaluate"
        ) from err
    fix = "re-run medssl evaluate to rewrite the overlays"
    image = arrays.get("image")
    if image is None or np.squeeze(image).ndim != 2:
        raise file_error(npz_path, "overlay needs a 2-D 'image' array", fix)
    arrays["image"] = np.squeeze(image).astype(float)
    for key in ("label", "pred"):
        if key in arrays:
            arrays[key] = np.squeeze(arrays[key]).astype(int)
            if arrays[key].shape != arrays["image"].shape:
                shapes = f"{arrays[key].shape} vs image {arrays['image'].shape}"
                raise file_error(npz_path, f"overlay '{key}' shape {shapes}", fix)
    return arrays


def _class_name(label: int, names: np.ndarray | None) -> str:
    """Name class ``label`` from ``class_names`` (with or without a background entry)."""
    if names is None:
        return f"class {label}"
    names = [str(n) for n in np.atleast_1d(names)]
    if len(names) > label:  # names[0] is the background
        return names[label]
    if len(names) >= label:  # names start at class 1
        return names[label - 1]
    return f"class {label}"


def _overlay_title(case: str, arrays: Mapping[str, np.ndarray]) -> str:
    """``case — slice 40 (axis 2)`` when the slice position was saved."""
    parts = [case]
    if "slice_index" in arrays:
        where = f"slice {int(arrays['slice_index'])}"
        if "axis" in arrays:
            where += f" (axis {int(arrays['axis'])})"
        parts.append(where)
    return " — ".join(parts)

"""What a pretraining run's encoder learned, as the report shows it (``RUN/pretext_summary.npz``).

VoCo: for a few validation volumes, the true overlap fractions of random crops with each base crop
beside the network's predicted ones (rows: crops, columns: base crops); an encoder that learned
positions makes the two look alike.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from medssl.report.html_parts import _figure  # noqa: E402
from medssl.report.plots import _save  # noqa: E402


def overlap_pairs(summary: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(true, predicted) overlap matrices per volume, in volume order."""
    pairs = []
    i = 0
    while f"overlap_true_{i}" in summary and f"overlap_predicted_{i}" in summary:
        pairs.append((summary[f"overlap_true_{i}"], summary[f"overlap_predicted_{i}"]))
        i += 1
    return pairs


def plot_overlaps(summary: dict[str, np.ndarray], out_png: Path) -> Path | None:
    pairs = overlap_pairs(summary)
    if not pairs:
        return None
    fig, axes = plt.subplots(len(pairs), 2, figsize=(8, 1.2 + 1.4 * len(pairs)), squeeze=False)
    for row, (true, predicted) in enumerate(pairs):
        error = float(np.abs(true - predicted).mean())
        for col, (matrix, name) in enumerate(((true, "true"), (predicted, "predicted"))):
            ax = axes[row][col]
            ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
            title = f"volume {row + 1}: {name}"
            ax.set_title(title + (f" (mean |error| {error:.3f})" if col else ""), fontsize=9)
            ax.set_xlabel("base crop")
            ax.set_ylabel("random crop")
            ax.set_yticks(range(matrix.shape[0]))
    _save(fig, out_png)
    return out_png


def pretext_section(run_dir: Path, plots_dir: Path, missing: list[str]) -> str:
    """The report's section for ``RUN/pretext_summary.npz`` ("" without one); an unreadable
    file is noted in ``missing``."""
    path = run_dir / "pretext_summary.npz"
    if not path.is_file():
        return ""
    try:
        with np.load(path) as saved:
            summary = {k: saved[k] for k in saved.files}
    except (OSError, ValueError) as err:
        missing.append(f"{path.name} is unreadable ({' '.join(str(err).split())})")
        return ""
    png = plot_overlaps(summary, plots_dir / "pretext_overlaps.png")
    if png is None:
        return ""
    caption = (
        "VoCo on fixed validation volumes: true overlap of each random crop with each base crop "
        "(left) and the encoder's prediction (right)"
    )
    return "\n".join(["<h2>What the encoder learned</h2>", _figure(png, caption)])

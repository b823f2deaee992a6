"""What the landmark method tests share: the mean-shape reference error a method must beat."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from medssl.engine.task import get_task
from medssl.metrics.landmarks import landmark_metrics


def mean_shape_mre(run: Path, data: Path) -> float:
    """The validation MRE (mm) of predicting, for every case, the mean of the training cases'
    landmarks: what a model that does not look at the image gets."""
    dataset = get_task("landmarks").load_dataset(data)
    split = json.loads((run / "split.json").read_text())
    train = np.stack([dataset.case(i).target for i in split["labeled"]])
    val = np.stack([dataset.case(i).target for i in split["val"]])
    guess = np.broadcast_to(np.nanmean(train, axis=0), val.shape)
    return landmark_metrics(guess, val, dataset.extra["landmarks"].spacing_mm)["mre"]

"""The heatmap baseline learns the phantom's landmarks; it refuses a classifier network."""

from __future__ import annotations

from pathlib import Path

import pytest

from medssl import api
from medssl.errors import ConfigError
from tests.methods.landmarks.tiny import mean_shape_mre


def test_heatmap_localises_the_phantom_landmarks(heatmap_landmark_run: Path, landmark_phantom):
    """150 seeded steps on 24 phantoms: the held-out MRE is well under the mean shape's and
    most points are within 4 mm (8 original pixels, 2 input pixels)."""
    result = api.evaluate(heatmap_landmark_run, landmark_phantom, only="val")
    reference = mean_shape_mre(heatmap_landmark_run, landmark_phantom)
    assert result["unit"] == "mm" and result["cases"] == 8
    assert result["mean"]["mre"] < 0.5 * reference
    assert result["mean"]["sdr_4mm"] > 0.8
    metrics = (heatmap_landmark_run / "metrics.csv").read_text().splitlines()[0]
    assert "train/heat" in metrics and "train/coord" in metrics and "val/mre" in metrics


def test_heatmap_needs_a_network_that_draws_maps(landmark_phantom: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="method 'heatmap' draws maps"):
        api.train(
            landmark_phantom,
            method="heatmap",
            task="landmarks",
            out=tmp_path / "r",
            profile="cpu",
            max_steps=1,
            config={"net": {"name": "resnet18"}, "data": {"patch_size": [64, 64]}},
        )
    assert not (tmp_path / "r").exists()

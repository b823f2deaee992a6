"""The landmark report plots: one bar per landmark, the worst cases drawn, gaps tolerated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from medssl.data.phantom.files import write_array
from medssl.report.landmarks import plot_landmark_errors, plot_landmark_overlay, plot_rule_confusion


def evaluation(names: list[str], image: Path | None = None) -> dict:
    rng = np.random.default_rng(0)
    rows = {n: {"mre": float(rng.uniform(1, 3)), "sd": 0.5} for n in names}
    return {
        "unit": "mm",
        "per_class": rows,
        "inter_annotator": {"per_landmark": {n: 0.4 for n in names}},
        "overlays": [
            {
                "case": "a",
                "image": str(image),
                "target": [[10.0, 12.0], None],
                "pred": [[11.0, 12.5], [20.0, 5.0]],
                "mre": 1.2,
            }
        ],
    }


def test_errors_per_landmark_even_for_a_contour_set(tmp_path: Path):
    few = plot_landmark_errors(evaluation(["sella", "nasion"]), tmp_path / "few.png")
    many = plot_landmark_errors(evaluation([f"lung_{i}" for i in range(166)]), tmp_path / "m.png")
    with Image.open(few) as a, Image.open(many) as b:
        assert a.size[0] < b.size[0] <= 16 * 110 + 1  # 166 bars, at most 16 inches wide
    assert plot_landmark_errors({"per_class": {}}, tmp_path / "none.png") is None


def test_overlay_draws_what_it_can_read(tmp_path: Path):
    image = tmp_path / "case.png"
    write_array(image, np.zeros((32, 24), dtype=np.uint8))
    assert plot_landmark_overlay(evaluation(["a", "b"], image), tmp_path / "o.png").is_file()
    moved = evaluation(["a", "b"], tmp_path / "gone.png")
    assert plot_landmark_overlay(moved, tmp_path / "g.png") is None
    assert not (tmp_path / "g.png").exists()


def test_the_rule_confusion_is_drawn_only_for_a_run_with_a_class_rule(tmp_path: Path):
    judged = {
        "skeletal_class": {
            "class_names": ["Class I", "Class II", "Class III"],
            "from_landmarks": {"confusion_matrix": [[3, 1, 0], [0, 2, 0], [1, 0, 5]]},
        }
    }
    png = plot_rule_confusion(judged, tmp_path / "rule.png")
    with Image.open(png) as image:
        assert image.size[0] > 200
    assert plot_rule_confusion(evaluation(["a"]), tmp_path / "none.png") is None

"""``evaluate``, ``predict`` and the report of a landmarks run: original pixels, mm, annotators."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medssl import api
from medssl.data.io import read_landmarks
from medssl.errors import DataError
from medssl.metrics.landmarks import landmark_metrics
from tests.test_cli import run_cli


@pytest.fixture
def run(heatmap_landmark_run: Path, tmp_path: Path) -> Path:
    """A copy of the shared run that a test may write its evaluation and report into."""
    return Path(shutil.copytree(heatmap_landmark_run, tmp_path / "run"))


def test_evaluate_scores_in_mm_against_the_mean_and_each_annotator(run: Path, landmark_phantom):
    result = api.evaluate(run, landmark_phantom, only="val")
    assert result["task"] == "landmarks" and result["unit"] == "mm"
    assert result["units"] == {"mre": "mm", "sd": "mm"}
    assert (
        set(result["per_class"]) == set(result["landmark_names"]) and len(result["per_class"]) == 8
    )
    assert set(result["per_annotator"]) == {"annotator1", "annotator2"}
    # the phantom's annotator2 is annotator1 plus N(0, 0.7 px) per axis: a mean radial
    # disagreement of 0.7 sqrt(pi / 2) px = 0.44 mm at 0.5 mm per pixel
    inter = result["inter_annotator"]
    assert inter["between"] == ["annotator1", "annotator2"] and inter["cases"] == 8
    assert 0.3 < inter["mean"]["mre"] < 0.6
    assert set(inter["per_landmark"]) == set(result["landmark_names"])
    # heatmap predicts no class: no classification metrics, even though the phantom has classes
    assert "accuracy" not in result["mean"] and "class_names" not in result
    assert (run / "evaluation.json").is_file()


def test_evaluate_maps_points_back_to_the_original_pixels(run: Path, landmark_phantom: Path):
    """The overlay points are in the 256-pixel image (the network saw 64 pixels) and give the
    case's MRE again; ``--units pixel`` gives the same errors in pixels (0.5 mm each)."""
    result = api.evaluate(run, landmark_phantom, only="val")
    marks = read_landmarks(landmark_phantom / "landmarks.json")
    worst = result["overlays"][0]
    assert len(result["overlays"]) == 4 and worst["mre"] == max(
        c["mre"] for c in result["per_case"].values()
    )
    pred = np.array(worst["pred"], dtype=float)
    truth = marks.reference(worst["case"])
    assert pred.min() >= 0 and pred.max() <= 256 and pred.max() > 64
    assert landmark_metrics(pred, truth, 0.5)["mre"] == pytest.approx(worst["mre"], abs=1e-3)
    in_pixels = api.evaluate(run, landmark_phantom, only="val", units="voxel")
    assert in_pixels["unit"] == "pixel"
    assert in_pixels["mean"]["mre"] == pytest.approx(result["mean"]["mre"] / 0.5)


def test_predict_writes_json_and_overlay_per_image(run: Path, landmark_phantom: Path, tmp_path):
    images = sorted((landmark_phantom / "images").iterdir())[:2]
    written = api.predict(run, images, tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(
        [f"{p.stem}.json" for p in images] + [f"{p.stem}.png" for p in images]
    )
    marks = read_landmarks(landmark_phantom / "landmarks.json")
    doc = json.loads((tmp_path / "out" / f"{images[0].stem}.json").read_text())
    assert doc["image_size_wh"] == [256, 256] and list(doc["landmarks"]) == marks.names
    points = np.array([doc["landmarks"][n] for n in marks.names])
    assert landmark_metrics(points, marks.reference(images[0].stem), 0.5)["mre"] < 6.0
    assert "class_probabilities" not in doc  # the heatmap baseline classifies nothing
    from PIL import Image

    with Image.open(tmp_path / "out" / f"{images[0].stem}.png") as png:
        assert png.size[0] > 200


def test_predict_leaves_nothing_when_one_input_is_bad(run: Path, landmark_phantom, tmp_path):
    good = sorted((landmark_phantom / "images").iterdir())[0]
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    out = tmp_path / "out"
    with pytest.raises(DataError, match="broken.png"):
        api.predict(run, [good, bad], out)
    assert not out.exists()
    out.mkdir()
    (out / f"{good.stem}.png").write_bytes(b"an earlier file")
    with pytest.raises(Exception, match="exists"):
        api.predict(run, [good], out)
    assert sorted(p.name for p in out.iterdir()) == [f"{good.stem}.png"]


def test_predict_refuses_a_volume_in_one_line(
    monkeypatch, capsys, run: Path, seg_phantom, tmp_path
):
    volume = next((seg_phantom / "imagesTr").iterdir())
    code, _, err = run_cli(
        monkeypatch, capsys, "predict", volume, "--run", run, "--out", tmp_path / "o"
    )
    assert code == 2 and err.strip().count("\n") == 0
    assert "3D image" in err and str(volume) in err
    assert not (tmp_path / "o").exists()


def test_evaluate_refuses_other_landmarks(run: Path, shared_data: Path):
    from medssl.errors import CheckpointError

    with pytest.raises(CheckpointError, match="names 19 landmarks"):
        api.evaluate(run, shared_data / "cephalometric")


def test_report_draws_errors_per_landmark_and_the_worst_cases(run: Path, landmark_phantom):
    from medssl.report import build_report

    api.evaluate(run, landmark_phantom, only="val")
    page = build_report(run).read_text()
    plots = {p.name for p in (run / "plots").iterdir()}
    assert "landmark_errors_evaluation.png" in plots and "landmark_overlay_evaluation.png" in plots
    assert "radial error per landmark" in page and "worst cases" in page
    assert "roc_evaluation.png" not in plots  # nothing classified, nothing drawn


def test_predict_takes_back_the_json_files_when_an_overlay_fails(
    run: Path, landmark_phantom: Path, tmp_path: Path, monkeypatch
):
    from medssl.errors import OutputError
    from medssl.tasks.landmarks import inference

    def full_disk(target: Path, *args, **kwargs) -> Path:
        raise OutputError(f"{target}: cannot be written: disk full")

    monkeypatch.setattr(inference, "write_point_overlay", full_disk)
    images = sorted((landmark_phantom / "images").iterdir())[:2]
    with pytest.raises(OutputError, match="disk full"):
        api.predict(run, images, tmp_path / "out")
    assert not (tmp_path / "out").exists()

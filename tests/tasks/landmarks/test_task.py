"""The landmarks task reads the landmark layouts, sizes the input and says what is wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medssl import api
from medssl.engine.config import RunConfig
from medssl.engine.task import get_task
from medssl.errors import ConfigError, DataError
from medssl.tasks.landmarks.config import input_size
from tests.test_cli import run_cli

TASK = get_task("landmarks")


def test_cephalograms_train_on_the_mean_and_keep_both_annotators(shared_data: Path):
    dataset = TASK.load_dataset(shared_data / "cephalometric")
    assert dataset.layout == "landmarks" and len(dataset.labeled) == 100
    case = dataset.case("ceph_001")
    annotations = case.meta["annotations"]
    assert set(annotations) == {"annotator1", "annotator2", "mean"}
    np.testing.assert_allclose(case.target, annotations["mean"])
    marks = dataset.extra["landmarks"]
    assert marks.spacing_mm == 0.288 and len(marks.names) == 19 and dataset.spacing_known
    # ceph_002: annotator2 gave no l18, so the mean is annotator1's point there
    two = dataset.case("ceph_002").meta["annotations"]
    assert np.isnan(two["annotator2"][17]).all()
    np.testing.assert_allclose(two["mean"][17], two["annotator1"][17])


def test_jsrt_contours_are_read_beside_its_segmentation_index(shared_data: Path):
    """jsrt is an MSD folder first: the task takes its landmarks.json, not its masks."""
    dataset = TASK.load_dataset(shared_data / "jsrt")
    assert dataset.layout == "msd" and dataset.labels == {}
    assert all(c.label is None for c in dataset.cases)
    assert len(dataset.labeled) == 185  # jsrt_JPCLN016 has no landmarks
    assert dataset.case("jsrt_JPCLN016").target is None
    assert dataset.case("jsrt_JPCLN001").target.shape == (166, 2)
    assert dataset.extra["landmarks"].spacing_mm == 0.7


def test_the_input_keeps_the_aspect_ratio_in_multiples_of_32(shared_data: Path):
    assert input_size(670, 836, 256) == [192, 256]  # cephalograms, portrait
    assert input_size(512, 512, 256) == [256, 256]
    assert input_size(10, 500, 64) == [32, 64]  # never below one multiple
    dataset = TASK.load_dataset(shared_data / "cephalometric")
    cfg = RunConfig.model_validate({"task": "landmarks", "data": {"input_side": 512}})
    assert TASK.fit_config(cfg, dataset).data.patch_size == [416, 512]


def test_dataset_info_names_landmarks_classes_and_spacing(landmark_phantom: Path):
    dataset = TASK.load_dataset(landmark_phantom)
    cfg = RunConfig.model_validate({"task": "landmarks", "data": {"patch_size": [64, 64]}})
    info = TASK.dataset_info(dataset, cfg)
    assert info["num_landmarks"] == 8 and info["landmark_names"][0] == "sella"
    assert info["class_names"] == ["normal", "abnormal"] and info["landmark_class_names"] == []
    assert info["spacing_mm"] == 0.5 and info["flip_pairs"] == [] and info["in_channels"] == 1
    split = TASK.make_split(dataset, cfg)
    assert len(split["val"]) == 8 and len(split["labeled"]) == 24  # the phantom's own split


def edited(phantom: Path, out: Path, **changes) -> Path:
    shutil.copytree(phantom, out)
    doc = json.loads((out / "landmarks.json").read_text())
    doc.update(changes)
    (out / "landmarks.json").write_text(json.dumps(doc))
    return out


def test_declared_flip_pairs_reach_the_run_and_bad_ones_are_named(
    landmark_phantom: Path, tmp_path: Path
):
    cfg = RunConfig.model_validate({"task": "landmarks", "data": {"patch_size": [64, 64]}})
    good = edited(landmark_phantom, tmp_path / "good", flip_pairs=[["gonion", "menton"]])
    info = TASK.dataset_info(TASK.load_dataset(good), cfg)
    assert info["flip_pairs"] == [[6, 7]]
    bad = edited(landmark_phantom, tmp_path / "bad", flip_pairs=[["gonion", "chin"]])
    with pytest.raises(DataError, match="flip_pairs entry .* is not two landmark names"):
        TASK.dataset_info(TASK.load_dataset(bad), cfg)
    short = edited(
        landmark_phantom,
        tmp_path / "short",
        landmark_class_names=["a"],
        landmark_classes={"lm_000": [0, None]},
    )
    with pytest.raises(DataError, match="one entry per landmark"):
        TASK.load_dataset(short)


def test_a_set_without_landmarks_is_one_line(monkeypatch, capsys, seg_phantom, tmp_path: Path):
    code, _, err = run_cli(
        monkeypatch, capsys, "train", "--data", seg_phantom, "--out", tmp_path / "r",
        "--task", "landmarks", "--method", "heatmap", "--profile", "cpu",
    )  # fmt: skip
    assert code == 2 and err.strip().count("\n") == 0
    assert str(seg_phantom) in err and "holds no landmarks" in err
    assert not (tmp_path / "r").exists()


def test_3d_input_and_settings_are_refused(landmark_phantom: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="the landmarks task is 2D"):
        TASK.network_dims(TASK.load_dataset(landmark_phantom), 3)
    with pytest.raises(ConfigError, match="give \\[X, Y\\]"):
        api.train(
            landmark_phantom, method="heatmap", task="landmarks", out=tmp_path / "r",
            profile="cpu", max_steps=1, config={"data": {"patch_size": [64, 64, 64]}},
        )  # fmt: skip
    assert not (tmp_path / "r").exists()


def test_both_profiles_resolve(landmark_phantom: Path):
    from medssl.engine.module import get_method
    from medssl.engine.profiles import resolve_config

    dataset = TASK.load_dataset(landmark_phantom)
    for profile, side in (("cpu", 256), ("gpu", 512)):
        for method, net in (("heatmap", "unet"), ("ccf", "resnet18")):
            cfg = resolve_config(
                task="landmarks",
                method_cls=get_method("landmarks", method),
                dataset=dataset,
                profile=profile,
                file_values={},
                flag_values={"method": method, "task": "landmarks"},
            )
            assert cfg.data.patch_size == [side, side] and cfg.net.name == net
            assert cfg.data.augment and cfg.optim.name == "adam"

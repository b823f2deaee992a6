"""Phantom datasets: layouts on disk, determinism, no partial output, and "hard enough"."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from medssl.data import phantom
from medssl.data.io import read_image
from medssl.data.phantom import files as phantom_files
from medssl.data.phantom import make_phantom
from medssl.errors import ConfigError, DataError

SEG_CASES, CLS_CASES, LM_CASES = 4, 20, 8


def voxels(path: Path) -> np.ndarray:
    """Voxel array as stored, read independently of medssl's own reader."""
    return np.asarray(nib.load(path).dataobj)


@pytest.fixture(scope="module")
def seg3d(tmp_path_factory) -> Path:
    return make_phantom(tmp_path_factory.mktemp("p") / "seg3d", "seg3d", cases=SEG_CASES)


@pytest.fixture(scope="module")
def cls3d(tmp_path_factory) -> Path:
    return make_phantom(tmp_path_factory.mktemp("p") / "cls3d", "cls3d", cases=CLS_CASES)


@pytest.fixture(scope="module")
def landmark2d(tmp_path_factory) -> Path:
    return make_phantom(tmp_path_factory.mktemp("p") / "lm", "landmark2d", cases=LM_CASES)


def labelled_seg_cases(root: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for label_path in sorted((root / "labelsTr").iterdir()):
        case = label_path.name.removesuffix(".nii.gz")
        image = voxels(root / "imagesTr" / f"{case}_0000.nii.gz").astype(np.float64)
        pairs.append((image, voxels(label_path)))
    return pairs


# ------------------------------------------------------------------------------------------
# pure helpers
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [1.0, 5.0])
def test_smooth_field_is_standardised_smooth_and_deterministic(sigma):
    field = phantom.smooth_field((32, 30, 28), np.random.default_rng(1), sigma)
    again = phantom.smooth_field((32, 30, 28), np.random.default_rng(1), sigma)
    assert field.shape == (32, 30, 28) and field.dtype == np.float32
    assert abs(field.mean()) < 1e-4 and abs(field.std() - 1) < 1e-4
    np.testing.assert_array_equal(field, again)
    neighbour_corr = np.mean(field[1:] * field[:-1])
    assert neighbour_corr > 0.5  # smooth, not white noise


def test_bias_keeps_air_and_noise_has_requested_sd():
    rng = np.random.default_rng(0)
    gain = phantom.bias_field((40, 40), rng, 0.01, 8.0)
    assert abs(gain.mean() - 1) < 1e-3 and 0.005 < gain.std() < 0.02
    image = np.array([phantom.AIR_HU, 40.0])
    np.testing.assert_allclose(phantom.apply_bias(image, np.array([1.05, 1.05])), [-1000, 92])
    noisy = phantom.add_noise(np.zeros((200, 200), np.float32), rng, 25.0)
    assert abs(noisy.std() - 25) < 1
    assert phantom.to_int16_hu(np.array([-5000.0, 1.6, 9000.0])).tolist() == [-1024, 2, 3071]


def test_shape_primitives():
    grid = phantom.mm_grid((21, 21, 11), (1.0, 1.0, 2.0))
    assert grid.shape == (3, 21, 21, 11) and grid[:, 10, 10, 5].tolist() == [0, 0, 0]
    level = phantom.ellipsoid_level(grid, (0, 0, 0), (10.0, 5.0, 10.0))
    assert level[10, 10, 5] == 0 and level[20, 10, 5] == pytest.approx(1.0)
    assert level[10, 15, 5] == pytest.approx(1.0) and level[10, 10, 10] == pytest.approx(1.0)
    rot = phantom.rotation_matrix((0.3, -0.2, 1.1))
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    turned = phantom.ellipsoid_level(grid, (0, 0, 0), (10.0, 5.0, 10.0), rot)
    assert phantom.blob(turned).sum() == pytest.approx(phantom.blob(level).sum(), rel=0.15)
    dist = phantom.segment_distance(grid[:2, :, :, 0], (0, 0), (5, 0))
    assert dist[10, 10] == 0 and dist[20, 10] == pytest.approx(5) and dist[12, 14] == 4


def test_balanced_labels_and_stratified_split():
    labels = phantom.balanced_labels(20, 0, "cls3d")
    assert labels.sum() == 10 and 0 < labels[::2].sum() < 10
    np.testing.assert_array_equal(phantom.balanced_labels(7, 0, "cls3d"), labels[:7])
    assert not np.array_equal(phantom.balanced_labels(20, 1, "cls3d"), labels)
    split = np.array(phantom.stratified_split(labels, np.random.default_rng(0)))
    for cls in (0, 1):
        assert (split[labels == cls] == "val").sum() == 2


# ------------------------------------------------------------------------------------------
# make_phantom: contract shared by all kinds
# ------------------------------------------------------------------------------------------


def test_out_existing_and_not_empty_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="exists; choose a new OUT or delete it"):
        make_phantom(tmp_path / "out", "landmark2d", cases=1)
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_empty_out_is_used(tmp_path):
    (tmp_path / "out").mkdir()
    assert (make_phantom(tmp_path / "out", "landmark2d", cases=1) / "landmarks.json").is_file()


def test_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    real = phantom_files.write_image

    def flaky(path, image):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        real(path, image)

    monkeypatch.setattr(phantom_files, "write_image", flaky)  # every kind writes through it
    with pytest.raises(OSError, match="disk full"):
        make_phantom(tmp_path / "out", "seg3d", cases=2)
    assert list(tmp_path.iterdir()) == []


def test_bad_kind_and_case_count():
    with pytest.raises(ConfigError, match="unknown phantom kind"):
        make_phantom("/nonexistent/x", "seg2d")
    with pytest.raises(ConfigError, match="too few"):
        make_phantom("/nonexistent/x", "cls3d", cases=1)
    with pytest.raises(ConfigError, match="seed"):
        make_phantom("/nonexistent/x", "cls3d", seed=-1)


def test_same_seed_identical_other_seed_different(tmp_path, seg3d):
    small = make_phantom(tmp_path / "again", "seg3d", cases=2)  # a prefix of the 4-case fixture
    other = make_phantom(tmp_path / "other", "seg3d", cases=2, seed=1)
    for name in ("imagesTr/phantom_001_0000.nii.gz", "labelsTr/phantom_000.nii.gz"):
        np.testing.assert_array_equal(voxels(seg3d / name), voxels(small / name))
        assert not np.array_equal(voxels(seg3d / name), voxels(other / name))


def test_landmark_and_cls_determinism(tmp_path, cls3d, landmark2d):
    lm = make_phantom(tmp_path / "lm", "landmark2d", cases=LM_CASES)
    png = "images/lm_002.png"
    np.testing.assert_array_equal(
        np.asarray(Image.open(landmark2d / png)), np.asarray(Image.open(lm / png))
    )
    assert json.loads((lm / "landmarks.json").read_text()) == json.loads(
        (landmark2d / "landmarks.json").read_text()
    )
    name = "images/case_001.nii.gz"
    prefix = make_phantom(tmp_path / "prefix", "cls3d", cases=2)
    np.testing.assert_array_equal(voxels(cls3d / name), voxels(prefix / name))
    other = make_phantom(tmp_path / "other", "cls3d", cases=2, seed=3)
    assert not np.array_equal(voxels(cls3d / name), voxels(other / name))


# ------------------------------------------------------------------------------------------
# seg3d
# ------------------------------------------------------------------------------------------


def test_seg3d_layout(seg3d):
    meta = json.loads((seg3d / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "CT"} and meta["file_ending"] == ".nii.gz"
    assert meta["labels"] == {"background": 0, "liver": 1, "kidney": 2, "lesion": 3}
    assert meta["tensorImageSize"] == "3D" and meta["description"]
    images = sorted(p.name for p in (seg3d / "imagesTr").iterdir())
    labels = sorted(p.name for p in (seg3d / "labelsTr").iterdir())
    assert images == [f"phantom_{i:03d}_0000.nii.gz" for i in range(SEG_CASES)]
    assert labels == ["phantom_000.nii.gz", "phantom_001.nii.gz"]  # the rest: unlabelled pool
    assert meta["numTraining"] == len(labels)
    readme = (seg3d / "README.md").read_text()
    assert "--kind seg3d" in readme and "seed: 0" in readme


def test_seg3d_geometry_stored(seg3d):
    image = nib.load(seg3d / "imagesTr/phantom_000_0000.nii.gz")
    label = nib.load(seg3d / "labelsTr/phantom_000.nii.gz")
    assert image.shape == phantom.SEG_SHAPE and image.get_data_dtype() == np.int16
    np.testing.assert_allclose(image.header.get_zooms(), phantom.SEG_SPACING)
    np.testing.assert_allclose(image.affine, label.affine)
    assert np.abs(image.affine[:3, 3]).min() > 1.0  # a real origin, not 0 or the corner index
    other = nib.load(seg3d / "imagesTr/phantom_001_0000.nii.gz")
    assert not np.allclose(image.affine[:3, 3], other.affine[:3, 3])
    back = read_image(seg3d / "labelsTr/phantom_000.nii.gz")  # medssl's own reader agrees
    assert back.spacing == pytest.approx(phantom.SEG_SPACING)
    np.testing.assert_allclose(back.affine_ras(), label.affine, atol=1e-4)


def test_seg3d_intensities_and_labels(seg3d):
    present = set()
    for image, label in labelled_seg_cases(seg3d):
        present |= set(np.unique(label).tolist())
        corner = image[:6, :6, :]
        assert abs(np.median(corner) - phantom.AIR_HU) < 10  # air outside the body
        assert image[label > 0].min() > -300  # every label lies inside the body
        for organ in (1, 2):
            assert 0 < image[label == organ].mean() < 100
        lesion = label == 3
        border = ndimage.binary_dilation(lesion) & ~lesion
        assert np.isin(label[border], (1, 2)).mean() > 0.5  # lesions sit inside organs
        assert image.max() > 400  # the spine
    assert present == {0, 1, 2, 3}


def test_seg3d_is_not_solved_by_a_threshold(seg3d):
    """The lesion class needs context: no global HU threshold segments it."""
    for image, label in labelled_seg_cases(seg3d):
        assert (label == 1).sum() > 2000 and (label == 2).sum() > 500  # organs of clear size
        lesion = label == 3
        best = 0.0
        for t in np.arange(-150, 200, 5):
            for pred in (image < t, image > t):
                pred &= image > -500
                best = max(best, 2 * (pred & lesion).sum() / (pred.sum() + lesion.sum()))
        assert best < 0.5


# ------------------------------------------------------------------------------------------
# cls3d
# ------------------------------------------------------------------------------------------


def manifest(root: Path) -> list[dict[str, str]]:
    with (root / "manifest.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_cls3d_layout_and_balance(cls3d):
    rows = manifest(cls3d)
    assert list(rows[0]) == ["id", "image", "mask", "label", "split"]
    assert [r["id"] for r in rows] == [f"case_{i:03d}" for i in range(CLS_CASES)]
    labels = np.array([int(r["label"]) for r in rows])
    split = np.array([r["split"] for r in rows])
    assert labels.sum() == CLS_CASES // 2
    for cls in (0, 1):
        assert (split[labels == cls] == "val").sum() == round(0.2 * CLS_CASES / 2)
    meta = json.loads((cls3d / "dataset.json").read_text())
    assert meta["labels"] == {"benign": 0, "malignant": 1} and meta["description"]
    image = nib.load(cls3d / rows[0]["image"])
    assert image.shape == phantom.CLS_SHAPE and image.get_data_dtype() == np.int16


def test_cls3d_feature_differs_but_overlaps(cls3d):
    stds = {0: [], 1: []}
    for row in manifest(cls3d):
        mask = voxels(cls3d / row["mask"]) > 0
        assert mask.sum() > 50
        image = voxels(cls3d / row["image"]).astype(np.float64)
        assert 0 < np.median(image[~mask]) < 100  # CT-like soft-tissue background
        stds[int(row["label"])].append(image[mask].std())
    assert np.mean(stds[1]) > np.mean(stds[0])
    values = np.array(stds[0] + stds[1])
    truth = np.array([0] * len(stds[0]) + [1] * len(stds[1]))
    best = max(((values > t) == truth).mean() for t in values)
    assert best < 1.0  # texture alone does not separate the classes


# ------------------------------------------------------------------------------------------
# landmark2d
# ------------------------------------------------------------------------------------------


def test_landmark2d_layout(landmark2d):
    meta = json.loads((landmark2d / "landmarks.json").read_text())
    ids = [f"lm_{i:03d}" for i in range(LM_CASES)]
    assert sorted(meta["cases"]) == ids
    assert len(meta["landmark_names"]) == 8 and meta["pixel_spacing_mm"] == 0.5
    assert meta["image_size_wh"] == [256, 256] and "[i, i+1)" in meta["coordinates"]
    assert meta["split"] == {c: "val" if k % 4 == 3 else "train" for k, c in enumerate(ids)}
    assert meta["class_names"] == ["normal", "abnormal"]
    assert set(meta["classes"].values()) == {0, 1}
    image = np.asarray(Image.open(landmark2d / "images/lm_000.png"))
    assert image.shape == (256, 256) and image.dtype == np.uint8 and image.std() > 10
    for case in meta["cases"].values():
        a1, a2 = np.array(case["annotator1"]), np.array(case["annotator2"])
        assert a1.shape == (8, 2) and ((a1 > 0) & (a1 < 256)).all()
        assert np.linalg.norm(a1 - a2, axis=1).max() < 4
        np.testing.assert_allclose(case["mean"], (a1 + a2) / 2, atol=2e-3)


def test_landmark2d_landmarks_sit_on_bright_structures(landmark2d):
    """Bar tips and the mandible corner are on bone: brighter than the image's median."""
    meta = json.loads((landmark2d / "landmarks.json").read_text())
    names = meta["landmark_names"]
    on_bone = [names.index(n) for n in ("nasal_tip", "condylion", "gonion", "menton")]
    for case, points in meta["cases"].items():
        image = np.asarray(Image.open(landmark2d / "images" / f"{case}.png"), dtype=float)
        for x, y in np.array(points["annotator1"])[on_bone]:
            assert image[int(y), int(x)] > np.median(image) + 40


def test_landmark2d_class_is_in_the_geometry(landmark2d):
    meta = json.loads((landmark2d / "landmarks.json").read_text())
    names = meta["landmark_names"]
    ratios = {0: [], 1: []}
    for case, points in meta["cases"].items():
        p = dict(zip(names, np.array(points["annotator1"]), strict=True))
        jaw = np.linalg.norm(p["menton"] - p["gonion"])
        ratios[meta["classes"][case]].append(jaw / np.linalg.norm(p["nasion"] - p["sella"]))
    assert min(ratios[1]) > max(ratios[0])


# ------------------------------------------------------------------------------------------
# the layout reader recognises every phantom
# ------------------------------------------------------------------------------------------


def test_load_dataset_recognises_each_phantom(seg3d, cls3d, landmark2d):
    layouts = pytest.importorskip("medssl.data.layouts")
    seg = layouts.load_dataset(seg3d)
    assert seg.layout == "nnunet" and len(seg.cases) == SEG_CASES
    assert sum(c.has_label for c in seg.cases) == 2
    cls = layouts.load_dataset(cls3d)
    assert cls.layout == "manifest" and len(cls.cases) == CLS_CASES
    assert sorted({c.target for c in cls.cases}) == [0, 1]
    lm = layouts.load_dataset(landmark2d)
    assert lm.layout == "landmarks" and len(lm.cases) == LM_CASES
    assert {c.meta["class"] for c in lm.cases} == {0, 1}

"""MONAI pipelines per task: the defaults do what they say on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import CacheDataset, MetaTensor, get_track_meta
from monai.transforms import Compose

from medssl.data.io import read_image, read_landmarks, read_npz
from medssl.data.landmark_transforms import landmark_pipeline
from medssl.data.transforms import (
    classification_pipeline,
    intensity_kind,
    load_and_normalise,
    patch_prefix,
    random_patches,
)


def test_minmax_is_the_ssl4mis_acdc_scaling(shared_data: Path):
    """Per volume to [0, 1]: the shared ACDC levels k / K become the source h5's k / K."""
    path = shared_data / "acdc" / "imagesTr" / "acdc_patient002_frame01_0000.nii.gz"
    out = Compose(load_and_normalise(False, intensity="minmax"))({"image": str(path)})["image"]
    levels = read_image(path).array.astype(np.float32)
    expected = (levels - levels.min()) / (levels.max() - levels.min())
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0
    assert np.allclose(np.sort(out.numpy().ravel()), np.sort(expected.ravel()), atol=1e-6)
    assert np.isclose(float(out.mean()), float(expected.mean()), atol=1e-6)


def test_ct_window_maps_hu_to_unit_range(shared_data: Path):
    path = shared_data / "smoke" / "clara_spleen8"
    record = {
        "image": str(path / "spleen_8_image.nii.gz"),
        "label": str(path / "spleen_8_label.nii.gz"),
    }
    out = Compose(load_and_normalise(True, intensity="ct"))(record)
    image = out["image"]
    assert image.shape == (1, 512, 512, 32) and out["label"].shape == image.shape
    assert float(image.min()) == 0.0 and float(image.max()) == 1.0
    hu = read_image(path / "spleen_8_image.nii.gz").array
    assert np.isclose((hu <= -175).mean(), (image.numpy() == 0).mean(), atol=1e-3)


def test_mri_is_z_scored_and_resampled(shared_data: Path):
    image = shared_data / "la2018" / "imagesTr" / "la_06SR5RBREL16DQ6M8LWS_0000.nii.gz"
    out = Compose(load_and_normalise(False, intensity="mri", target_spacing=[1.25, 1.25, 1.25]))(
        {"image": str(image)}
    )["image"]
    native = read_image(image).spatial_shape
    assert out.shape[1:] == tuple(round(n / 2) for n in native)  # 0.625 mm -> 1.25 mm
    assert abs(float(out.mean())) < 0.05 and abs(float(out.std()) - 1.0) < 0.05


def test_intensity_kind_reads_the_channel_names():
    assert intensity_kind({"0": "CT"}, "auto") == "ct"
    assert intensity_kind({"0": "LGE-MRI"}, "auto") == "mri"
    assert intensity_kind({"0": "CT"}, "none") == "none"


def _la_record(shared_data: Path) -> dict:
    root = shared_data / "la2018"
    case = sorted(p.name[: -len(".nii.gz")] for p in (root / "labelsTr").glob("*.nii.gz"))[0]
    return {
        "image": str(root / "imagesTr" / f"{case}_0000.nii.gz"),
        "label": str(root / "labelsTr" / f"{case}.nii.gz"),
    }


def test_foreground_oversampling_centres_patches_on_the_label(shared_data: Path):
    pre = load_and_normalise(True, intensity="mri")
    always = Compose(
        pre
        + patch_prefix([32, 32, 16], True, False)
        + random_patches([32, 32, 16], True, False, foreground_ratio=1.0, augment=False)
    )
    always.set_random_state(0)
    record = _la_record(shared_data)
    hits = [float(always(dict(record))[0]["label"].sum()) > 0 for _ in range(6)]
    assert all(hits)


def test_2d_slices_of_3d_volumes(shared_data: Path):
    pipeline = Compose(
        load_and_normalise(True, intensity="mri")
        + patch_prefix([64, 64], True, slice_2d=True)
        + random_patches([64, 64], True, slice_2d=True, spatial_augment="affine")
    )
    sample = pipeline(_la_record(shared_data))[0]
    assert sample["image"].shape == (1, 64, 64) and sample["label"].shape == (1, 64, 64)


def test_2d_network_reads_a_single_slice_file_as_acquired(shared_data: Path):
    """OASIS stores one coronal slice as 160x192x1 with an affine whose axes reorient: a 2D
    network must see that slice, not 160x1 rows of it after a turn to RAS."""
    name = "oasis_OAS1_0001_MR1"
    root = shared_data / "oasis2d"
    record = {"image": str(root / "imagesTr" / f"{name}_0000.nii.gz")}
    record["label"] = str(root / "labelsTr" / f"{name}.nii.gz")
    pre = load_and_normalise(True, intensity="mri", data_dims=3, network_dims=2)
    loaded = Compose(pre)(record)
    assert loaded["label"].shape == (1, 160, 192, 1)
    pipeline = Compose(
        patch_prefix([160, 160], True, slice_2d=True)
        + random_patches([160, 160], True, slice_2d=True, augment=False)
    )
    patch = pipeline(loaded)[0]
    # every structure of the slice is in a 160x160 window of it (24 of the 25 labels)
    assert len(np.unique(np.asarray(patch["label"]))) >= 20


def test_classification_pipeline_on_medmnist_arrays(shared_data: Path):
    images, labels = read_npz(shared_data / "adrenalmnist3d" / "adrenalmnist3d_64.npz")["val"]
    out = classification_pipeline([32, 32, 32], from_array=True)({"image": images[0]})
    assert out["image"].shape == (1, 32, 32, 32) and type(out["image"]) is torch.Tensor
    assert 0.0 <= float(out["image"].min()) and float(out["image"].max()) <= 1.0 + 1e-6
    augmented = [
        classification_pipeline([32, 32, 32], from_array=True, augment=True) for _ in range(2)
    ]
    for pipeline in augmented:
        pipeline.set_random_state(3)
    first, second = (p({"image": images[0]})["image"] for p in augmented)
    assert torch.equal(first, second)  # seeded augmentation is reproducible


def test_classification_pipeline_on_files(tmp_path: Path):
    from medssl.data.layouts import load_dataset
    from medssl.data.phantom import make_phantom

    dataset = load_dataset(make_phantom(tmp_path / "cls", "cls3d", cases=4))
    case = dataset.cases[0]
    out = classification_pipeline([24, 24, 24], from_array=False, intensity="ct")(
        {"image": str(case.images[0])}
    )
    assert out["image"].shape == (1, 24, 24, 24)


def test_landmarks_are_scaled_with_the_image(shared_data: Path):
    root = shared_data / "cephalometric"
    marks = read_landmarks(root / "landmarks.json")
    case = sorted(marks.cases)[0]
    points = marks.reference(case)
    image = root / "images" / f"{case}.png"
    width, height = read_image(image).spatial_shape
    out = landmark_pipeline([256, 320], augment=True)({"image": str(image), "landmarks": points})
    assert out["image"].shape == (1, 256, 320)
    expected = points * np.array([256 / width, 320 / height])
    np.testing.assert_allclose(out["landmarks"], expected, equal_nan=True)


@pytest.mark.parametrize("kind", ["mri", "ct"])
def test_prefix_is_invertible_metadata(shared_data: Path, kind: str):
    path = shared_data / "smoke" / "totalseg_examples" / "example_mr_sm.nii.gz"
    out = Compose(load_and_normalise(False, intensity=kind))({"image": str(path)})["image"]
    assert out.applied_operations  # Orientationd was recorded, so Invertd can undo it


@pytest.mark.parametrize(("kind", "dims"), [("rot_flip", 3), ("affine", 2), ("affine", 3)])
def test_spatial_augmentation_moves_image_and_label_together(kind: str, dims: int):
    """A label painted from the image stays on it through turns, flips and rotations."""
    from medssl.data.transforms import spatial_augmentation

    shape = [24, 24, 8][:dims]
    label = torch.zeros(1, *shape)
    label[(0, slice(3, 10), slice(5, 20), *([slice(2, 6)] if dims == 3 else []))] = 1
    pipeline = Compose(spatial_augmentation(["image", "label"], shape, kind))
    changed = 0
    for seed in range(8):
        pipeline.set_random_state(seed)
        out = pipeline({"image": label.clone() * 5.0, "label": label.clone()})
        image, moved = torch.as_tensor(out["image"]), torch.as_tensor(out["label"])
        assert moved.shape == label.shape
        agree = ((image > 2.5) == (moved > 0.5)).float().mean()
        assert agree > 0.98  # nearest vs bilinear differ only along the edge
        changed += int(not torch.equal(moved, label))
    assert changed >= 4  # it does augment


def test_unknown_spatial_augmentation_is_refused():
    with pytest.raises(ValueError, match="spatial_augment"):
        random_patches([16, 16], True, slice_2d=False, spatial_augment="elastic")


def test_slice_size_zooms_each_slice_and_keeps_the_slice_count(acdc_record: dict):
    record = acdc_record
    native = read_image(record["label"]).array
    out = Compose(
        load_and_normalise(True, intensity="mri", data_dims=3, network_dims=2, slice_size=[96, 96])
    )(dict(record))
    assert out["image"].shape == (1, 96, 96, native.shape[2]) == out["label"].shape
    assert set(torch.unique(out["label"]).tolist()) == {0.0, 1.0, 2.0, 3.0}  # nearest: no blends


def test_slice_size_needs_two_numbers():
    with pytest.raises(ValueError, match="two numbers"):
        load_and_normalise(False, data_dims=3, slice_size=[64, 64, 8])


def test_training_patches_are_cut_without_metadata_tracking(acdc_record: dict):
    """The random suffix yields plain tensors and leaves MONAI's global tracking as it was;
    CacheDataset still caches the deterministic prefix (with metadata, for Invertd)."""
    record = acdc_record
    pipeline = Compose(
        load_and_normalise(True, intensity="mri", data_dims=3, network_dims=2, slice_size=[64, 64])
        + patch_prefix([64, 64], True, slice_2d=True)
        + random_patches([64, 64], True, slice_2d=True, spatial_augment="affine")
    )
    cached = CacheDataset([record], pipeline, progress=False)
    assert isinstance(cached._cache[0]["image"], MetaTensor) and "label_fg" in cached._cache[0]
    sample = cached[0][0]
    assert type(sample["image"]) is torch.Tensor and sample["image"].shape == (1, 64, 64)
    assert get_track_meta()


def test_ssl4mis_augmentation_draws_turn_flip_rotation_or_nothing():
    """Half turn+flip (a permutation of the pixels, never the identity), a quarter rotations
    (new values by interpolation), a quarter unchanged, as SSL4MIS's RandomGenerator."""
    from medssl.data.transforms import ssl4mis_augmentation

    augment = ssl4mis_augmentation(["image", "label"], dims=2, square=True)
    augment.set_random_state(0)
    image = torch.arange(256.0).reshape(1, 16, 16)
    kinds = {"identity": 0, "turn_flip": 0, "rotation": 0}
    for _ in range(400):
        out = augment({"image": image.clone(), "label": (image > 100).float()})["image"]
        if torch.equal(out, image):
            kinds["identity"] += 1
        elif torch.equal(out.flatten().sort().values, image.flatten()):
            kinds["turn_flip"] += 1
        else:
            kinds["rotation"] += 1
    assert 160 < kinds["turn_flip"] < 240  # 1/2, minus the rare turn+flip that is the identity
    assert 70 < kinds["rotation"] < 130 and 70 < kinds["identity"] < 140

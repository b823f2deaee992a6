"""Radiomics features (medssl.data.radiomics) on the real NRRD tumour cases of pyradiomics.

Feature values are checked against computations by hand (numpy, SimpleITK, scikit-image's
marching cubes), not against pyradiomics itself; most tests extract the original image only,
with few classes, so the file stays fast.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medssl.data.io import MedImage, read_image, write_image
from medssl.data.radiomics import (
    LesionPosition,
    RadiomicsSettings,
    RadiomicsTable,
    dataset_table,
    describe_columns,
    extract_case,
    extract_features,
    positions_from_csv,
    settings_from,
    standardise,
)
from medssl.data.radiomics import extract as extract_mod
from medssl.errors import ConfigError, DataError

ORIGINAL = RadiomicsSettings(image_types={"Original": {}}, feature_classes=["shape", "firstorder"])


@pytest.fixture
def tumours(shared_data: Path) -> Path:
    return shared_data / "smoke" / "pyradiomics_tumor_mri"


def _pair(root: Path, case: str) -> tuple[Path, Path]:
    return root / f"{case}_image.nrrd", root / f"{case}_label.nrrd"


def _masked(image_path: Path, mask_path: Path) -> tuple[np.ndarray, np.ndarray, tuple]:
    image, mask = sitk.ReadImage(str(image_path)), sitk.ReadImage(str(mask_path))
    pixels = sitk.GetArrayFromImage(image).astype(np.float64)
    lesion = sitk.GetArrayFromImage(mask) == 1
    return pixels[lesion], lesion, image.GetSpacing()


def _binned(values: np.ndarray, width: float) -> np.ndarray:
    """Grey-level probabilities with pyradiomics' fixed bin width (edges from min - min % w)."""
    low = values.min() - values.min() % width
    _, counts = np.unique(np.floor((values - low) / width), return_counts=True)
    return counts / counts.sum()


def _mesh_volume(lesion: np.ndarray, spacing_zyx: tuple) -> float:
    """Volume inside the marching-cubes surface (level 0.5) by the divergence theorem."""
    from skimage import measure

    verts, faces, _, _ = measure.marching_cubes(
        np.pad(lesion.astype(np.float32), 1), 0.5, spacing=spacing_zyx
    )
    tri = verts[faces]
    return abs(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6)


@pytest.mark.parametrize("case", ["brain1", "breast1"])
def test_features_match_hand_computation(tumours, case):
    image, mask = _pair(tumours, case)
    settings = RadiomicsSettings(
        image_types={"Original": {}}, feature_classes=["shape", "firstorder"], bin_width=10
    )
    f = extract_features(image, mask, settings)
    values, lesion, spacing = _masked(image, mask)
    voxel = float(np.prod(spacing))
    assert f["original_firstorder_Mean"] == pytest.approx(values.mean(), rel=1e-9)
    assert f["original_firstorder_Minimum"] == values.min()
    assert f["original_firstorder_Maximum"] == values.max()
    assert f["original_firstorder_Median"] == pytest.approx(np.median(values))
    assert f["original_firstorder_Variance"] == pytest.approx(values.var(), rel=1e-9)
    assert f["original_firstorder_Energy"] == pytest.approx((values**2).sum(), rel=1e-9)
    assert f["original_firstorder_TotalEnergy"] == pytest.approx(voxel * (values**2).sum())
    p = _binned(values, 10)
    assert f["original_firstorder_Uniformity"] == pytest.approx((p**2).sum(), rel=1e-9)
    assert f["original_firstorder_Entropy"] == pytest.approx(-(p * np.log2(p)).sum(), rel=1e-6)
    assert f["original_shape_VoxelVolume"] == pytest.approx(lesion.sum() * voxel, rel=1e-9)
    mesh = _mesh_volume(lesion, spacing[::-1])
    assert f["original_shape_MeshVolume"] == pytest.approx(mesh, rel=2e-3)
    assert not any(k.startswith("diagnostics") for k in f)
    assert describe_columns(f) == {
        "image_types": ["original"],
        "feature_classes": ["shape", "firstorder"],
    }


def test_default_settings_are_bkc_image_types(tumours):
    """The one run with LoG and wavelet: original + LoG sigma 1-5 + 8 wavelet bands, 7 classes."""
    image, mask = _pair(tumours, "breast1")  # 45 x 120 x 21 voxels, 143 in the lesion
    f = extract_features(image, mask)
    described = describe_columns(f)
    assert described["image_types"][:6] == [
        "original",
        *(f"log-sigma-{s}-0-mm-3D" for s in range(1, 6)),
    ]
    assert sorted(described["image_types"][6:]) == sorted(
        f"wavelet-{a}{b}{c}" for a in "LH" for b in "LH" for c in "LH"
    )
    assert described["feature_classes"] == [
        "shape",
        "firstorder",
        "glcm",
        "glrlm",
        "glszm",
        "gldm",
        "ngtdm",
    ]
    assert all(math.isfinite(v) for v in f.values())
    values, _, _ = _masked(image, mask)  # filters change the values, not the original ones
    assert f["original_firstorder_Mean"] == pytest.approx(values.mean())
    assert f["log-sigma-1-0-mm-3D_firstorder_Mean"] != pytest.approx(values.mean())


def test_cache_hit_on_rerun_and_recompute_on_change(tumours, tmp_path, monkeypatch):
    image, mask = tmp_path / "breast1_image.nrrd", tmp_path / "breast1_label.nrrd"
    for source, target in zip(_pair(tumours, "breast1"), (image, mask), strict=True):
        target.write_bytes(source.read_bytes())
    cache = tmp_path / "run" / "radiomics"
    first = extract_case(image, mask, ORIGINAL, case_id="breast1", cache_dir=cache)
    saved = cache / "breast1.json"
    assert not first.cached and saved.is_file()
    stamp = saved.stat().st_mtime_ns

    def no_pyradiomics(*args, **kwargs):
        raise AssertionError("pyradiomics ran although the cache holds this case")

    monkeypatch.setattr(extract_mod, "run_pyradiomics", no_pyradiomics)
    again = extract_case(image, mask, ORIGINAL, case_id="breast1", cache_dir=cache)
    assert again.cached and again.features == first.features
    assert saved.stat().st_mtime_ns == stamp
    assert json.loads(saved.read_text())["features"] == first.features

    wider = ORIGINAL.model_copy(update={"bin_width": 5.0})
    with pytest.raises(AssertionError, match="pyradiomics ran"):  # a changed setting recomputes
        extract_case(image, mask, wider, case_id="breast1", cache_dir=cache)
    os.utime(image, ns=(stamp, stamp + 10**9))  # so does a changed image
    with pytest.raises(AssertionError, match="pyradiomics ran"):
        extract_case(image, mask, ORIGINAL, case_id="breast1", cache_dir=cache)
    monkeypatch.undo()
    changed = extract_case(image, mask, wider, case_id="breast1", cache_dir=cache)
    assert not changed.cached
    assert (
        changed.features["original_firstorder_Mean"] == first.features["original_firstorder_Mean"]
    )
    assert (
        changed.features["original_firstorder_Uniformity"]
        < first.features["original_firstorder_Uniformity"]
    )


def test_cache_leaves_files_it_did_not_write(tumours, tmp_path):
    cache = tmp_path / "mine"
    cache.mkdir()
    (cache / "notes.json").write_text('{"my": "notes"}')
    result = extract_case(*_pair(tumours, "breast1"), ORIGINAL, case_id="notes", cache_dir=cache)
    assert not result.cached and (cache / "notes.json").read_text() == '{"my": "notes"}'


def test_standardise_uses_training_rows_only():
    values = np.array(
        [
            [1.0, 5.0, 2.0],
            [3.0, 5.0, 4.0],
            [10.0, 7.0, np.nan],
            [-1.0, 1.0, 6.0],
        ]
    )
    table = RadiomicsTable(["a", "b", "c", "d"], ["f1", "constant", "gappy"], values)
    z, stats = standardise(table, ["a", "b"])
    # f1: train mean 2, sd 1; constant: no spread in a, b -> 0; gappy: mean 3, sd 1, NaN -> 0
    expected = [[-1.0, 0.0, -1.0], [1.0, 0.0, 1.0], [8.0, 0.0, 0.0], [-3.0, 0.0, 3.0]]
    np.testing.assert_allclose(z.values, expected)
    assert np.isfinite(z.values).all()
    assert stats.to_dict()["mean"] == {"f1": 2.0, "constant": 5.0, "gappy": 3.0}
    assert stats.to_dict()["sd"] == {"f1": 1.0, "constant": 0.0, "gappy": 1.0}
    test_rows = RadiomicsTable(["e"], table.columns, np.array([[4.0, 9.0, 3.0]]))
    np.testing.assert_allclose(stats.apply(test_rows).values, [[2.0, 0.0, 0.0]])
    with pytest.raises(ConfigError, match="'x' is not in the table"):
        standardise(table, ["a", "x"])


def test_2d_extraction_on_a_slice(tumours, tmp_path):
    image, mask = _pair(tumours, "brain1")
    volume, labels = read_image(image), read_image(mask)
    z = int(np.argmax((labels.array == 1).sum(axis=(0, 1))))
    spacing = volume.spacing[:2]
    slice_path, mask_path = tmp_path / "slice.nii.gz", tmp_path / "slice_mask.nii.gz"
    write_image(slice_path, MedImage.from_array(volume.array[..., z], spacing=spacing))
    lesion = (labels.array[..., z] == 1).astype(np.uint8)
    write_image(mask_path, MedImage.from_array(lesion, spacing=spacing))
    result = extract_case(slice_path, mask_path, ORIGINAL)
    assert result.dims == 2
    f = result.features
    assert describe_columns(f)["feature_classes"] == ["shape2D", "firstorder"]
    values = volume.array[..., z][lesion > 0].astype(np.float64)
    assert f["original_firstorder_Mean"] == pytest.approx(values.mean())
    assert f["original_shape2D_PixelSurface"] == pytest.approx(lesion.sum() * np.prod(spacing))


def test_lesion_position_mask():
    disc = LesionPosition((10.5, 8.5), 6, "px").mask((20, 16), (1.0, 1.0))
    assert disc.shape == (20, 16) and disc.sum() == 29  # lattice points within radius 3
    assert disc[10, 8] and disc[13, 8] and not disc[14, 8] and not disc[12, 11]
    in_mm = LesionPosition((10.5, 8.5), 3.0, "mm").mask((20, 16), (0.5, 0.5))
    np.testing.assert_array_equal(in_mm, disc)
    ball = LesionPosition((5.5, 5.5, 5.5), 4, "px").mask((11, 11, 11), (1.0, 1.0, 1.0))
    assert ball.sum() == 33  # lattice points within radius 2 in 3-D
    tiny = LesionPosition((3.2, 4.9), 0.1, "px").mask((8, 8), (1.0, 1.0))
    assert tiny.sum() == 1 and tiny[3, 4]  # never empty: the pixel holding the centre
    with pytest.raises(DataError, match="outside the image"):
        LesionPosition((30.0, 2.0), 5).mask((20, 16), (1.0, 1.0))
    with pytest.raises(ConfigError, match="2-D lesion centre for a 3-D image"):
        LesionPosition((3.0, 2.0), 5).mask((20, 16, 4), (1.0, 1.0, 1.0))


def test_jsrt_nodule_from_its_position(shared_data):
    root = shared_data / "jsrt"
    positions = positions_from_csv(root / "clinical.csv")
    assert len(positions) == 116  # nodule cases of this folder; the 70 without have no centre
    nodule = positions["jsrt_JPCLN001"]
    assert nodule == LesionPosition((408.625, 173.125), 15.0, "mm")
    settings = RadiomicsSettings(image_types={"Original": {}}, feature_classes=["shape"])
    image = root / "images" / "jsrt_JPCLN001.png"
    f = extract_features(image, nodule, settings, spacing=(0.7, 0.7))
    assert f["original_shape2D_PixelSurface"] == pytest.approx(math.pi * 7.5**2, rel=0.01)
    assert f["original_shape2D_MaximumDiameter"] == pytest.approx(15.0, abs=1.0)


def test_binary_volume_is_its_own_mask(shared_data):
    with np.load(shared_data / "adrenalmnist3d" / "adrenalmnist3d_64.npz") as npz:
        volume = npz["val_images"][0]
    settings = RadiomicsSettings(image_types={"Original": {}, "LoG": {"sigma": [2]}})
    result = extract_case(volume, "self", settings)
    f = result.features
    assert result.binary and "their own mask" in result.notes[0]
    assert describe_columns(f)["feature_classes"] == [
        "shape",
        "glcm",
        "glrlm",
        "glszm",
        "gldm",
        "ngtdm",
    ]
    assert not any("firstorder" in k or k.startswith("original_glcm") for k in f)
    assert "log-sigma-2-0-mm-3D_glcm_Contrast" in f
    assert f["original_shape_VoxelVolume"] == pytest.approx((volume > 0).sum())  # 1 mm voxels
    grey = volume.astype(np.float32) * np.linspace(0.5, 1.0, volume.shape[0])[:, None, None]
    with pytest.raises(ConfigError, match="needs a binary shape volume"):
        extract_case(grey, "self", settings)


def test_missing_mask_is_a_one_line_error(tumours):
    image, _ = _pair(tumours, "brain1")
    with pytest.raises(ConfigError) as err:
        extract_features(image, None, ORIGINAL, case_id="brain1")
    message = str(err.value)
    assert "\n" not in message and message.startswith("brain1: no lesion mask")
    assert "--positions" in message and "mask file" in message
    with pytest.raises(ConfigError, match="'bin_widht' is not a radiomics setting"):
        settings_from({"bin_widht": 3})
    with pytest.raises(ConfigError, match="unknown feature class 'glrm'"):
        settings_from({"feature_classes": ["glrm"]})


# -- the CLI -----------------------------------------------------------------------------------
def _nnunet_from_nrrd(tumours: Path, root: Path) -> Path:
    for sub in ("imagesTr", "labelsTr"):
        (root / sub).mkdir(parents=True)
    for case in ("brain1", "breast1"):
        image, mask = _pair(tumours, case)
        write_image(root / "imagesTr" / f"{case}_0000.nii.gz", read_image(image))
        write_image(root / "labelsTr" / f"{case}.nii.gz", read_image(mask))
    meta = {
        "channel_names": {"0": "MR"},
        "labels": {"background": 0, "tumour": 1},
        "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def _run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    from medssl.cli import main

    monkeypatch.setattr(sys, "argv", ["medssl", *map(str, args)])
    with pytest.raises(SystemExit) as done:
        main()
    captured = capsys.readouterr()
    return done.value.code or 0, captured.out, captured.err


def test_cli_exports_a_table(tumours, tmp_path, monkeypatch, capsys):
    data = _nnunet_from_nrrd(tumours, tmp_path / "Dataset001_Tumours")
    settings = tmp_path / "radiomics.yaml"
    settings.write_text(
        "image_types: {Original: {}}\nfeature_classes: [shape, firstorder, glcm]\nbin_width: 25\n"
    )
    out, cache = tmp_path / "features.csv", tmp_path / "cache"
    args = ["data", "radiomics", data, "--out", out, "--settings", settings, "--cache", cache]
    code, stdout, stderr = _run_cli(monkeypatch, capsys, *args)
    assert code == 0, stderr
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["case"] for r in rows] == ["brain1", "breast1"]
    columns = list(rows[0])[1:]
    assert f"2 cases x {len(columns)} features (2 computed, 0 from the cache)" in stdout
    assert "image types: original" in stdout
    assert "feature classes: shape, firstorder, glcm" in stdout
    assert sorted(p.name for p in cache.iterdir()) == ["brain1.json", "breast1.json"]
    direct = extract_features(
        *_pair(tumours, "breast1"),
        settings_from({"image_types": {"Original": {}}, "feature_classes": ["glcm", "shape"]}),
    )
    for name in ("original_glcm_Contrast", "original_shape_VoxelVolume"):  # NIfTI: float32 mm
        assert float(rows[1][name]) == pytest.approx(direct[name], rel=1e-6)

    code, stdout, _ = _run_cli(monkeypatch, capsys, *args)  # rerun: the cache, same table
    assert code == 0 and "(0 computed, 2 from the cache)" in stdout

    foreign = tmp_path / "notes.csv"
    foreign.write_text("my,own\n1,2\n")
    args[args.index(out)] = foreign
    code, stdout, stderr = _run_cli(monkeypatch, capsys, *args)
    assert code == 2 and foreign.read_text() == "my,own\n1,2\n"
    assert stderr.strip() == (
        f"error: {foreign}: exists and is not a medssl radiomics table; choose another --out "
        "file; medssl replaces only its own tables"
    )
    inside = data / "features.csv"
    code, _, stderr = _run_cli(monkeypatch, capsys, "data", "radiomics", data, "--out", inside)
    assert code == 2 and "lies inside the DIR folder" in stderr and not inside.exists()
    assert len(stderr.strip().splitlines()) == 1


def test_cli_without_any_mask(tumours, tmp_path, monkeypatch, capsys):
    data = _nnunet_from_nrrd(tumours, tmp_path / "Dataset002_NoLabels")
    for label in (data / "labelsTr").iterdir():
        label.unlink()
    out = tmp_path / "features.csv"
    code, _, stderr = _run_cli(monkeypatch, capsys, "data", "radiomics", data, "--out", out)
    assert code == 2 and not out.exists()
    assert stderr.strip() == (
        f"error: {data}: no case has a lesion mask (2 cases); give --positions CSV with lesion "
        "centres and sizes, or label the cases"
    )


def test_dataset_table_label_and_skips(tumours, tmp_path):
    data = _nnunet_from_nrrd(tumours, tmp_path / "Dataset003_Tumours")
    (data / "labelsTr" / "breast1.nii.gz").unlink()  # breast1 joins the unlabelled pool
    table = dataset_table(data, ORIGINAL, cache_dir=tmp_path / "cache")
    assert table.ids == ["brain1"] and table.meta["skipped"] == ["breast1"]
    with pytest.raises(DataError, match="the mask is empty \\(no voxel of label 2\\)"):
        dataset_table(data, ORIGINAL, label=2)

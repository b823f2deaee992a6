"""evaluate and predict: the JSON contract, geometry kept on every mask, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.transforms import Compose
from scipy import ndimage

from medssl import api
from medssl.data.io import read_image
from medssl.data.transforms import load_and_normalise
from medssl.errors import CheckpointError, DataError
from medssl.tasks.segmentation.inference import keep_largest_components, labels_on_input_grid


def test_evaluate_writes_the_documented_json(tiny_run: Path, seg_phantom: Path, tmp_path: Path):
    out = tmp_path / "eval.json"
    result = api.evaluate(tiny_run, seg_phantom, out=out)
    saved = json.loads(out.read_text())
    assert saved["task"] == "segmentation"
    assert set(saved["mean"]) == {"dice", "jaccard", "hd95", "asd"}
    assert set(saved["per_class"]) == {"liver", "kidney", "lesion"}
    assert len(saved["per_case"]) == 4  # every labelled case, whatever split it was in
    assert saved["units"]["hd95"] == "mm"  # the phantom's spacing is known
    assert 0.0 <= result["mean"]["dice"] <= 1.0
    assert (tiny_run / "evaluation.json").is_file()
    assert sorted(p.stem for p in (tiny_run / "overlays").glob("*.npz"))
    assert saved["postprocess"] == "none"


def test_largest_component_removes_stray_blobs_of_each_class():
    labels = np.zeros((20, 20, 10), np.uint8)
    labels[2:8, 2:8, 2:6] = 1  # the organ
    labels[15:17, 15:17, 8] = 1  # a stray blob of the same class, far away
    labels[10:13, 2:5, 1:3] = 2  # another class: one blob, kept whole
    kept = keep_largest_components(labels, num_classes=4)
    expected = labels.copy()
    expected[15:17, 15:17, 8] = 0  # to background, not to another class
    np.testing.assert_array_equal(kept, expected)
    assert kept.dtype == np.uint8


def test_predict_and_evaluate_with_largest_component(
    tiny_run: Path, seg_phantom: Path, tmp_path: Path
):
    image = sorted((seg_phantom / "imagesTr").glob("*.nii.gz"))[0]
    (raw_path,) = api.predict(tiny_run, [image], tmp_path / "raw")
    (post_path,) = api.predict(tiny_run, [image], tmp_path / "post", largest_component=True)
    raw, post = read_image(raw_path), read_image(post_path)
    np.testing.assert_array_equal(post.array, keep_largest_components(raw.array, 4))
    full = np.ones((3, 3, 3))
    for c in (1, 2, 3):
        assert ndimage.label(post.array == c, structure=full)[1] <= 1
    np.testing.assert_allclose(post.spacing, raw.spacing)
    result = api.evaluate(tiny_run, seg_phantom, largest_component=True)
    assert result["postprocess"] == "largest_component"


def test_evaluate_only_val_uses_the_runs_split(tiny_run: Path, seg_phantom: Path):
    split = json.loads((tiny_run / "split.json").read_text())
    result = api.evaluate(tiny_run, seg_phantom, only="val")
    assert sorted(result["per_case"]) == sorted(split["val"])


@pytest.mark.parametrize(
    "name", ["totalseg_examples/example_ct_sm.nii.gz", "totalseg_examples/example_mr_sm.nii.gz"]
)
def test_predict_keeps_the_input_geometry(
    tiny_run: Path, shared_data: Path, tmp_path: Path, name: str
):
    source = shared_data / "smoke" / name
    written = api.predict(tiny_run, [source], tmp_path / "pred")
    assert [p.name for p in written] == [source.name]
    image, mask = read_image(source), read_image(written[0])
    assert mask.spatial_shape == image.spatial_shape
    np.testing.assert_allclose(mask.spacing, image.spacing, rtol=1e-6)
    np.testing.assert_allclose(mask.origin, image.origin, atol=1e-4)
    np.testing.assert_allclose(mask.direction, image.direction, atol=1e-6)
    assert set(np.unique(mask.array)) <= {0, 1, 2, 3}


def test_predict_reads_a_dicom_series(tiny_run: Path, shared_data: Path, tmp_path: Path):
    series = shared_data / "smoke" / "totalseg_examples" / "example_ct_dicom"
    (mask_path,) = api.predict(tiny_run, [series], tmp_path / "pred")
    image, mask = read_image(series), read_image(mask_path)
    assert mask.spatial_shape == image.spatial_shape == (512, 512, 20)
    np.testing.assert_allclose(mask.spacing, image.spacing, rtol=1e-5)


def test_a_2d_image_given_to_a_3d_model_is_refused_before_any_output(
    tiny_run: Path, shared_data: Path, tmp_path: Path
):
    png = shared_data / "jsrt" / "images" / "jsrt_JPCLN001.png"
    good = shared_data / "smoke" / "totalseg_examples" / "example_ct_sm.nii.gz"
    with pytest.raises(DataError, match="2D image") as info:
        api.predict(tiny_run, [good, png], tmp_path / "pred")
    assert png.name in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "pred").exists()


def test_a_run_of_another_task_is_refused(tiny_run: Path, shared_data: Path):
    with pytest.raises(CheckpointError, match="labels"):
        api.evaluate(tiny_run, shared_data / "acdc")


def test_not_a_run_directory(tmp_path: Path, seg_phantom: Path):
    with pytest.raises(CheckpointError, match="not a medssl run"):
        api.evaluate(tmp_path, seg_phantom)


def test_a_corrupt_checkpoint_is_a_one_line_error(
    tiny_run: Path, seg_phantom: Path, tmp_path: Path
):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    for ckpt in (copy / "checkpoints").glob("*.ckpt"):
        ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="best.ckpt") as info:
        api.evaluate(copy, seg_phantom)
    assert "\n" not in str(info.value)


def test_voxel_units_on_request(tiny_run: Path, seg_phantom: Path):
    mm = api.evaluate(tiny_run, seg_phantom, only="val")
    voxels = api.evaluate(tiny_run, seg_phantom, only="val", units="voxel")
    assert voxels["units"]["hd95"] == "voxel" and mm["units"]["hd95"] == "mm"
    assert voxels["mean"]["dice"] == pytest.approx(mm["mean"]["dice"])
    assert voxels["mean"]["asd"] != pytest.approx(mm["mean"]["asd"])  # 1.5 x 1.5 x 2 mm voxels


def test_slice_size_inverts_back_to_the_input_grid(acdc_record: dict):
    """Probabilities resized back linearly recover the label map (what evaluate relies on)."""
    record = acdc_record
    pre = Compose(
        load_and_normalise(
            True, intensity="mri", data_dims=3, network_dims=2, slice_size=[256, 256]
        )
    )
    data = pre(dict(record))
    one_hot = torch.nn.functional.one_hot(data["label"][0].long(), 4).permute(3, 0, 1, 2).float()
    pred = labels_on_input_grid(one_hot, data, pre)
    native = read_image(record["label"]).array
    assert pred.shape == native.shape
    for c in (1, 2, 3):
        dice = 2 * ((pred == c) & (native == c)).sum() / ((pred == c).sum() + (native == c).sum())
        assert dice > 0.93, (c, dice)

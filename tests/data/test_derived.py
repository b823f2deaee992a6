"""Derived input channels: edges, equalised histograms, appended in the order named."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose

from medssl.data.derived import DerivedChannelsd, check_derived, edge_magnitude, input_channels
from medssl.data.transforms import classification_pipeline, load_and_normalise
from medssl.engine.config import build_config
from medssl.errors import ConfigError


def _step_image(axis: int, channels: int = 1) -> MetaTensor:
    """(C, 16, 16, 8) zeros with ones past the middle of ``axis``."""
    image = torch.zeros(channels, 16, 16, 8)
    index = [slice(None)] * 4
    index[axis + 1] = slice(image.shape[axis + 1] // 2, None)
    image[tuple(index)] = 1.0
    return MetaTensor(image, affine=torch.diag(torch.tensor([1.5, 1.5, 2.0, 1.0])))


def test_edge_prompt_appends_the_edges_as_channels():
    image = _step_image(axis=0, channels=2)
    image[1] *= 0.0  # the second channel is flat
    out = DerivedChannelsd("image", ["edge"], in_plane=False)({"image": image})["image"]
    assert isinstance(out, MetaTensor) and out.shape == (4, 16, 16, 8)
    assert torch.equal(out[:2], image)  # first C channels: the image, untouched
    assert torch.equal(out.affine, image.affine)  # the image's metadata
    edges = out[2]
    assert edges[7:9].min() == 1.0  # the step, at full scale
    assert edges[:6].abs().max() == 0.0 and edges[10:].abs().max() == 0.0  # flat either side
    assert out[3].abs().max() == 0.0  # a flat channel has no edges


def test_edge_prompt_scale_is_not_set_by_a_few_outliers():
    image = torch.zeros(1, 32, 32, 16)
    image[:, 16:] = 1.0
    image[0, 4, 4, 4] = 100.0  # one bright voxel far from the step
    edges = edge_magnitude(image)
    assert edges[0, 15:17, 10:30].min() == 1.0 and edges.max() == 1.0


def test_edge_prompt_in_plane_ignores_the_slice_axis():
    across_slices = _step_image(axis=2)
    assert edge_magnitude(across_slices, in_plane=False).max() == 1.0
    assert edge_magnitude(across_slices, in_plane=True).abs().max() == 0.0
    within_slices = _step_image(axis=1)
    per_slice = edge_magnitude(within_slices, in_plane=True)
    one_slice = edge_magnitude(within_slices[..., 0])  # the same 2D edges on every slice
    assert torch.allclose(per_slice, one_slice.unsqueeze(-1).expand_as(per_slice))


def test_edge_prompt_in_the_pipeline(shared_data: Path):
    path = shared_data / "smoke" / "totalseg_examples" / "example_mr_sm.nii.gz"
    plain = Compose(load_and_normalise(False, intensity="mri"))({"image": str(path)})["image"]
    pre = Compose(load_and_normalise(False, intensity="mri", derived_channels=["edge"]))
    out = pre({"image": str(path)})["image"]
    assert out.shape == (2, *plain.shape[1:])
    assert torch.equal(out[:1], plain) and 0.0 <= out[1].min() and out[1].max() == 1.0
    assert out.applied_operations  # still invertible


def test_derivations_are_appended_in_the_order_named():
    image = _step_image(axis=0, channels=2)
    out = DerivedChannelsd("image", ["histeq", "edge"], in_plane=False)({"image": image})["image"]
    assert out.shape == (6, 16, 16, 8) and input_channels(2, ["histeq", "edge"]) == 6
    assert torch.equal(out[:2], image)
    assert torch.equal(
        out[4:6], DerivedChannelsd("image", ["edge"], False)({"image": image})["image"][2:]
    )
    equalised = out[2:4]
    assert 0.0 <= float(equalised.min()) and float(equalised.max()) <= 1.0


def test_histogram_equalisation_spreads_a_narrow_range():
    image = torch.linspace(0.40, 0.41, 4096).reshape(1, 64, 64)  # all values in 1 % of the range
    out = DerivedChannelsd("image", ["histeq"], in_plane=False)({"image": image})["image"][1]
    assert float(out.min()) < 0.05 and float(out.max()) > 0.95  # stretched over [0, 1]
    assert torch.all(out.flatten()[1:] >= out.flatten()[:-1])  # order kept


def test_unknown_or_repeated_derivations_are_refused():
    with pytest.raises(ConfigError, match="did you mean 'edge'"):
        check_derived(["edges"])
    with pytest.raises(ValueError, match="twice"):
        check_derived(["edge", "edge"])


def test_edge_prompt_of_older_configs_is_the_edge_derivation():
    cfg = build_config({"task": "segmentation", "data": {"edge_prompt": True}})
    assert cfg.data.derived_channels == ["edge"] and "edge_prompt" not in cfg.to_dict()["data"]
    cfg = build_config({"task": "segmentation", "data": {"edge_prompt": False}})
    assert cfg.data.derived_channels == []


def test_classification_pipeline_adds_derived_channels():
    image = (torch.arange(28 * 28) % 256).reshape(28, 28).numpy()
    out = classification_pipeline([28, 28], True, derived_channels=["edge"])({"image": image})
    assert out["image"].shape == (2, 28, 28)


def test_a_run_with_derived_channels_trains_and_predicts_with_them(
    seg_phantom: Path, tmp_path: Path
):
    from medssl import api
    from medssl.engine.inference import load_model
    from tests.conftest import TINY_SEG_CONFIG, train_tiny

    config = {
        **TINY_SEG_CONFIG,
        "data": {**TINY_SEG_CONFIG["data"], "derived_channels": ["histeq"]},
    }
    run = train_tiny(seg_phantom, tmp_path / "run", 2, config=config)
    module = load_model(run)
    first = next(p for p in module.net.parameters() if p.ndim > 2)
    assert first.shape[1] == 2  # the image and its equalised copy
    image = sorted((seg_phantom / "imagesTr").iterdir())[0]
    (mask,) = api.predict(run, [image], tmp_path / "pred")
    assert mask.is_file()

"""Config resolution: profile < method defaults < --config < flags, patches fitted to the data."""

from __future__ import annotations

from pathlib import Path

import pytest

from medssl.data.layouts import load_dataset
from medssl.engine.config import read_yaml
from medssl.engine.module import get_method
from medssl.engine.profiles import resolve_config
from medssl.errors import ConfigError

SUPERVISED = get_method("segmentation", "supervised")


def _resolve(dataset, profile="cpu", file_values=None, flags=None):
    return resolve_config(
        task="segmentation",
        method_cls=SUPERVISED,
        dataset=dataset,
        profile=profile,
        file_values=file_values or {},
        flag_values=flags or {},
    )


def test_layers_override_in_order(seg_phantom: Path):
    dataset = load_dataset(seg_phantom)
    cfg = _resolve(
        dataset,
        file_values={"train": {"max_steps": 77, "val_every": 7}},
        flags={"train": {"max_steps": 5}},
    )
    assert cfg.train.max_steps == 5  # the flag wins over the file
    assert cfg.train.val_every == 7  # the file wins over the profile
    assert cfg.net.channels == [16, 32, 64, 128]  # the cpu profile's network


def test_gpu_profile_is_the_published_setting_clipped_to_the_image(
    seg_phantom: Path, shared_data: Path
):
    phantom = _resolve(load_dataset(seg_phantom), profile="gpu")
    assert phantom.train.precision == "bf16-mixed" and phantom.train.max_steps == 6000
    assert phantom.data.patch_size == [64, 64, 48]  # 112x112x80 clipped to the 64x64x48 phantom
    la = _resolve(load_dataset(shared_data / "la2018"), profile="gpu")
    assert la.data.patch_size == [112, 112, 80]


def test_two_dimensional_data_gets_a_2d_network(shared_data: Path):
    cfg = _resolve(load_dataset(shared_data / "jsrt"))
    assert cfg.data.spatial_dims == 2 and len(cfg.data.patch_size) == 2
    slices = _resolve(load_dataset(shared_data / "acdc"), file_values={"data": {"spatial_dims": 2}})
    assert slices.data.spatial_dims == 2 and slices.data.patch_size == [128, 128]


def test_resampling_shrinks_the_patch_cap(shared_data: Path):
    cfg = _resolve(
        load_dataset(shared_data / "la2018"),
        profile="gpu",
        file_values={"data": {"target_spacing": [2.5, 2.5, 2.5]}},
    )
    assert all(p <= 64 for p in cfg.data.patch_size)  # ~55x40x22 voxels at 2.5 mm
    assert all(p % 16 == 0 for p in cfg.data.patch_size)


def test_unknown_keys_and_bad_yaml_are_one_line_errors(seg_phantom: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="data.patch_sise"):
        _resolve(load_dataset(seg_phantom), file_values={"data": {"patch_sise": [1, 2, 3]}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_yaml(bad)


def test_slice_size_sets_the_patch_cap(shared_data: Path):
    """ACDC slices are 154-512 wide; zoomed to 96x96 a 128 patch is clipped to 96."""
    cfg = _resolve(
        load_dataset(shared_data / "acdc"),
        file_values={"data": {"spatial_dims": 2, "slice_size": [96, 96]}},
    )
    assert cfg.data.patch_size == [96, 96]

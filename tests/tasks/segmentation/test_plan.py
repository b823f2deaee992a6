"""Segmentation's planned defaults: budgets, anisotropy, spacing, 2D or 3D."""

from __future__ import annotations

import math

import pytest

from medssl.data.dataset import Dataset
from medssl.data.fingerprint import AxisStats, ChannelStats, Fingerprint
from medssl.tasks.segmentation.plan import BUDGETS, plan_segmentation


def make_fp(shape, spacing, box_mm=None, p10=None, modality="MRI", file_dims=3, known=True):
    spacing = list(spacing)
    low = list(p10 or spacing)
    return Fingerprint(
        root="x",
        layout="nnunet",
        modality={"0": modality},
        file_dims=file_dims,
        spacing_known=known,
        cases=10,
        labeled=10,
        read=10,
        spacing=AxisStats(median=spacing, p10=low, p90=spacing, min=low, max=spacing),
        shape=AxisStats(
            median=list(shape), p10=list(shape), p90=list(shape), min=list(shape), max=list(shape)
        ),
        intensity=[ChannelStats("0", 0.0, 1.0, 0.0, -1000.0, 400.0, -1024.0, 3000.0)],
        foreground_bbox_mm=box_mm,
    )


def plan(fp, profile="cpu", dims=None, spatial_dims=None):
    dataset = Dataset(root="x", layout="nnunet", cases=[], spatial_dims=spatial_dims)
    return plan_segmentation(fp, dataset, profile, dims)


def patch_voxels(config) -> int:
    return math.prod(config["data"]["patch_size"])


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_very_large_volume_stays_within_the_budget(profile):
    fp = make_fp([2048, 2048, 1024], [0.5, 0.5, 0.5], box_mm=[900.0, 900.0, 450.0])
    dims, config, reasons = plan(fp, profile)
    budget = BUDGETS[(profile, 3)]
    assert dims == 3
    assert patch_voxels(config) <= budget.voxels * 1.15
    coarsened = config["data"].get("target_spacing", [0.5] * 3)
    assert max(coarsened) <= 0.5 * budget.coarsen + 1e-9  # never coarser than the profile allows
    assert config["data"]["batch_size"] == budget.batch
    assert config["train"]["max_steps"] == budget.steps


def test_very_small_volume_gets_a_patch_a_network_can_take():
    fp = make_fp([30, 28, 26], [1.0, 1.0, 1.0], box_mm=[4.0, 4.0, 4.0])
    dims, config, _ = plan(fp)
    patch = config["data"]["patch_size"]
    depth = len(config["net"]["channels"]) - 1
    assert dims == 3 and depth >= 1
    assert all(p % 2**depth == 0 and p <= 32 for p in patch)


def test_field_of_view_sets_the_coarsening():
    # a 200 mm object at 0.5 mm: the cpu plan coarsens until object and margin fit 64^3 voxels
    fp = make_fp([600, 600, 600], [0.5, 0.5, 0.5], box_mm=[200.0, 200.0, 200.0])
    _, config, reasons = plan(fp)
    spacing = config["data"]["target_spacing"]
    assert spacing == pytest.approx([0.5 * 4.0] * 3)  # 500 voxels per side need x4 (capped)
    fp_small = make_fp([600, 600, 600], [0.5, 0.5, 0.5], box_mm=[20.0, 20.0, 20.0])
    _, small, _ = plan(fp_small)
    assert "target_spacing" not in small["data"]  # a 20 mm object fits at native spacing
    assert any("coarsened" in r for r in reasons)


def test_anisotropic_spacing_in_3d_takes_the_tenth_percentile():
    fp = make_fp([256, 256, 60], [0.7, 0.7, 5.0], p10=[0.7, 0.7, 3.0], box_mm=[40.0, 40.0, 40.0])
    dims, config, reasons = plan(fp, dims=3)
    assert dims == 3
    assert config["data"]["target_spacing"] == pytest.approx([0.7, 0.7, 3.0])
    assert any("10th percentile" in r for r in reasons)


def test_anisotropic_or_thin_volumes_are_planned_on_slices():
    dims, config, reasons = plan(make_fp([256, 256, 60], [0.7, 0.7, 5.0]))
    assert dims == 2 and len(config["data"]["patch_size"]) == 2
    assert config["data"].get("target_spacing", [0, 0, 0])[2] <= 0  # slices keep their spacing
    thin, _, _ = plan(make_fp([200, 200, 9], [1.0, 1.0, 1.0]))
    assert thin == 2


def test_unknown_spacing_zooms_slices_to_one_size():
    fp = make_fp([216, 256, 9], [1.0, 1.0, 1.0], known=False)
    fp.shape.p10, fp.shape.p90 = [180.0, 210.0, 7.0], [256.0, 256.0, 12.0]
    dims, config, _ = plan(fp)
    side = config["data"]["slice_size"][0]
    assert dims == 2 and config["data"]["slice_size"] == [side, side]
    assert config["data"]["patch_size"] == [side, side]
    assert "target_spacing" not in config["data"]


def test_ct_gets_its_foreground_window_and_mr_a_zscore():
    _, ct, _ = plan(make_fp([64, 64, 64], [1.0, 1.0, 1.0], modality="CT"))
    assert ct["data"]["intensity"] == "ct" and ct["data"]["ct_window"] == [-1000.0, 400.0]
    _, mr, _ = plan(make_fp([64, 64, 64], [1.0, 1.0, 1.0], modality="T2"))
    assert mr["data"]["intensity"] == "mri" and "ct_window" not in mr["data"]


def test_two_dimensional_images_and_profiles():
    fp = make_fp([2048, 2048], [0.2, 0.2], box_mm=[380.0, 380.0], file_dims=2)
    dims, cpu, _ = plan(fp, "cpu")
    _, gpu, _ = plan(fp, "gpu")
    assert dims == 2
    assert patch_voxels(cpu) <= BUDGETS[("cpu", 2)].voxels * 1.15
    assert patch_voxels(gpu) <= BUDGETS[("gpu", 2)].voxels * 1.15
    assert cpu["train"]["max_steps"] < gpu["train"]["max_steps"]


def test_the_cpu_2d_plan_trains_a_full_resolution_unet_that_takes_its_patch():
    import torch

    from medssl.nets.factory import create_net

    fp = make_fp([160, 192], [1.0, 1.0], box_mm=[140.0, 124.0], file_dims=2)
    _, cpu, reasons = plan(fp, "cpu")
    net = cpu["net"]
    assert net["name"] == "ssl4mis_unet" and "network ssl4mis_unet" in " ".join(reasons)
    patch = cpu["data"]["patch_size"]
    model = create_net(net["name"], 2, 1, 3, channels=net["channels"])
    with torch.no_grad():
        assert model(torch.zeros(1, 1, *patch)).shape == (1, 3, *patch)
    _, three_d, _ = plan(make_fp([64, 64, 64], [1.0, 1.0, 1.0]), "cpu")
    assert three_d["net"]["name"] == "unet"  # 3D plans keep MONAI's UNet

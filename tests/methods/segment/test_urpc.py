"""URPC: the deep-supervision pyramid, a step at the profile widths, and training in 2D and 3D
(the uncertainty-rectified pyramid consistency itself: tests/losses/test_pyramid.py)."""

from __future__ import annotations

import copy
import csv
import math

import pytest
import torch

from medssl.methods.segment.urpc import URPC
from tests.conftest import TINY_SEG_CONFIG, train_tiny


def _method(dims: int, channels: list[int], **hp) -> URPC:
    cfg = {
        "task": "segmentation",
        "net": {"channels": channels, "num_res_units": 0},
        "data": {"patch_size": [32] * dims},
        "method_config": hp,
    }
    return URPC(cfg, {"num_classes": 3, "spatial_dims": dims, "in_channels": 1})


@pytest.mark.parametrize(
    ("channels", "scales"), [([8, 16], 2), ([8, 16, 32], 3), ([4, 4, 4, 4, 4, 4], 4)]
)
def test_the_pyramid_has_four_scales_or_one_per_decoder_stage(channels: list[int], scales: int):
    """A net of L levels whose first is strided (the default) decodes in L stages, the last one
    back to full resolution."""
    method = _method(2, channels)
    x = torch.randn(2, 1, 64, 64)
    outputs = method.net(x)
    assert [o.shape for o in outputs] == [(2, 3, 64, 64)] * scales
    perturbs = [p.kind for p in method.net.decoders[0].perturb]
    assert perturbs == ["none", "noise", "feature_dropout", "dropout"][:scales]
    method.eval()
    with torch.no_grad():  # test time: the full-resolution output
        assert torch.allclose(method.inference_net()(x), method.net(x)[0])


@pytest.mark.parametrize("channels", [[16, 32, 64, 128], [32, 64, 128, 256, 320]])
def test_a_step_at_the_profile_widths(channels: list[int]):
    method = _method(2, channels)
    labeled = {"image": torch.randn(2, 1, 32, 32), "label": torch.randint(0, 3, (2, 1, 32, 32))}
    losses = method.training_losses({"labeled": labeled, "unlabeled": {"image": labeled["image"]}})
    losses["loss"].backward()
    assert all(math.isfinite(v.item()) for v in losses.values())
    alone = method.training_losses({"labeled": labeled})  # no unlabelled pool: no consistency
    assert alone["consistency"] == 0 and math.isfinite(alone["loss"].item())


@pytest.mark.parametrize("dims", [3, 2])
def test_urpc_trains_a_few_steps(seg_phantom, tmp_path, dims: int):
    cfg = copy.deepcopy(TINY_SEG_CONFIG)
    cfg["data"]["spatial_dims"] = dims
    cfg["train"].update(sw_batch_size=16, sw_overlap=0.0)  # a quick validation pass
    run = train_tiny(seg_phantom, tmp_path / "run", 2, method="urpc", config=cfg)
    rows = [r for r in csv.DictReader(open(run / "metrics.csv")) if r.get("train/loss")]
    assert rows
    for row in rows:
        assert all(math.isfinite(float(row[k])) for k in ("train/loss", "train/consistency"))
    assert float(rows[-1]["train/consistency"]) > 0


def test_urpc_on_the_ssl4mis_unet_is_unet_urpc():
    """SSL4MIS's own network: bilinear up blocks (what unet_urpc runs), 3x3 heads, the same
    perturbations; a step runs."""
    method = URPC(
        {"task": "segmentation", "net": {"name": "ssl4mis_unet", "channels": [4, 8, 8, 8, 8]}},
        {"num_classes": 3, "spatial_dims": 2, "in_channels": 1},
    )
    decoder = method.net.decoders[0]
    assert [p.kind for p in decoder.perturb] == ["none", "noise", "feature_dropout", "dropout"]
    ups = [m for m in decoder.ups.modules() if isinstance(m, torch.nn.Upsample)]
    assert len(ups) == 4 and {m.mode for m in ups} == {"bilinear"}
    assert {h.conv.kernel_size for h in decoder.heads} == {(3, 3)}
    labeled = {"image": torch.randn(2, 1, 32, 32), "label": torch.randint(0, 3, (2, 1, 32, 32))}
    losses = method.training_losses({"labeled": labeled, "unlabeled": {"image": labeled["image"]}})
    losses["loss"].backward()
    assert all(math.isfinite(v.item()) for v in losses.values())
    assert len(method.net(labeled["image"])) == 4


def test_urpc_steps_on_the_ssl4mis_vnet_in_3d():
    method = URPC(
        {"task": "segmentation", "net": {"name": "ssl4mis_vnet", "channels": [4, 8, 16]}},
        {"num_classes": 2, "spatial_dims": 3, "in_channels": 1},
    )
    assert method.net.family == "ssl4mis_vnet" and method.net.num_heads == 2
    assert any(isinstance(m, torch.nn.ConvTranspose3d) for m in method.net.decoders.modules())
    image = torch.randn(2, 1, 16, 16, 16)
    labeled = {"image": image, "label": torch.randint(0, 2, (2, 1, 16, 16, 16))}
    losses = method.training_losses({"labeled": labeled, "unlabeled": {"image": image}})
    losses["loss"].backward()
    assert all(math.isfinite(v.item()) for v in losses.values())

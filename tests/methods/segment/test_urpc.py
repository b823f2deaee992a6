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

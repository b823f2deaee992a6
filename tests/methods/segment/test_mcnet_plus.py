"""MC-Net+: the mutual-consistency loss on hand-made maps, the three-decoder network, training."""

from __future__ import annotations

import copy
import csv
import math

import pytest
import torch

from medssl.methods.segment.consistency import sharpen
from medssl.methods.segment.mcnet_plus import OFFICIAL_2D, MCNetPlus, mutual_consistency
from tests.conftest import TINY_SEG_CONFIG, train_tiny


def _one_hot(labels: list[int], k: int = 3) -> torch.Tensor:
    """(1, K, N) one-hot probabilities of the voxel labels."""
    return torch.nn.functional.one_hot(torch.tensor(labels), k).T.float().unsqueeze(0)


def test_agreeing_one_hot_decoders_have_zero_mutual_consistency():
    p = _one_hot([0, 2, 1, 1])
    assert mutual_consistency([p, p.clone(), p.clone()], temperature=0.1) == 0


def test_mutual_consistency_sums_the_ordered_pairs_against_sharpened_targets():
    p1 = torch.tensor([[[0.8], [0.2]]])  # (B=1, K=2, N=1)
    p2 = torch.tensor([[[0.4], [0.6]]])
    value = mutual_consistency([p1, p2], temperature=0.1)

    def sharp(a: float) -> float:
        return a**10 / (a**10 + (1 - a) ** 10)  # the official two-class sharpening

    s1, s2 = sharp(0.8), sharp(0.4)
    expected = ((0.8 - s2) ** 2 + (0.2 - (1 - s2)) ** 2) / 2  # p1 against sharpen(p2)
    expected += ((0.4 - s1) ** 2 + (0.6 - (1 - s1)) ** 2) / 2  # p2 against sharpen(p1)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    assert value > 0
    # Disagreeing one-hot decoders are penalised too.
    assert mutual_consistency([_one_hot([0, 1]), _one_hot([0, 2])], 0.1) > 0


def test_no_gradient_flows_through_the_sharpened_targets():
    torch.manual_seed(0)
    probs = [torch.softmax(torch.randn(1, 3, 5), dim=1).requires_grad_() for _ in range(3)]
    mutual_consistency(probs, 0.1).backward()
    targets = [sharpen(p.detach(), 0.1) for p in probs]
    n = probs[0].numel()
    for i, p in enumerate(probs):  # d/dp_i of sum_{j != i} mean((p_i - t_j)^2), t_j constant
        expected = sum(2 * (p.detach() - t) / n for j, t in enumerate(targets) if j != i)
        assert torch.allclose(p.grad, expected, atol=1e-6)
    # The official script's behaviour (gradients through the targets) is an option.
    live = [p.detach().clone().requires_grad_() for p in probs]
    mutual_consistency(live, 0.1, detach_targets=False).backward()
    assert not torch.allclose(live[0].grad, probs[0].grad)


def _method(dims: int, **net) -> MCNetPlus:
    cfg = {"net": {**TINY_SEG_CONFIG["net"], **net}, "data": {"patch_size": [32] * dims}}
    return MCNetPlus(cfg, {"num_classes": 3, "spatial_dims": dims, "in_channels": 1})


@pytest.mark.parametrize("dims", [2, 3])
def test_the_network_has_three_differently_upsampled_decoders(dims: int):
    method = _method(dims)
    x = torch.randn((2, 1) + (32,) * dims)
    outputs = method.net(x)
    assert len(outputs) == 3 and all(o.shape == (2, 3) + (32,) * dims for o in outputs)
    ups = [type(d.ups[0]).__name__ + str(list(d.ups[0].children())) for d in method.net.decoders]
    assert "ConvTranspose" in ups[0] and "linear" in ups[1] and "nearest" in ups[2]
    method.eval()
    with torch.no_grad():  # evaluation: the first (transposed-convolution) decoder
        assert torch.allclose(method.inference_net()(x), method.net(x)[0])


@pytest.mark.parametrize("channels", [[16, 32, 64, 128], [32, 64, 128, 256, 320]])
def test_a_step_at_the_profile_widths_without_an_unlabelled_stream(channels: list[int]):
    method = _method(2, channels=channels, num_res_units=1)
    batch = {
        "labeled": {
            "image": torch.randn(2, 1, 32, 32),
            "label": torch.randint(0, 3, (2, 1, 32, 32)),
        }
    }
    losses = method.training_losses(batch)
    losses["loss"].backward()
    assert all(math.isfinite(v.item()) for v in losses.values())
    assert losses["consistency"] > 0  # the consistency needs no unlabelled images


@pytest.mark.parametrize("dims", [3, 2])
def test_mcnet_plus_trains_a_few_steps(seg_phantom, tmp_path, dims: int):
    cfg = copy.deepcopy(TINY_SEG_CONFIG)
    cfg["data"]["spatial_dims"] = dims
    cfg["train"].update(sw_batch_size=16, sw_overlap=0.0)  # a quick validation pass
    run = train_tiny(seg_phantom, tmp_path / "run", 2, method="mcnet_plus", config=cfg)
    rows = [r for r in csv.DictReader(open(run / "metrics.csv")) if r.get("train/loss")]
    assert rows
    for row in rows:
        assert all(math.isfinite(float(row[k])) for k in ("train/loss", "train/consistency"))
    assert float(rows[-1]["train/consistency"]) > 0


def test_a_2d_network_gets_the_official_2d_defaults(seg_phantom):
    from medssl.data.layouts import load_dataset
    from medssl.engine.profiles import resolve_config

    def resolve(dims: int, method_config: dict) -> dict:
        file_values = {"data": {"spatial_dims": dims}, "method_config": method_config}
        return resolve_config(
            task="segmentation",
            method_cls=MCNetPlus,
            dataset=load_dataset(seg_phantom),
            profile="cpu",
            file_values=file_values,
            flag_values={},
        ).method_config

    assert resolve(2, {}) == OFFICIAL_2D  # train_mcnet_2d.py: 2 decoders, 0.1 over all steps
    assert resolve(2, {"consistency": 0.5})["consistency"] == 0.5  # the user's value wins
    assert resolve(3, {}) == {}  # 3D keeps the class defaults (train_mcnet_3d.py)
    method = MCNetPlus(
        {"net": TINY_SEG_CONFIG["net"], "method_config": resolve(2, {})},
        {"num_classes": 3, "spatial_dims": 2, "in_channels": 1},
    )
    assert len(method.net(torch.randn(1, 1, 32, 32))) == 2 and method.hp.consistency == 0.1

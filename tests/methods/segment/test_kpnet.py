"""KP-Net: the losses in 2D and 3D, inference, the text prompts, a run end to end (the consistency
and distinctiveness terms themselves: tests/losses/test_consistency.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml

from medssl import api
from medssl.engine.config import RunConfig
from medssl.errors import ConfigError
from medssl.methods.segment.consistency import sigmoid_rampup
from medssl.methods.segment.kpnet import KPNetMethod, MeanOfDecoders
from medssl.nets.text_prompts import LearnedPrompts, resolve_text_encoder
from tests.conftest import train_tiny

INFO = {
    "num_classes": 3,
    "in_channels": 1,
    "class_names": ["background", "liver", "kidney"],
    "channel_names": {"0": "CT"},
}


def _module(dims: int, **method_config) -> KPNetMethod:
    method_config.setdefault("text_encoder", "learned")
    cfg = {
        "task": "segmentation",
        "method": "kpnet",
        "net": {"channels": [4, 8, 16], "num_res_units": 0},
        "data": {"patch_size": [16] * dims, "derived_channels": ["edge"]},
        "train": {"max_steps": 10},
        "method_config": method_config,
    }
    torch.manual_seed(0)
    return KPNetMethod(cfg, {**INFO, "spatial_dims": dims, "data_dims": 3})


def _batch(dims: int, unlabeled: bool = True) -> dict:
    torch.manual_seed(1)
    shape = [16] * dims
    batch = {
        "labeled": {
            "image": torch.randn(2, 2, *shape),  # image + edge prompt channels
            "label": torch.randint(0, 3, (2, 1, *shape)),
        }
    }
    if unlabeled:
        batch["unlabeled"] = {"image": torch.randn(2, 2, *shape)}
    return batch


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("unlabeled", [True, False])
def test_losses_are_finite_and_reach_every_part(dims: int, unlabeled: bool):
    module = _module(dims)
    losses = module.training_losses(_batch(dims, unlabeled))
    assert all(torch.isfinite(v) for v in losses.values())
    weight = 1.0 * sigmoid_rampup(0, 0.4 * 10)  # step 0 of 10, MC-Net+ weight and ramp
    assert losses["consistency_weight"].item() == pytest.approx(weight)
    expected = losses["supervised"] + weight * (losses["consistency"] + losses["distinctiveness"])
    assert losses["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    losses["loss"].backward()
    net = module.net
    for part in ("image_encoder", "prompt_encoder", "prompts", "gate"):
        assert any(p.grad is not None for p in getattr(net, part).parameters()), part
    for part in ("decoder_deconv", "decoder_interp"):
        assert all(p.grad is not None for p in getattr(net, part).parameters()), part


def test_inference_is_the_mean_of_the_two_decoders_softmax():
    module = _module(2).eval()
    x = _batch(2)["labeled"]["image"]
    with torch.no_grad():
        a, b = module.net(x)
        mean = MeanOfDecoders(module.net, "mean")(x).exp()
        first = MeanOfDecoders(module.net, "deconv")(x)
    assert torch.allclose(mean, 0.5 * (a.softmax(1) + b.softmax(1)), atol=1e-5)
    assert torch.equal(first, a)
    assert module.predict_labels(x[:1]).shape == (1, 1, 16, 16)


def test_text_encoder_is_resolved_into_the_run_config():
    forced = KPNetMethod.finalize_config(
        RunConfig(task="segmentation", method="kpnet", method_config={"text_encoder": "learned"})
    )
    assert forced.method_config["text_encoder"] == "learned"
    auto = KPNetMethod.finalize_config(RunConfig(task="segmentation", method="kpnet"))
    assert auto.method_config["text_encoder"] == resolve_text_encoder("auto")
    assert isinstance(_module(2).net.prompts, LearnedPrompts)
    with pytest.raises(ConfigError, match="auto"):
        _module(2, text_encoder="auto")


def test_a_checkpoint_needs_no_text_encoder_but_training_does(monkeypatch):
    from medssl.nets.text_prompts import ENCODERS, TextEncoder

    table = torch.randn(3, 4)
    monkeypatch.setitem(ENCODERS, "here", TextEncoder("torch", 4, lambda s: table[: len(s)]))
    monkeypatch.setitem(ENCODERS, "gone", TextEncoder("medssl_no_such_package", 4, None))
    trained = _module(2, text_encoder="here")
    trained.on_fit_start()  # embeddings computed: training may start
    elsewhere = _module(2, text_encoder="gone")  # rebuilt where the encoder is missing
    with pytest.raises(ConfigError, match="not installed"):
        elsewhere.on_fit_start()
    elsewhere.load_state_dict(trained.state_dict())
    assert torch.equal(elsewhere.net.prompts.embeddings, table)
    x = _batch(2)["labeled"]["image"]
    trained.eval()
    elsewhere.eval()
    with torch.no_grad():
        assert torch.equal(trained.predict_logits(x[:1]), elsewhere.predict_logits(x[:1]))


@pytest.mark.parametrize("derived", [[], ["histeq"], ["edge", "histeq"]])
def test_the_edge_prompt_cannot_be_turned_off_or_joined(derived: list[str]):
    data = {"patch_size": [16, 16], "derived_channels": derived}
    cfg = {"task": "segmentation", "method": "kpnet", "data": data}
    cfg["method_config"] = {"text_encoder": "learned"}
    with pytest.raises(ConfigError, match=r"derived_channels: \[edge\]"):
        KPNetMethod(cfg, {**INFO, "spatial_dims": 2})


def test_kpnet_refuses_network_options():
    data = {"patch_size": [16, 16], "derived_channels": ["edge"]}
    cfg = {"task": "segmentation", "method": "kpnet", "data": data}
    cfg |= {"method_config": {"text_encoder": "learned"}, "net": {"options": {"dropout": 0.1}}}
    with pytest.raises(ConfigError, match="net.options"):
        KPNetMethod(cfg, {**INFO, "spatial_dims": 2})


def test_a_kpnet_run_records_its_text_encoder_and_its_checkpoint_evaluates(
    seg_phantom: Path, tmp_path: Path
):
    run = train_tiny(seg_phantom, tmp_path / "run", 2, method="kpnet")
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["method_config"]["text_encoder"] == resolve_text_encoder("auto")
    assert saved["data"]["derived_channels"] == ["edge"]
    result = api.evaluate(run, seg_phantom, only="val")
    assert result["method"] == "kpnet" and result["cases"] == 1
    assert 0.0 <= result["mean"]["dice"] <= 1.0 and not math.isnan(result["mean"]["dice"])


def test_kpnet_builds_on_the_ssl4mis_unet_with_its_options():
    data = {"patch_size": [32, 32], "derived_channels": ["edge"]}
    net = {
        "name": "ssl4mis_unet",
        "channels": [8, 16, 32],
        "options": {"normalization": "instance"},
    }
    cfg = {"task": "segmentation", "method": "kpnet", "data": data, "net": net}
    cfg["method_config"] = {"text_encoder": "learned"}
    module = KPNetMethod(cfg, {**INFO, "spatial_dims": 2})
    norms = [m for m in module.net.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert norms and not any(isinstance(m, torch.nn.BatchNorm2d) for m in module.net.modules())
    x = torch.randn(2, 2, 32, 32)  # image + edge prompt
    deconv, interp = module.net(x)
    assert deconv.shape == interp.shape == (2, INFO["num_classes"], 32, 32)

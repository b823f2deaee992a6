"""The encoder hand-off: export from one network, ``--init`` into every segmentation method."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from medssl.data.layouts import load_dataset
from medssl.engine.handoff import ENCODER_FILE, SIDECAR_FILE, export_encoder, init_from
from medssl.engine.module import get_method, method_names
from medssl.engine.profiles import resolve_config
from medssl.engine.task import get_task
from medssl.errors import CheckpointError
from medssl.nets.encoder_keys import encoders_in
from tests.conftest import TINY_SEG_CONFIG

ROOT = Path(__file__).resolve().parents[2]
TEXT = {"method_config": {"text_encoder": "learned"}}  # KP-Net without the optional package


def build(seg_phantom: Path, method: str, overrides: dict | None = None):
    """A freshly initialised ``method`` for the phantom at the tiny test config."""
    dataset = load_dataset(seg_phantom)
    config = {**TINY_SEG_CONFIG, **(TEXT if method == "kpnet" else {}), **(overrides or {})}
    cls = get_method("segmentation", method)
    cfg = resolve_config(
        task="segmentation",
        method_cls=cls,
        dataset=dataset,
        profile="cpu",
        file_values=config,
        flag_values={"method": method, "task": "segmentation", "data_dir": str(seg_phantom)},
    )
    info = get_task("segmentation").dataset_info(dataset, cfg)
    return cls(cfg.to_dict(), info), info


@pytest.fixture(scope="module")
def exported(seg_phantom: Path, tmp_path_factory) -> Path:
    """An encoder exported from a supervised method's MONAI UNet (random, distinct weights)."""
    module, info = build(seg_phantom, "supervised")
    torch.manual_seed(7)
    with torch.no_grad():
        for p in module.net.parameters():
            p.normal_()
    run = tmp_path_factory.mktemp("pretrained")
    export_encoder(module.net, run, info, intensity="mri")
    return run


def test_the_export_has_its_sidecar(exported: Path):
    meta = json.loads((exported / SIDECAR_FILE).read_text())
    tensors = load_file(exported / ENCODER_FILE)
    assert meta["backbone"] == "unet" and meta["spatial_dims"] == 3 and meta["in_channels"] == 1
    assert meta["tensors"] == len(tensors) and meta["intensity"] == "mri"
    assert {k.split(".")[1] for k in tensors} == {"0", "1", "2"}  # the three encoder levels


@pytest.mark.parametrize("method", method_names("segmentation"))
def test_every_segmentation_method_loads_the_encoder(seg_phantom: Path, exported, method):
    if method.startswith("toy_"):
        pytest.skip("test-only method")
    module, info = build(seg_phantom, method)
    report = init_from(module, info, exported)
    tensors = load_file(exported / ENCODER_FILE)
    targets = encoders_in(module)
    fitting = [set(mapped.keys) & set(tensors) for _, _, mapped in targets]
    assert targets and report.loaded == sum(len(f) for f in fitting)
    assert report.unexpected == len(set(tensors) - set.union(*fitting))  # KP-Net: no PReLU
    for (_, net, mapped), keys in zip(targets, fitting, strict=True):
        state = net.state_dict()  # every backbone (teachers, CPS's second net) got them
        assert len(keys) >= len(tensors) * 2 // 3, method
        for canonical in keys:
            assert torch.equal(state[mapped.keys[canonical]], tensors[canonical]), canonical


def test_the_other_way_from_a_multi_decoder_net(seg_phantom: Path, tmp_path: Path):
    source, info = build(seg_phantom, "mcnet_plus")
    export_encoder(source.net, tmp_path, info)
    target, info = build(seg_phantom, "supervised")
    report = init_from(target, info, tmp_path / ENCODER_FILE)
    assert report.loaded == len(load_file(tmp_path / ENCODER_FILE)) and report.missing == 0


def test_an_encoder_of_other_widths_is_refused(seg_phantom: Path, exported):
    wide = {"net": {"channels": [16, 32, 64], "num_res_units": 0}}
    module, info = build(seg_phantom, "supervised", wide)
    with pytest.raises(CheckpointError, match=r"only [0-3] of the encoder's 9 tensors fit"):
        init_from(module, info, exported)


def test_an_encoder_of_other_dims_or_family_is_refused(seg_phantom: Path, exported, tmp_path):
    module, info = build(seg_phantom, "supervised", {"data": {"spatial_dims": 2}})
    with pytest.raises(CheckpointError, match="encoder has 3 spatial dims, this run's network 2"):
        init_from(module, info, exported)
    vnet, vinfo = build(seg_phantom, "supervised", {"net": {"name": "vnet"}})
    export_encoder(vnet.net, tmp_path, vinfo)
    unet, uinfo = build(seg_phantom, "supervised")
    with pytest.raises(CheckpointError, match="a vnet encoder; this method's networks are unet"):
        init_from(unet, uinfo, tmp_path)


def test_train_init_prints_what_it_loaded(seg_phantom: Path, exported, tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(TINY_SEG_CONFIG))
    cmd = [sys.executable, "-m", "medssl.cli", "train", "--data", str(seg_phantom)]
    cmd += ["--out", str(tmp_path / "run"), "--method", "cps", "--labeled", "2"]
    cmd += [
        "--profile",
        "cpu",
        "--max-steps",
        "1",
        "--config",
        str(config),
        "--init",
        str(exported),
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    n = len(load_file(exported / ENCODER_FILE))
    assert f"{2 * n} tensors loaded into net, net2; 0 missing, 0 unexpected" in done.stderr

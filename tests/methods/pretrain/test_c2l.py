"""C2L: the mixed key is the mixed query's positive, a FIFO queue, a 0.999 momentum key network,
learning on a fixed batch, and pretraining on PneumoniaMNIST that initialises a classifier."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from medssl import api
from medssl.data.layouts import load_images_only
from medssl.engine.handoff import ENCODER_FILE
from medssl.engine.profiles import resolve_config
from medssl.errors import ConfigError
from medssl.losses.contrastive import KeyQueue, info_nce
from medssl.methods.pretrain.c2l import (
    C2L,
    CPU_QUEUE_SIZE,
    C2LConfig,
    draw_mixup,
    mixup,
    random_views,
)

# a ResNet-10 a quarter wide: the method's behaviour at a fraction of ResNet-18's cost
TINY_NET = {"name": "resnet10", "options": {"widen_factor": 0.25}}
INFO = {"spatial_dims": 2, "in_channels": 1, "data_dims": 2}
NO_AUGMENT = {
    "crop_scale": (1.0, 1.0),
    "crop_ratio": (1.0, 1.0),
    "rotation_degrees": 0.0,
    "flip_prob": 0.0,
    "brightness": 0.0,
    "contrast": 0.0,
    "cutout_holes": 0,
}


def make(**method_config) -> C2L:
    torch.manual_seed(0)
    config = {"queue_size": 32, **method_config}
    run = {"task": "pretrain", "method": "c2l", "net": TINY_NET, "method_config": config}
    return C2L({**run, "data": {"patch_size": [16, 16]}}, INFO)


def test_the_mixed_key_is_the_positive_at_index_0_of_a_cross_entropy():
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(4, 8, generator=g), dim=1)
    k_raw, negatives = torch.randn(4, 8, generator=g), F.normalize(torch.randn(6, 8), dim=1)
    lam, perm = 0.7, torch.tensor([2, 0, 3, 1])
    k_mix = F.normalize(mixup(k_raw, lam, perm), dim=1)
    assert torch.allclose(k_mix[0], F.normalize(0.7 * k_raw[0] + 0.3 * k_raw[2], dim=0))
    loss, logits = info_nce(q, k_mix, negatives, 0.07)
    expected = torch.cat([(q * k_mix).sum(1, keepdim=True), q @ negatives.t()], 1) / 0.07
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(loss, F.cross_entropy(expected, torch.zeros(4, dtype=torch.long)))
    _, aligned = info_nce(k_mix, k_mix, negatives, 0.07)  # the query of the mixed key itself
    assert (aligned[:, 0] > aligned[:, 1:].max(dim=1).values).all()


def test_mixup_draws_keep_the_larger_share_and_repeat_under_a_seed():
    draws = [draw_mixup(8, 1.0, torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert all(0.5 <= lam <= 1.0 and sorted(p.tolist()) == list(range(8)) for lam, p in draws)
    assert draws[0][0] == draws[1][0] and torch.equal(draws[0][1], draws[1][1])
    assert draws[0][0] != draws[2][0]


def test_views_are_seeded_crops_of_the_same_shape_and_flip_as_drawn():
    x = torch.rand(4, 1, 16, 12)
    hp = C2LConfig()
    views = [random_views(x, hp, torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert views[0].shape == x.shape and torch.equal(views[0], views[1])
    assert not torch.allclose(views[0], views[2])
    flipped = random_views(x, C2LConfig(**{**NO_AUGMENT, "flip_prob": 1.0}))
    torch.testing.assert_close(flipped, x.flip(-1))  # the affine resampling is exact


def test_with_one_network_and_no_augmentation_the_positives_win():
    model = make(**NO_AUGMENT).eval()
    x, others = torch.rand(6, 1, 16, 16), torch.rand(32, 1, 16, 16)
    with torch.no_grad():
        model.queue.push(F.normalize(model.key_features(others), dim=1))
        lam, perm = draw_mixup(6, 1.0, torch.Generator().manual_seed(0))
        x_mix = mixup(random_views(x, model.hp), lam, perm)
        torch.testing.assert_close(x_mix, mixup(x, lam, perm))  # the views are the image
        q_mix = model.query(x_mix)
        torch.testing.assert_close(q_mix, F.normalize(model.key_features(x_mix), dim=1))
        losses = model.pretext_losses(x, torch.Generator().manual_seed(0))
    assert losses["instance_acc"] == 1.0
    assert losses["image_mixup_loss"] < losses["feature_mixup_loss"]  # its key is q_mix itself


def test_training_enqueues_the_keys_and_validation_does_not():
    model = make()
    x = torch.rand(8, 1, 16, 16)
    with torch.no_grad():
        model.pretext_losses(x, torch.Generator().manual_seed(0))
        assert int(model.queue.ptr) == 0
        model.pretext_losses(x, None)
    assert int(model.queue.ptr) == 8
    assert torch.allclose(model.queue.keys[:8].norm(dim=1), torch.ones(8))


def test_the_queue_is_first_in_first_out_and_wraps_around():
    queue = KeyQueue(5, 2)
    keys = torch.arange(1, 15, dtype=torch.float32).view(7, 2)
    queue.push(keys[:3])
    assert int(queue.ptr) == 3 and torch.equal(queue.keys[:3], keys[:3])
    old = queue.keys[3:].clone()
    queue.push(keys[3:6])  # slots 3, 4, then 0
    assert int(queue.ptr) == 1
    assert torch.equal(queue.keys, torch.stack([keys[5], keys[1], keys[2], keys[3], keys[4]]))
    assert not torch.equal(queue.keys[3:], old)
    queue.push(torch.arange(100.0, 112.0).view(6, 2))  # more than it holds: the newest 5
    assert int(queue.ptr) == 2 and queue.keys[1].tolist() == [110.0, 111.0]


def test_the_key_network_follows_by_momentum_0999():
    model = make()
    assert model.ema_decay_at(0) == model.ema_decay_at(10**6) == 0.999
    assert not any(p.requires_grad for p in model.key_encoder.parameters())
    with torch.no_grad():
        for p in [*model.encoder.parameters(), *model.head.parameters()]:
            p.add_(1.0)
    query = [p.clone() for p in [*model.encoder.parameters(), *model.head.parameters()]]
    key = [p.clone() for p in [*model.key_encoder.parameters(), *model.key_head.parameters()]]
    model.on_train_batch_end(None, None, 0)  # the engine's EMA hook
    moved = [*model.key_encoder.parameters(), *model.key_head.parameters()]
    for new, k, q in zip(moved, key, query, strict=True):
        torch.testing.assert_close(new, 0.999 * k + 0.001 * q)


def test_the_loss_decreases_on_a_fixed_batch():
    model = make()
    x, others = torch.rand(8, 1, 16, 16), torch.rand(32, 1, 16, 16)
    with torch.no_grad():  # a queue of real keys, not random unit vectors
        model.queue.push(F.normalize(model.key_features(random_views(others, model.hp)), dim=1))
    optimiser = torch.optim.SGD(model.learnable_params(), lr=0.03, momentum=0.9)
    losses = []
    for step in range(6):
        loss = model.pretext_losses(x, torch.Generator().manual_seed(0))["loss"]  # same views
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        model.on_train_batch_end(None, None, step)
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.fixture(scope="module")
def pneumonia(shared_data: Path, tmp_path_factory) -> Path:
    """16 + 16 training and 6 + 6 validation images of the real PneumoniaMNIST npz."""
    source = np.load(shared_data / "pneumoniamnist" / "pneumoniamnist.npz")
    arrays = {}
    for split, per_class in (("train", 16), ("val", 6)):
        labels = source[f"{split}_labels"].reshape(-1)
        keep = np.concatenate([np.flatnonzero(labels == k)[:per_class] for k in (0, 1)])
        arrays[f"{split}_images"] = source[f"{split}_images"][keep]
        arrays[f"{split}_labels"] = source[f"{split}_labels"][keep]
    root = tmp_path_factory.mktemp("pneumonia")
    np.savez_compressed(root / "pneumoniamnist.npz", **arrays)
    return root


def test_the_defaults_are_a_resnet18_and_on_cpu_a_small_queue(pneumonia: Path):
    dataset = load_images_only(pneumonia)
    layers = dict(task="pretrain", method_cls=C2L, dataset=dataset, file_values={})
    cpu = resolve_config(profile="cpu", flag_values={}, **layers)
    assert cpu.net.name == "resnet18" and cpu.method_config == {"queue_size": CPU_QUEUE_SIZE}
    assert (cpu.optim.name, cpu.optim.lr) == ("sgd", 0.03)
    own = resolve_config(profile="cpu", flag_values={"method_config": {"queue_size": 64}}, **layers)
    gpu = resolve_config(profile="gpu", flag_values={}, **layers)
    assert own.method_config["queue_size"] == 64 and "queue_size" not in gpu.method_config


def test_pretraining_on_pneumoniamnist_initialises_a_classifier(pneumonia: Path, tmp_path: Path):
    tiny = {"net": TINY_NET, "train": {"val_every": 3, "log_every": 1}}
    pretrain = {**tiny, "data": {"patch_size": [28, 28], "batch_size": 8, "val_cases": 8},
                "method_config": {"queue_size": 16}}  # fmt: skip
    run = api.train(pneumonia, task="pretrain", method="c2l", out=tmp_path / "pre",
                    profile="cpu", max_steps=3, config=pretrain)  # fmt: skip
    with open(run / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert any(r.get("train/instance_acc") for r in rows)
    assert any(r.get("val/pretext_loss") for r in rows)
    encoder = load_file(run / ENCODER_FILE)
    finetune = {**tiny, "data": {"batch_size": 8}, "freeze_encoder": "all"}  # a linear probe
    probe = api.train(pneumonia, task="classification", method="supervised", out=tmp_path / "ft",
                      profile="cpu", max_steps=1, init=str(run), config=finetune)  # fmt: skip
    state = torch.load(probe / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for name in ("conv1.weight", "layer1.0.conv1.weight", "layer4.0.conv2.weight"):
        torch.testing.assert_close(state[f"net.{name}"], encoder[name])  # every conv fits


def test_a_3d_run_is_refused_in_one_line_and_its_fix_trains(seg_phantom: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="data.spatial_dims: 2") as refused:
        api.train(seg_phantom, task="pretrain", method="c2l", out=tmp_path / "r",
                  profile="cpu", max_steps=1)  # fmt: skip
    assert "\n" not in str(refused.value) and not (tmp_path / "r").exists()
    with pytest.raises(ConfigError, match="2D"):
        C2L({"task": "pretrain", "method": "c2l"}, {**INFO, "spatial_dims": 3})
    data = {"spatial_dims": 2, "patch_size": [32, 32], "batch_size": 4, "val_cases": 0}
    slices = {"net": TINY_NET, "train": {"log_every": 1}, "data": data,
              "method_config": {"queue_size": 8}}  # fmt: skip
    run = api.train(seg_phantom, task="pretrain", method="c2l", out=tmp_path / "2d",
                    profile="cpu", max_steps=1, config=slices)  # fmt: skip
    assert (run / ENCODER_FILE).is_file()

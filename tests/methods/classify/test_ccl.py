"""CCL-Net end to end: its block on every classification backbone (2D and 3D), soft labels from
the learned class embeddings, a few training steps on a 3-class 2D array set and on the 3D
phantom with the loss decreasing and learning beyond chance."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from medssl import api
from medssl.engine.inference import load_model
from medssl.engine.module import get_method, method_names
from medssl.losses.class_correlation import correlation_soft_labels
from medssl.methods.classify.ccl import CCLNet
from tests.methods.classify.tiny import TINY_3D, train_classifier

TINY_2D = {
    "data": {"batch_size": 12},
    "net": {"name": "resnet10"},
    "train": {"val_every": 4, "log_every": 1},
}


def train(data: Path, out: Path, max_steps: int, config: dict) -> Path:
    return train_classifier("ccl", data, out, max_steps, config, seed=0)


def fit_fixed_batch(module: CCLNet, x: torch.Tensor, y: torch.Tensor, steps: int = 8) -> list:
    """The total CCL loss over ``steps`` Adam steps on one batch."""
    module.train()
    optimiser = torch.optim.Adam(module.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = module.training_losses({"labeled": {"image": x, "label": y}})["loss"]
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    return losses


def three_class_images(per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """28 x 28 uint8 noise with a bright square top left (0), bottom right (1) or a bar (2)."""
    images = rng.integers(0, 80, size=(3 * per_class, 28, 28)).astype(np.uint8)
    labels = np.repeat(np.arange(3), per_class)
    for image, label in zip(images, labels, strict=True):
        if label == 0:
            image[4:12, 4:12] = 220
        elif label == 1:
            image[16:24, 16:24] = 220
        else:
            image[12:16, 2:26] = 220
    return images, labels[:, None]


@pytest.fixture(scope="module")
def three_class(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("three")
    train_images, train_labels = three_class_images(12, rng)
    val_images, val_labels = three_class_images(4, rng)
    np.savez_compressed(
        root / "threemnist.npz",
        train_images=train_images,
        train_labels=train_labels,
        val_images=val_images,
        val_labels=val_labels,
    )
    return root


@pytest.fixture(scope="module")
def cls3d(tmp_path_factory) -> Path:
    from medssl.data.phantom import make_phantom

    return make_phantom(tmp_path_factory.mktemp("cls3d") / "cls3d", "cls3d", cases=16, seed=0)


def test_ccl_is_a_classification_method():
    assert "ccl" in method_names("classification")
    assert get_method("classification", "ccl") is CCLNet


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("resnet10", [28, 28]),
        ("densenet121", [28, 28]),
        ("resnet10", [16, 16, 16]),
        ("densenet121", [8, 8, 8]),
    ],
)
def test_block_sits_on_every_backbone(name: str, size: list[int]):
    """Pooled features and logits in one pass (the logits are the network's own), the block
    sized to the backbone's features, every term finite, gradients reaching backbone and block."""
    info = {"num_classes": 3, "in_channels": 1, "spatial_dims": len(size), "image_size": size}
    net: dict = {"name": name}
    if name.startswith("densenet"):  # a narrow DenseNet-121: the same layout, built in a second
        net["options"] = {"init_features": 8, "growth_rate": 4, "bn_size": 2}
    run = {"task": "classification", "net": net, "method_config": {"embed_dim": 8}}
    run["method_config"]["small_input"] = True
    module = get_method("classification", "ccl")(run, info).eval()
    x = torch.randn(2, 1, *size)
    features, logits = module.features_and_logits(x)
    assert features.shape == (2, module.ccl.project.in_features) and logits.shape == (2, 3)
    assert torch.allclose(logits, module(x), atol=1e-6)

    losses = module.train().training_losses(
        {"labeled": {"image": torch.randn(3, 1, *size), "label": torch.tensor([0, 1, 2])}}
    )
    assert set(losses) == {"loss", "hard", "soft", "metric"}
    assert all(torch.isfinite(v) for v in losses.values())
    losses["loss"].backward()
    assert module.ccl.classes.grad is not None and module.ccl.project.weight.grad is not None
    first_conv = next(p for p in module.net.parameters() if p.ndim > 2)
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0


def test_soft_labels_follow_the_class_embeddings():
    info = {"num_classes": 3, "in_channels": 1, "spatial_dims": 2, "image_size": [28, 28]}
    run = {"task": "classification", "net": {"name": "resnet10"}}
    module = get_method("classification", "ccl")(run, info)
    q = module.soft_labels()
    assert not q.requires_grad  # a target
    assert torch.allclose(q.sum(dim=1), torch.ones(3)) and torch.all(q >= 0)
    assert torch.equal(q.argmax(dim=1), torch.arange(3))
    with torch.no_grad():  # class 1 onto class 0's direction, almost: they now share most mass
        module.ccl.classes[1] = module.ccl.classes[0] + 0.05 * module.ccl.classes[1]
    closer = module.soft_labels()
    assert closer[0, 1] > q[0, 1] and closer[1, 0] > q[1, 0]
    unit = torch.nn.functional.normalize(module.ccl.classes.detach(), dim=1)
    assert torch.allclose(closer, correlation_soft_labels(unit, module.hp.temperature))


def test_2d_three_classes_train_and_beat_chance(three_class: Path, tmp_path: Path):
    run = train(three_class, tmp_path / "run", 12, TINY_2D)
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert all(f"train/{k}" in header for k in ("loss", "hard", "soft", "metric"))
    result = api.evaluate(run, three_class, only="val")
    assert result["cases"] == 12 and set(result["per_class"]) == {"0", "1", "2"}
    assert result["mean"]["auc"] > 0.6, result["mean"]

    module = load_model(run)
    q = module.soft_labels()
    assert torch.allclose(q.sum(dim=1), torch.ones(3)) and torch.equal(q.argmax(1), torch.arange(3))
    arrays = np.load(three_class / "threemnist.npz")
    pick = [0, 1, 12, 13, 24, 25]
    x = torch.as_tensor(arrays["train_images"][pick], dtype=torch.float32)[:, None] / 255.0
    losses = fit_fixed_batch(module, x, torch.tensor([0, 0, 1, 1, 2, 2]))
    assert losses[-1] < losses[0] * 0.7, losses


def test_3d_phantom_trains_and_beats_chance(cls3d: Path, tmp_path: Path):
    from medssl.data.layouts import load_dataset
    from medssl.tasks.classification.data import case_record, pipeline

    run = train(cls3d, tmp_path / "run", 16, TINY_3D)
    result = api.evaluate(run, cls3d, only="labeled")
    assert result["mean"]["auc"] > 0.6, result["mean"]
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    logged = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert len(logged) == 16 and np.mean(logged[-4:]) < np.mean(logged[:4]), logged

    module = load_model(run)
    cases = load_dataset(cls3d).labeled
    picked = [next(c for c in cases if c.target == k) for k in (0, 1)]
    picked += [next(c for c in cases if c.target == k and c not in picked) for k in (0, 1)]
    transform = pipeline(module.dataset_info, module.run_config.data)
    records = [transform(case_record(c)) for c in picked]
    x = torch.stack([torch.as_tensor(r["image"]) for r in records]).float()
    losses = fit_fixed_batch(module, x, torch.tensor([0, 1, 0, 1]))
    assert losses[-1] < losses[0] * 0.7, losses

"""BKC-Net end to end: focus-perceive segmentation then bi-knowledge contrast, on the 3D phantom
(lesion masks) and on 2D PNGs whose lesions are manifest positions; the loss on a fixed batch,
the switches, the radiomics statistics kept in the checkpoint, and the one-line errors of a
dataset or input without lesions. ``supervised`` reads the same lesion region."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from medssl import api
from medssl.data.io import read_image
from medssl.data.layouts import load_dataset
from medssl.data.radiomics import extract_features
from medssl.engine.inference import load_model
from medssl.engine.module import get_method, method_names
from medssl.errors import ConfigError
from medssl.methods.classify.bkc import BKCNet
from medssl.tasks.classification.data import case_record, pipeline
from medssl.tasks.classification.inference import dataset_records
from medssl.tasks.classification.lesion import radiomics_table
from tests.methods.classify.tiny import TINY_3D, train_classifier

FAST_RADIOMICS = {"radiomics_settings": {"image_types": ["Original"]}}
# a narrow ResNet-10 with the usual stride-2 stem and max pool: 32 x 32 inputs become 8 x 8;
# validation only at the 10th step, so that best.ckpt is the final weights, not an early tie
TINY_NET_2D = {"name": "resnet10", "options": {"conv1_t_stride": 2, "widen_factor": 0.5}}
TINY_2D = {
    "data": {"batch_size": 8, "patch_size": [32, 32]},
    "net": TINY_NET_2D,
    "train": {"val_every": 10, "log_every": 1},
    "method_config": {"small_input": False},
}


def config(base: dict, **method_config) -> dict:
    """``base`` with the original-image radiomics and ``method_config`` on top."""
    out = copy.deepcopy(base)
    out["method_config"] = {**FAST_RADIOMICS, **out.get("method_config", {}), **method_config}
    return out


def train(data: Path, out: Path, max_steps: int, cfg: dict, method: str = "bkc") -> Path:
    return train_classifier(method, data, out, max_steps, cfg, seed=0)


def logged(run: Path) -> list[dict[str, str]]:
    """The training rows of ``metrics.csv`` (one per step)."""
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    return [r for r in rows if r.get("train/loss")]


def lesion_pngs(root: Path, n: int = 16, size: int = 40, seed: int = 0) -> Path:
    """A CSV manifest of ``n`` PNGs (noise) with one disc lesion each at a manifest position
    (``x``, ``y``, ``diameter_px``): bright and homogeneous (class 0) or dark (class 1); the last
    4 cases are the validation split."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    centres = np.arange(size) + 0.5
    rows = []
    for i in range(n):
        label = i % 2
        image = rng.integers(60, 110, size=(size, size)).astype(np.uint8)  # (row, column)
        diameter = int(rng.integers(8, 13))
        x, y = rng.uniform(8, size - 8, 2)
        disc = (centres[None, :] - x) ** 2 + (centres[:, None] - y) ** 2 <= (diameter / 2) ** 2
        image[disc] = 210 if label == 0 else 15
        name = f"images/les_{i:02d}.png"
        Image.fromarray(image).save(root / name)
        split = "val" if i >= n - 4 else "train"
        rows.append([f"les_{i:02d}", name, label, split, f"{x:.3f}", f"{y:.3f}", diameter])
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "image", "label", "split", "x", "y", "diameter_px"])
        writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def cls3d(tmp_path_factory) -> Path:
    from medssl.data.phantom import make_phantom

    return make_phantom(tmp_path_factory.mktemp("cls3d") / "cls3d", "cls3d", cases=16, seed=0)


@pytest.fixture(scope="module")
def run_3d(cls3d: Path, tmp_path_factory) -> Path:
    """bkc on the phantom, seeded: 16 steps (the first 3 segmentation only)."""
    return train(cls3d, tmp_path_factory.mktemp("runs") / "bkc3d", 16, config(TINY_3D))


@pytest.fixture(scope="module")
def pngs(tmp_path_factory) -> Path:
    return lesion_pngs(tmp_path_factory.mktemp("pngs") / "lesions")


@pytest.fixture(scope="module")
def no_lesions(tmp_path_factory) -> Path:
    """A MedMNIST-style npz of grey noise (no lesion anywhere); class 1 slightly brighter."""
    rng = np.random.default_rng(1)
    root = tmp_path_factory.mktemp("blank")
    arrays = {}
    for split, n in (("train", 12), ("val", 4)):
        labels = np.arange(n) % 2
        images = rng.integers(20, 160, size=(n, 28, 28)) + 60 * labels[:, None, None]
        arrays[f"{split}_images"] = images.astype(np.uint8)
        arrays[f"{split}_labels"] = labels[:, None]
    np.savez_compressed(root / "blankmnist.npz", **arrays)
    return root


def test_bkc_is_a_classification_method():
    assert "bkc" in method_names("classification")
    assert get_method("classification", "bkc") is BKCNet
    inputs = BKCNet.lesion_inputs({})
    assert inputs.context_margin == 0.5 and inputs.radiomics is not None
    assert BKCNet.lesion_inputs({"radiomics": False}).radiomics is None
    assert get_method("classification", "supervised").lesion_inputs({}).any is False


# -- (a) 3D: the phantom -----------------------------------------------------------------------
def test_3d_phantom_trains_and_beats_chance(run_3d: Path, cls3d: Path):
    rows = logged(run_3d)
    assert len(rows) == 16
    focus = [r for r in rows if not r["train/ce"]]  # stage 1: int(0.2 * 16) steps, seg alone
    assert len(focus) == 3 and all(r["train/loss"] == r["train/seg"] for r in focus)
    assert all(r["train/ce"] and r["train/contrast"] and r["train/seg"] for r in rows[3:])
    result = api.evaluate(run_3d, cls3d, only="labeled")
    assert result["cases"] == 12 and result["mean"]["auc"] > 0.8, result["mean"]


# -- (e) the radiomics statistics of the training cases are kept with the weights ---------------
def test_radiomics_statistics_survive_the_checkpoint(run_3d: Path, cls3d: Path):
    module = load_model(run_3d)
    columns = module.dataset_info["radiomics"]["columns"]
    assert columns and all(c.startswith("original_") for c in columns)  # Original image only
    assert module.radiomics_mean.shape == (len(columns),)
    split = json.loads((run_3d / "split.json").read_text())
    cases = load_dataset(cls3d).subset(split["labeled"]).cases
    settings = module.inputs.radiomics
    rows = [extract_features(c.images[0], c.meta["mask"], settings) for c in cases]
    values = np.array([[row.get(c, np.nan) for c in columns] for row in rows])
    np.testing.assert_allclose(module.radiomics_mean.numpy(), np.nanmean(values, 0), rtol=1e-6)
    np.testing.assert_allclose(module.radiomics_sd.numpy(), np.nanstd(values, 0), rtol=1e-6)
    assert module.radiomics_mean.abs().max() > 1.0  # not the zeros / ones of a fresh module
    volume = columns.index("original_shape_VoxelVolume")
    assert module.radiomics_sd[volume] > 1.0

    # new cases (evaluate) are standardised with these statistics, not their own
    held_out = load_dataset(cls3d).subset(split["val"]).cases
    raw = [extract_features(c.images[0], c.meta["mask"], settings) for c in held_out]
    raw_values = np.array([[row.get(c, np.nan) for c in columns] for row in raw])
    mean, sd = module.radiomics_mean.numpy(), module.radiomics_sd.numpy()
    spread = sd > 1e-10 * np.maximum(1.0, np.abs(mean))
    records = dataset_records(module, load_dataset(cls3d), held_out)
    assert [r["id"] for r in records] == [c.id for c in held_out]
    got = np.stack([r["radiomics"] for r in records])
    expected = np.where(spread, (raw_values - mean) / np.where(spread, sd, 1.0), 0.0)
    np.testing.assert_allclose(got, np.nan_to_num(expected), rtol=1e-4, atol=1e-5)

    weights = module.radiomics_weights()
    assert set(weights) == set(columns) and list(weights.values()) == sorted(
        weights.values(), reverse=True
    )
    record = case_record(cases[0], module.inputs, {cases[0].id: np.zeros(len(columns), "f4")})
    sample = pipeline(module.dataset_info, module.run_config.data, inputs=module.inputs)(record)
    batch = {
        "image": torch.as_tensor(sample["image"])[None],
        "radiomics": torch.as_tensor(sample["radiomics"])[None],
    }
    probs = module.eval().predict_probs(batch)
    assert probs.shape == (1, 2) and float(probs.sum()) == pytest.approx(1.0, abs=1e-5)
    assert module.joint_embedding(batch).shape == (1, 2 * module.hp.embed_dim)


# -- (f) a bare image gives no lesion ----------------------------------------------------------
def test_predict_on_a_bare_image_is_a_config_error(run_3d: Path, cls3d: Path, tmp_path: Path):
    image = sorted((cls3d / "images").glob("*.nii.gz"))[0]
    with pytest.raises(ConfigError, match="lesion region or its radiomics") as err:
        api.predict(run_3d, [image], tmp_path / "pred")
    assert "\n" not in str(err.value) and "medssl evaluate" in str(err.value)
    assert not (tmp_path / "pred").exists()


# -- (b) 2D: lesions at manifest positions ------------------------------------------------------
def test_2d_lesion_positions_train_and_evaluate(pngs: Path, tmp_path: Path):
    run = train(pngs, tmp_path / "run", 10, config(TINY_2D))
    module = load_model(run)
    assert module.dataset_info["spatial_dims"] == 2 and module.dataset_info["pixel_spacing"] is None
    assert any("shape2D" in c for c in module.dataset_info["radiomics"]["columns"])
    rows = logged(run)
    assert len(rows) == 10 and sum(not r["train/ce"] for r in rows) == 2  # int(0.2 * 10)
    result = api.evaluate(run, pngs, only="labeled")
    assert result["cases"] == 12 and result["mean"]["auc"] > 0.75, result["mean"]
    assert api.evaluate(run, pngs, only="val")["cases"] == 4

    dataset = load_dataset(pngs)
    case = dataset.case("les_00")
    transform = pipeline(module.dataset_info, module.run_config.data, inputs=module.inputs)
    sample = transform(case_record(case, module.inputs, {"les_00": np.zeros(3, "f4")}))
    assert tuple(sample["image"].shape) == (1, 32, 32) == tuple(sample["lesion"].shape)
    lesion = np.asarray(sample["lesion"][0]) > 0.5
    where = np.argwhere(lesion)  # the disc fills the middle half of the region (margin 0.5)
    assert np.all(np.abs(where.mean(axis=0) - 15.5) < 1.5)
    assert 0.1 < lesion.mean() < 0.3  # pi / 16 of the box


# -- (c) the loss on one fixed batch -----------------------------------------------------------
def fixed_batch(n: int = 6, size: int = 32, features: int = 6) -> dict[str, torch.Tensor]:
    """Images with a centred disc (bright: class 0, dark: class 1), its mask, radiomics rows
    whose first feature tells the classes apart."""
    g = torch.Generator().manual_seed(0)
    label = torch.arange(n) % 2
    centre = torch.arange(size) + 0.5 - size / 2
    disc = (centre[None, :] ** 2 + centre[:, None] ** 2 <= 8**2).float()
    image = 0.3 * torch.randn(n, 1, size, size, generator=g)
    image = image + disc * torch.where(label == 0, 1.5, -1.5).view(n, 1, 1, 1)
    radiomics = torch.randn(n, features, generator=g)
    radiomics[:, 0] += 2.0 * label - 1.0
    lesion = disc.expand(n, 1, size, size).clone()
    return {"image": image, "label": label, "lesion": lesion, "radiomics": radiomics}


def bkc_module(features: int = 6, **method_config) -> BKCNet:
    info = {
        "num_classes": 2,
        "in_channels": 1,
        "spatial_dims": 2,
        "image_size": [32, 32],
        "radiomics": {"columns": [f"feature_{i}" for i in range(features)]},
    }
    run = {
        "task": "classification",
        "method": "bkc",
        "net": TINY_NET_2D,
        "train": {"max_steps": 10},
        "method_config": {"embed_dim": 16, "small_input": False, **method_config},
    }
    torch.manual_seed(0)
    return BKCNet(run, info)


def fit_fixed_batch(module: BKCNet, batch: dict, steps: int = 8) -> list[float]:
    module.train()
    optimiser = torch.optim.Adam(module.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = module.training_losses({"labeled": batch})["loss"]
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    return losses


def test_loss_decreases_on_a_fixed_batch():
    batch = fixed_batch()
    staged = bkc_module().train().training_losses({"labeled": batch})  # step 0 < 2 focus steps
    assert set(staged) == {"loss", "seg"} and torch.equal(staged["loss"], staged["seg"])

    module = bkc_module(focus_fraction=0.0)
    terms = module.train().training_losses({"labeled": batch})
    assert set(terms) == {"loss", "ce", "contrast", "seg"}
    assert all(torch.isfinite(v) for v in terms.values())
    terms["loss"].backward()
    for part in (module.decoder, module.deep_head, module.radiomics_head, module.classifier):
        assert all(p.grad is not None for p in part.parameters())
    first_conv = next(p for p in module.net.parameters() if p.ndim > 2)
    assert first_conv.grad.abs().sum() > 0
    module.zero_grad()

    losses = fit_fixed_batch(module, batch)
    assert losses[-1] < losses[0] * 0.7, losses


def test_the_classifier_is_decisive_within_a_few_steps():
    """The linear head reads unit embeddings at the contrastive scale 1 / T: after 4 steps on
    a batch of 6 + 2 cases its probability of the true class averages above 0.7. Read at
    scale 1 it stays near 0.5 (0.53 measured) for hundreds of steps, and on imbalanced data its
    argmax sits on the majority class while its scores already rank the cases."""
    batch = {k: v[:8] for k, v in fixed_batch(n=12).items()}
    batch["label"] = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1])
    module = bkc_module(focus_fraction=0.0)
    fit_fixed_batch(module, batch, steps=4)
    module.eval()
    probs = module.predict_probs(batch)
    assert probs[torch.arange(8), batch["label"]].mean() > 0.7, probs


def test_switches_change_the_module():
    plain = bkc_module(radiomics=False, focus_fraction=0.0)
    assert plain.radiomics_head is None and plain.classifier.in_features == 16
    terms = plain.train().training_losses({"labeled": fixed_batch()})
    assert set(terms) == {"loss", "ce", "contrast", "seg"}
    unfocused = bkc_module(focus=False)
    assert unfocused.decoder is None and unfocused.focus_steps() == 0
    assert set(unfocused.train().training_losses({"labeled": fixed_batch()})) == {
        "loss",
        "ce",
        "contrast",
    }
    whole = bkc_module(context_margin=None)
    assert whole.decoder is None and whole.inputs.context_margin is None
    with pytest.raises(ConfigError, match="focus_fraction"):
        bkc_module(focus_fraction=1.0)


# -- (d) the switches train end to end ---------------------------------------------------------
@pytest.mark.parametrize(
    ("switch", "terms"),
    [
        ({"radiomics": False}, {"ce", "contrast", "seg"}),
        ({"context_margin": 0}, {"ce", "contrast", "seg"}),
        ({"focus": False}, {"ce", "contrast"}),
    ],
)
def test_switches_train(pngs: Path, tmp_path: Path, switch: dict, terms: set):
    run = train(pngs, tmp_path / "run", 2, config(TINY_2D, **switch))
    header = set((run / "metrics.csv").read_text().splitlines()[0].split(","))
    present = {t for t in ("ce", "contrast", "seg") if f"train/{t}" in header}
    assert present == terms
    assert all(np.isfinite(float(r["train/loss"])) for r in logged(run))
    module = load_model(run)
    assert ("radiomics" in module.dataset_info) == switch.get("radiomics", True)
    assert (module.decoder is None) == (not switch.get("focus", True))


def test_whole_image_reads_every_pixel_without_lesions(no_lesions: Path, tmp_path: Path):
    run = train(no_lesions, tmp_path / "run", 2, config(TINY_2D, context_margin=None))
    module = load_model(run)
    assert module.decoder is None and "pixel_spacing" in module.dataset_info
    columns = module.dataset_info["radiomics"]["columns"]
    surface = columns.index("original_shape2D_PixelSurface")
    assert float(module.radiomics_mean[surface]) == pytest.approx(28 * 28)  # the whole image
    assert float(module.radiomics_sd[surface]) == pytest.approx(0.0, abs=1e-9)
    images = np.load(no_lesions / "blankmnist.npz")["train_images"].astype(np.float64)
    mean = columns.index("original_firstorder_Mean")
    assert float(module.radiomics_mean[mean]) == pytest.approx(images.mean(), rel=1e-6)
    result = api.evaluate(run, no_lesions, only="val")
    assert result["cases"] == 4 and np.isfinite(result["mean"]["auc"])


def test_whole_image_radiomics_keep_a_lesion_where_a_case_gives_one(cls3d: Path, no_lesions: Path):
    """``context_margin: null``: a case's lesion where it has one (the phantom's masks), every
    pixel where it has none (the npz)."""
    inputs = BKCNet.lesion_inputs({**FAST_RADIOMICS, "context_margin": None})
    phantom = load_dataset(cls3d)
    ids = [c.id for c in phantom.cases[:2]]
    table = radiomics_table(phantom, ids, inputs)
    volume = table.columns.index("original_shape_VoxelVolume")
    for k, case_id in enumerate(ids):
        mask = phantom.case(case_id).meta["mask"]
        assert table.values[k, volume] == pytest.approx((read_image(mask).array > 0).sum())
    blank = load_dataset(no_lesions)
    table = radiomics_table(blank, [blank.cases[-1].id, blank.cases[0].id], inputs)
    surface = table.columns.index("original_shape2D_PixelSurface")
    np.testing.assert_allclose(table.values[:, surface], [28 * 28, 28 * 28])
    with pytest.raises(ConfigError, match="has no lesion mask or position"):
        radiomics_table(blank, [blank.cases[0].id], BKCNet.lesion_inputs(FAST_RADIOMICS))


# -- (g) the region for a method that is not BKC-Net -------------------------------------------
def test_supervised_reads_the_lesion_region(cls3d: Path, tmp_path: Path):
    cfg = copy.deepcopy(TINY_3D)
    cfg["method_config"] = {"context_margin": 0.5}
    run = train(cls3d, tmp_path / "run", 3, cfg, method="supervised")
    module = load_model(run)
    assert module.inputs.context_margin == 0.5 and module.inputs.radiomics is None
    assert "radiomics" not in module.dataset_info
    assert len(logged(run)) == 3
    case = load_dataset(cls3d).labeled[0]
    transform = pipeline(module.dataset_info, module.run_config.data, inputs=module.inputs)
    sample = transform(case_record(case, module.inputs))
    assert tuple(sample["image"].shape) == (1, 20, 20, 20) == tuple(sample["lesion"].shape)
    lesion = np.asarray(sample["lesion"][0]) > 0.5
    assert lesion.any() and not lesion[0].any() and not lesion[-1].any()  # context on each side
    result = api.evaluate(run, cls3d, only="val")
    assert result["cases"] == 4 and np.isfinite(result["mean"]["auc"])


# -- (h) a dataset without lesions and bkc's default region ------------------------------------
def test_no_lesion_is_a_one_line_error_naming_the_case(
    no_lesions: Path, tmp_path: Path, monkeypatch, capsys
):
    first = load_dataset(no_lesions).cases[0].id
    with pytest.raises(ConfigError) as err:
        train(no_lesions, tmp_path / "run", 2, config(TINY_2D))
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{first}: has no lesion mask or position")
    assert "context_margin: null" in message
    assert not (tmp_path / "run").exists()

    from medssl.cli import main

    argv = ["medssl", "train", "--task", "classification", "--method", "bkc", "--data"]
    argv += [
        str(no_lesions),
        "--out",
        str(tmp_path / "cli"),
        "--profile",
        "cpu",
        "--max-steps",
        "1",
    ]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as done:
        main()
    captured = capsys.readouterr()
    assert done.value.code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0].startswith(f"error: {first}: has no lesion")

"""The segmentation data module hands methods both streams: labelled patches and the pool."""

from __future__ import annotations

from pathlib import Path

import torch

from medssl.engine.module import METHODS, register_method
from medssl.methods.segment.base import SegmentationMethod
from tests.conftest import TINY_SEG_CONFIG, train_tiny

SEEN: list[dict] = []


def _register_probe():
    if "segmentation/probe_unlabeled" in METHODS:
        return

    @register_method("probe_unlabeled")
    class ProbeUnlabeled(SegmentationMethod):
        """Test-only: records what a semi-supervised method receives, trains supervised."""

        streams = ("labeled", "unlabeled")

        def training_losses(self, batch):
            SEEN.append(
                {
                    k: {kk: tuple(v.shape) for kk, v in part.items() if torch.is_tensor(v)}
                    for k, part in batch.items()
                }
            )
            SEEN[-1]["types"] = {type(batch["labeled"]["image"]).__name__}
            labeled = batch["labeled"]
            return {"loss": self.supervised_loss(self(labeled["image"]), labeled["label"])}


def test_semi_supervised_methods_receive_the_unlabelled_pool(seg_phantom: Path, tmp_path: Path):
    _register_probe()
    SEEN.clear()
    config = {**TINY_SEG_CONFIG, "data": {**TINY_SEG_CONFIG["data"], "unlabeled_batch_size": 2}}
    run = train_tiny(
        seg_phantom, method="probe_unlabeled", out=tmp_path / "r", max_steps=2, config=config
    )
    assert len(SEEN) == 2
    shapes = SEEN[0]
    assert shapes["labeled"]["image"] == (1, 1, 32, 32, 32)
    assert shapes["labeled"]["label"] == (1, 1, 32, 32, 32)
    assert shapes["unlabeled"]["image"] == (2, 1, 32, 32, 32)
    assert "label" not in shapes["unlabeled"]
    assert SEEN[0]["types"] == {"Tensor"}  # MetaTensor stripped before the method sees it
    import json

    split = json.loads((run / "split.json").read_text())
    assert len(split["unlabeled"]) >= 4  # the phantom's unlabelled cases + unchosen labelled ones


def test_supervised_gets_no_unlabelled_stream(seg_phantom: Path, tmp_path: Path, monkeypatch):
    from medssl.methods.segment.supervised import Supervised

    keys: list[set] = []
    original = Supervised.training_losses

    def spy(self, batch):
        keys.append(set(batch))
        return original(self, batch)

    monkeypatch.setattr(Supervised, "training_losses", spy)
    train_tiny(seg_phantom, out=tmp_path / "s", max_steps=1)
    assert keys == [{"labeled"}]

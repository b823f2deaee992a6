"""The semi-supervised family is complete and every method is a benchmark candidate."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

from medssl.bench.protocols import SEMI_SUPERVISED
from medssl.engine.module import get_method, method_names
from medssl.methods.segment.semi import SemiSupervisedMethod


def test_every_benchmarked_method_is_registered():
    assert set(SEMI_SUPERVISED) <= set(method_names("segmentation"))


@pytest.mark.parametrize("name", [m for m in SEMI_SUPERVISED if m != "supervised"])
def test_semi_supervised_methods_use_the_unlabelled_pool(name: str):
    cls = get_method("segmentation", name)
    assert issubclass(cls, SemiSupervisedMethod) and "unlabeled" in cls.streams
    cls.Config()  # the paper defaults validate on their own


def test_supervised_ignores_the_pool():
    assert get_method("segmentation", "supervised").streams == ("labeled",)


def test_the_supervised_loss_is_half_dice_plus_ce():
    """The papers' scale: their SGD 0.01 and consistency weights are relative to it."""
    cfg = {
        "task": "segmentation",
        "method": "supervised",
        "net": {"channels": [8, 16], "num_res_units": 0},
        "data": {"patch_size": [16, 16]},
    }
    module = get_method("segmentation", "supervised")(
        cfg, {"num_classes": 3, "spatial_dims": 2, "in_channels": 1}
    )
    torch.manual_seed(0)
    logits, label = torch.randn(2, 3, 16, 16), torch.randint(0, 3, (2, 1, 16, 16))
    dice = DiceLoss(to_onehot_y=True, softmax=True)(logits, label)
    ce = F.cross_entropy(logits, label[:, 0])
    torch.testing.assert_close(module.supervised_loss(logits, label), (dice + ce) / 2)

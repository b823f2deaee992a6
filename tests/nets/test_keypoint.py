"""CCF-Net's network: a stride-16 grid of heat, offset and class maps on a ResNet trunk."""

from __future__ import annotations

import pytest
import torch

from medssl.nets.factory import create_net
from medssl.nets.keypoint import CCFNet, MultiKernelPooling, MultiScaleContext, resnet_trunk


def backbone(name: str = "resnet18", in_channels: int = 1):
    return create_net(name, 2, in_channels, 1, options={"conv1_t_stride": 2})


def test_the_trunk_reads_layer3_at_stride_16():
    trunk, channels, stride = resnet_trunk(backbone())
    assert (channels, stride) == (256, 16)
    assert trunk(torch.zeros(1, 1, 64, 96)).shape == (1, 256, 4, 6)
    _, channels50, _ = resnet_trunk(backbone("resnet50"))
    assert channels50 == 1024


def test_outputs_per_landmark_and_cell():
    net = CCFNet(backbone(in_channels=3), num_landmarks=5, num_classes=2, landmark_classes=3)
    out = net(torch.randn(2, 3, 64, 48))
    assert net.stride == 16
    assert out["heat"].shape == (2, 5, 4, 3)
    assert out["offset"].shape == (2, 5, 2, 4, 3)
    assert out["landmark_logits"].shape == (2, 5, 3, 4, 3)
    assert out["class_logits"].shape == (2, 2)
    plain = CCFNet(backbone(), num_landmarks=5, context=False)(torch.randn(1, 1, 32, 32))
    assert plain["class_logits"] is None and plain["landmark_logits"] is None


@pytest.mark.parametrize(("name", "published"), [("resnet18", 4.83), ("resnet50", 10.79)])
def test_parameter_count_matches_the_papers_msc_backbones(name: str, published: float):
    """The README of CCFNet.pytorch: ResNet18-MSC 4.83 M, ResNet50-MSC 10.79 M parameters
    (11 keypoints; the output convolution's width differs by a few thousand)."""
    net = CCFNet(backbone(name, in_channels=3), num_landmarks=11)
    millions = sum(p.numel() for p in net.parameters()) / 1e6
    assert millions == pytest.approx(published, abs=0.02)


def test_the_context_module_keeps_the_shape_of_any_grid():
    pooled = MultiKernelPooling(8)(torch.randn(1, 8, 5, 3))
    assert pooled.shape == (1, 11, 5, 3)
    assert MultiScaleContext(16)(torch.randn(2, 16, 7, 5)).shape == (2, 16, 7, 5)

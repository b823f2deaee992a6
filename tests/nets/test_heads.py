"""Projection and classification heads: their layers and output shapes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from medssl.nets.encoders import encoder_of
from medssl.nets.factory import create_net
from medssl.nets.heads import HEADS, ClassificationHead, ProjectionHead, create_head


def test_projection_head_is_linear_bn_relu_linear_by_default():
    head = ProjectionHead(64, out_dim=16)
    assert [type(m) for m in head.mlp] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert head.mlp[0].out_features == 64  # hidden width defaults to the input width
    assert head(torch.randn(4, 64)).shape == (4, 16)


def test_projection_head_layers_width_and_norm_are_configurable():
    moco_v1 = ProjectionHead(32, out_dim=8, num_layers=1)
    assert [type(m) for m in moco_v1.mlp] == [nn.Linear]
    moco_v2 = ProjectionHead(32, out_dim=8, hidden_dim=48, batch_norm=False)
    assert [type(m) for m in moco_v2.mlp] == [nn.Linear, nn.ReLU, nn.Linear]
    deep = ProjectionHead(32, out_dim=8, hidden_dim=16, num_layers=3)
    linears = [m for m in deep.mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(32, 16), (16, 16), (16, 8)]
    with pytest.raises(ValueError, match="at least 1 layer"):
        ProjectionHead(32, num_layers=0)


def test_projection_of_encoder_features_is_what_moco_normalises():
    encoder = encoder_of(create_net("resnet18", 2, 1, 2, small_input=True, widen_factor=0.125))
    head = ProjectionHead(encoder.feature_dim, out_dim=128)
    z = head(encoder(torch.randn(4, 1, 28, 28)))
    assert z.shape == (4, 128)  # B x D, one vector per image
    q = F.normalize(z, dim=1)
    torch.testing.assert_close(q.norm(dim=1), torch.ones(4))
    assert (q @ q.T).shape == (4, 4)


@pytest.mark.parametrize("shape", [(3, 16), (3, 16, 5, 5), (3, 16, 4, 4, 4)])
def test_heads_pool_2d_and_3d_feature_maps(shape):
    assert ClassificationHead(16, 7)(torch.randn(shape)).shape == (3, 7)
    assert ProjectionHead(16, out_dim=8)(torch.randn(shape)).shape == (3, 8)


def test_classification_head_is_pool_dropout_linear():
    head = ClassificationHead(16, 4, dropout=0.5).eval()
    x = torch.randn(2, 16, 3, 3)
    torch.testing.assert_close(head(x), head.fc(x.mean(dim=(2, 3))))


def test_heads_are_registered_by_name():
    assert HEADS.names() == ["classification", "projection"]
    assert isinstance(create_head("projection", 16, 8, num_layers=1), ProjectionHead)
    head = create_head("classification", 16, 5, dropout=0.1)
    assert isinstance(head, ClassificationHead) and head.out_dim == 5

"""CPS: each network learns from the other's hard labels, gradients stop at the pseudo label."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medssl.losses.pseudo_label import cross_pseudo_loss, pseudo_labels


def test_pseudo_labels_are_the_detached_argmax():
    logits = torch.tensor([[[0.1, 2.0, -1.0]], [[0.3, 0.0, 4.0]], [[0.2, 1.0, 0.0]]])
    logits = logits.unsqueeze(0).requires_grad_(True)  # (B=1, K=3, 1, 3)
    labels = pseudo_labels(logits)
    assert labels.shape == (1, 1, 3)
    assert labels.dtype == torch.long
    assert labels.flatten().tolist() == [1, 0, 1]
    assert not labels.requires_grad


def test_cps_loss_uses_the_other_networks_label():
    logits1 = torch.tensor([[[0.0], [3.0]]])  # one voxel, argmax 1
    logits2 = torch.tensor([[[2.0], [0.0]]])  # argmax 0
    # CE(net1, y2 = 0) + CE(net2, y1 = 1)
    expected = math.log(1 + math.exp(3.0)) + math.log(1 + math.exp(2.0))
    assert cross_pseudo_loss(logits1, logits2).item() == pytest.approx(expected, rel=1e-6)
    own = math.log(1 + math.exp(-3.0)) + math.log(1 + math.exp(-2.0))  # each on its own label
    assert cross_pseudo_loss(logits1, logits2).item() != pytest.approx(own)
    assert cross_pseudo_loss(logits1, logits2) == cross_pseudo_loss(logits2, logits1)


def test_cps_gradients_do_not_flow_into_the_pseudo_labeller():
    torch.manual_seed(0)
    logits1 = torch.randn(2, 3, 4, 4, requires_grad=True)
    logits2 = torch.randn(2, 3, 4, 4, requires_grad=True)
    term = F.cross_entropy(logits1, pseudo_labels(logits2))  # net1 taught by net2's labels
    (grad_on_labeller,) = torch.autograd.grad(term, logits2, allow_unused=True)
    assert grad_on_labeller is None
    # The full loss's gradient on net2's logits is that of net2's own CE term only.
    g1, g2 = torch.autograd.grad(cross_pseudo_loss(logits1, logits2), (logits1, logits2))
    only1 = torch.autograd.grad(F.cross_entropy(logits1, logits2.argmax(1)), logits1)[0]
    only2 = torch.autograd.grad(F.cross_entropy(logits2, logits1.argmax(1)), logits2)[0]
    assert torch.allclose(g1, only1) and torch.allclose(g2, only2)

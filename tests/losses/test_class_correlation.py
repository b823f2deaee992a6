"""CCL-Net's class-correlation terms on hand-made embeddings: soft labels are distributions that
follow the class geometry, the metric loss prefers samples on their class embedding."""

from __future__ import annotations

import math

import pytest
import torch

from medssl.losses.class_correlation import (
    class_metric_loss,
    correlation_soft_labels,
    soft_label_kl,
    squared_distances,
)


def test_soft_labels_are_distributions_with_the_true_class_largest():
    torch.manual_seed(0)
    q = correlation_soft_labels(torch.randn(5, 16), temperature=0.5)
    assert q.shape == (5, 5)
    assert torch.all(q >= 0)
    assert torch.allclose(q.sum(dim=1), torch.ones(5))
    assert torch.equal(q.argmax(dim=1), torch.arange(5))


def test_hand_constructed_embeddings_give_hand_computed_soft_labels():
    # squared distances: |c0 - c1|^2 = 1, |c0 - c2|^2 = 4, |c1 - c2|^2 = 1 + 4 = 5
    classes = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    assert torch.equal(
        squared_distances(classes, classes),
        torch.tensor([[0.0, 1.0, 4.0], [1.0, 0.0, 5.0], [4.0, 5.0, 0.0]]),
    )

    def row(*d2: float, t: float) -> list[float]:
        weights = [math.exp(-d / t) for d in d2]
        return [w / sum(weights) for w in weights]

    expected = torch.tensor([row(0, 1, 4, t=1), row(1, 0, 5, t=1), row(4, 5, 0, t=1)])
    assert torch.allclose(correlation_soft_labels(classes, 1.0), expected, atol=1e-6)
    assert correlation_soft_labels(classes, 1.0)[0].tolist() == pytest.approx(
        [0.72140, 0.26539, 0.01321], abs=1e-5
    )
    sharper = torch.tensor(row(0, 1, 4, t=0.5))
    assert torch.allclose(correlation_soft_labels(classes, 0.5)[0], sharper, atol=1e-6)


def test_moving_two_class_embeddings_together_raises_their_mutual_mass():
    def on_circle(*degrees: float) -> torch.Tensor:
        angles = torch.tensor(degrees) * math.pi / 180
        return torch.stack([angles.cos(), angles.sin()], dim=1)

    apart = correlation_soft_labels(on_circle(0, 120, 240), 0.5)
    closer = correlation_soft_labels(on_circle(0, 40, 240), 0.5)  # class 1 moves towards 0
    assert closer[0, 1] > apart[0, 1] and closer[1, 0] > apart[1, 0]
    assert closer[0, 2] < apart[0, 2]  # class 2 now gets less of class 0's mass
    # equidistant classes share the off-diagonal mass equally (uniform label smoothing)
    assert apart[0, 1] == pytest.approx(float(apart[0, 2]))


def test_metric_loss_is_lowest_with_features_on_their_class_embedding():
    classes = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 2])
    on_class = class_metric_loss(classes.clone(), classes, labels)
    # |c0 - c1|^2 = 4, |c0 - c2|^2 = 2: the loss of a sample on c0 is log(1 + e^-4 + e^-2)
    assert float(on_class) == pytest.approx(
        (math.log(1 + math.exp(-4) + math.exp(-2)) * 2 + math.log(1 + 2 * math.exp(-2))) / 3,
        abs=1e-6,
    )
    between = class_metric_loss(torch.zeros(3, 2), classes, labels)
    swapped = class_metric_loss(classes[[1, 2, 0]], classes, labels)
    assert on_class < between < swapped
    assert float(between) == pytest.approx(math.log(3), abs=1e-6)  # all distances equal


def test_metric_loss_gradient_pulls_samples_to_their_class():
    classes = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    e = torch.tensor([[0.0, 0.5]], requires_grad=True)
    class_metric_loss(e, classes, torch.tensor([0])).backward()
    assert e.grad[0, 0] < 0  # a gradient step moves the sample towards +x, class 0


def test_soft_label_kl():
    targets = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert float(soft_label_kl(targets.log(), targets)) == pytest.approx(0.0, abs=1e-6)
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    log_p = torch.log_softmax(logits, dim=1)
    expected = (targets * (targets.log() - log_p)).sum(dim=1).mean()
    assert float(soft_label_kl(logits, targets)) == pytest.approx(float(expected), abs=1e-6)
    assert float(soft_label_kl(logits, targets)) > 0

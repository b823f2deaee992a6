"""BKC-Net's bi-knowledge contrastive loss (medssl.losses.bi_knowledge): supervised contrast
(Khosla et al.) against a loop written from the paper's formula, lower for aligned classes and
aligned views, blind to batch order, zero with a gradient path when nothing is positive."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medssl.losses.bi_knowledge import bi_knowledge_contrastive, supervised_contrastive


def reference_supcon(z: torch.Tensor, labels: list[int], temperature: float) -> float:
    """SupCon's L_out, one anchor at a time: ``-1/|P(i)| sum_p log softmax_{a != i}(z_i.z_a/T)_p``,
    averaged over anchors with a positive."""
    z = F.normalize(z.double(), dim=1)
    terms = []
    for i in range(len(z)):
        others = [a for a in range(len(z)) if a != i]
        positives = [p for p in others if labels[p] == labels[i]]
        if not positives:
            continue
        denominator = sum(math.exp(float(z[i] @ z[a]) / temperature) for a in others)
        logs = [float(z[i] @ z[p]) / temperature - math.log(denominator) for p in positives]
        terms.append(-sum(logs) / len(positives))
    return sum(terms) / len(terms)


def clustered(labels: list[int], dim: int = 8, spread: float = 0.05, seed: int = 0) -> torch.Tensor:
    """One embedding per label: its class's axis plus a little noise."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(dim)[: max(labels) + 1] * 3.0
    return centres[labels] + spread * torch.randn(len(labels), dim, generator=g)


def test_matches_the_formula():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(7, 5, generator=g)
    labels = [0, 1, 0, 2, 1, 0, 3]  # class 3 has no positive: not an anchor
    for temperature in (0.07, 0.5):
        got = supervised_contrastive(z, torch.tensor(labels), temperature)
        assert got.dtype == torch.float32
        assert float(got) == pytest.approx(reference_supcon(z, labels, temperature), rel=1e-4)


def test_scale_of_embeddings_does_not_matter():
    g = torch.Generator().manual_seed(2)
    z, labels = torch.randn(6, 4, generator=g), torch.tensor([0, 0, 1, 1, 2, 2])
    scaled = z * torch.tensor([[0.1], [5.0], [2.0], [0.3], [7.0], [1.0]])
    assert torch.allclose(supervised_contrastive(z, labels), supervised_contrastive(scaled, labels))


def test_aligned_classes_give_a_lower_loss_than_shuffled_ones():
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    z = clustered(labels.tolist())
    aligned = supervised_contrastive(z, labels)
    shuffled = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])  # each class spread over clusters
    assert aligned < 0.5 * supervised_contrastive(z, shuffled)
    g = torch.Generator().manual_seed(3)
    random = torch.randn(9, 8, generator=g)
    assert aligned < supervised_contrastive(random, labels)
    # its floor at a low temperature: the positives share the softmax, -log(1 / |P|) = log 2
    assert float(aligned) == pytest.approx(math.log(2.0), abs=0.01)


def test_invariant_to_batch_order():
    g = torch.Generator().manual_seed(4)
    deep, radiomics = torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g)
    labels = torch.tensor([0, 1, 1, 0, 2, 2, 1, 0])
    order = torch.randperm(8, generator=g)
    assert torch.allclose(
        supervised_contrastive(deep, labels), supervised_contrastive(deep[order], labels[order])
    )
    assert torch.allclose(
        bi_knowledge_contrastive(deep, radiomics, labels),
        bi_knowledge_contrastive(deep[order], radiomics[order], labels[order]),
    )


def test_the_two_views_of_a_case_are_positives():
    """All labels distinct: only the other view of the same case is positive, so aligned views
    give a low loss and views of different cases a high one."""
    g = torch.Generator().manual_seed(5)
    deep = torch.randn(6, 16, generator=g)
    labels = torch.arange(6)
    assert float(supervised_contrastive(deep, labels)) == 0.0  # alone: nothing positive
    aligned = bi_knowledge_contrastive(deep, deep + 0.01 * torch.randn(6, 16, generator=g), labels)
    mismatched = bi_knowledge_contrastive(deep, deep.roll(1, dims=0), labels)
    assert aligned < mismatched - 1.0
    expected = reference_supcon(torch.cat([deep, deep.roll(1, dims=0)]), [*range(6)] * 2, 0.07)
    assert float(mismatched) == pytest.approx(expected, rel=1e-4)


def test_zero_and_differentiable_without_any_positive():
    z = torch.randn(4, 3, requires_grad=True)
    loss = supervised_contrastive(z, torch.tensor([0, 1, 2, 3]))
    assert float(loss.detach()) == 0.0 and loss.requires_grad
    loss.backward()
    assert z.grad is not None and torch.equal(z.grad, torch.zeros_like(z))
    one = torch.randn(1, 3, requires_grad=True)  # a batch of one case
    bi_knowledge_contrastive(one, None, torch.tensor([1])).backward()
    assert one.grad is not None


def test_gradients_reach_both_views():
    deep = torch.randn(4, 5, requires_grad=True)
    radiomics = torch.randn(4, 5, requires_grad=True)
    bi_knowledge_contrastive(deep, radiomics, torch.tensor([0, 1, 0, 1])).backward()
    assert deep.grad.abs().sum() > 0 and radiomics.grad.abs().sum() > 0


def test_without_radiomics_it_is_supervised_contrast_of_the_deep_view():
    g = torch.Generator().manual_seed(6)
    deep, labels = torch.randn(6, 8, generator=g), torch.tensor([0, 1, 0, 1, 2, 2])
    for temperature in (0.07, 0.2):
        assert torch.equal(
            bi_knowledge_contrastive(deep, None, labels, temperature),
            supervised_contrastive(deep, labels, temperature),
        )


def test_low_precision_inputs_give_a_float32_loss():
    g = torch.Generator().manual_seed(7)
    z, labels = torch.randn(6, 8, generator=g), torch.tensor([0, 1, 0, 1, 2, 2])
    half = supervised_contrastive(z.bfloat16(), labels)
    assert half.dtype == torch.float32 and torch.isfinite(half)
    assert float(half) == pytest.approx(float(supervised_contrastive(z, labels)), rel=0.05)

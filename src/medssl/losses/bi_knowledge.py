"""BKC-Net's bi-knowledge contrastive loss: supervised contrast over two views of every case.

Each case is seen twice, by its deep features and by its radiomics features, each projected to
one embedding space. The loss is the supervised contrastive loss (Khosla et al., NeurIPS 2020)
over all ``2B`` embeddings: for an anchor, every other embedding of the same class is a positive
(inter-case: same-class cases cohere, different classes separate), and so is the other view of
the same case (intra-case: radiomics and deep embeddings of one lesion align). With one view it
is plain supervised contrast between cases.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def supervised_contrastive(
    embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07
) -> torch.Tensor:
    """``mean_i -1/|P(i)| sum_{p in P(i)} log(exp(z_i.z_p / T) / sum_{a != i} exp(z_i.z_a / T))``
    over anchors ``i`` that have a positive; ``embeddings`` ``(N, D)`` (normalised here),
    ``labels`` ``(N,)``. Zero (with a gradient path) when no anchor has a positive. Float32."""
    with torch.autocast(embeddings.device.type, enabled=False):
        z = F.normalize(embeddings.float(), dim=1)
        n = len(z)
        self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
        logits = (z @ z.t() / temperature).masked_fill(self_mask, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        positive = (labels.view(-1, 1) == labels.view(1, -1)) & ~self_mask
        counts = positive.sum(dim=1)
        anchors = counts > 0
        if not anchors.any():
            return z.sum() * 0.0
        summed = log_prob.masked_fill(~positive, 0.0).sum(dim=1)
        return -(summed[anchors] / counts[anchors]).mean()


def bi_knowledge_contrastive(
    deep: torch.Tensor,
    radiomics: torch.Tensor | None,
    labels: torch.Tensor,
    temperature: float = 0.07,
) -> torch.Tensor:
    """Supervised contrast over the deep (``(B, D)``) and radiomics (``(B, D)``) embeddings of
    ``B`` cases, the two views of one case each other's positive; ``radiomics=None``: the deep
    view alone."""
    if radiomics is None:
        return supervised_contrastive(deep, labels, temperature)
    return supervised_contrastive(
        torch.cat([deep, radiomics]), torch.cat([labels, labels]), temperature
    )

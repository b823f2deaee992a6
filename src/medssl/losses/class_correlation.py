"""CCL-Net's class-correlation terms (Wei et al., "Learning and exploiting interclass visual
correlations for medical image classification", MICCAI 2020; no official code).

One learnable embedding ``c_k`` per class lives in the same space as the samples' projected
features ``e``. Three pure functions build the method's loss from them:

- :func:`class_metric_loss`, the distance-metric-learning term: a softmax over the negative
  squared distances of a sample to every class embedding, ``p_k(e) = softmax_k(-|e - c_k|^2 / t)``,
  and its cross-entropy with the hard label (a proxy-based loss: the sample is pulled towards its
  class embedding and pushed from the others, the class embeddings are pulled by their samples);
- :func:`correlation_soft_labels`, the inter-class correlations as a row-stochastic ``(K, K)``
  matrix: row ``i`` is ``p(c_i)``, the same softmax evaluated at the class embedding itself
  (the distribution an ideal sample of class ``i`` would get). ``|c_i - c_i| = 0`` gives the true
  class the largest mass; classes whose embeddings lie close share more of it;
- :func:`soft_label_kl`, ``KL(q || softmax(logits))`` of the classifier against those rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``|a_i - b_j|^2``, ``(N, d)`` and ``(M, d)`` -> ``(N, M)``, never negative."""
    a, b = a.float(), b.float()
    # the expanded form |a|^2 - 2ab + |b|^2 can round below 0 for coincident points
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(dim=-1)


def class_metric_loss(
    embeddings: torch.Tensor,
    class_embeddings: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Cross-entropy of ``softmax_k(-|e - c_k|^2 / temperature)`` with the hard labels.

    ``embeddings`` ``(B, d)``, ``class_embeddings`` ``(K, d)``, ``labels`` ``(B,)`` class
    indices; the mean over the batch. Lowest when every sample sits on its own class embedding
    and far from the others.
    """
    logits = -squared_distances(embeddings, class_embeddings) / temperature
    return F.cross_entropy(logits, labels.long().view(-1))


def correlation_soft_labels(
    class_embeddings: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Row-stochastic ``(K, K)`` soft labels ``q_ij = softmax_j(-|c_i - c_j|^2 / temperature)``.

    Row ``i`` is the soft label of every sample of class ``i``; the diagonal is each row's
    largest entry (a tie only where two class embeddings coincide). Pass detached embeddings for
    a target.
    """
    return torch.softmax(-squared_distances(class_embeddings, class_embeddings) / temperature, 1)


def soft_label_kl(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``KL(targets || softmax(logits))`` averaged over the batch; ``(B, K)`` both.

    Zero when the prediction equals the soft label; its gradient is soft cross-entropy's.
    """
    log_probs = torch.log_softmax(logits.float(), dim=1)
    return F.kl_div(log_probs, targets.float(), reduction="batchmean")

"""CCL-Net: class-correlation learning (Wei, Cao, Ma and Zheng, "Learning and exploiting
interclass visual correlations for medical image classification", MICCAI 2020; ISIC 2018 skin
lesions; no official code).

Hard labels say a nevus is as unlike a melanoma as it is unlike a vascular lesion. CCL-Net learns
how alike the classes look from the training data and trains the classifier on soft labels that
say so. A plug-in head, the CCL block, sits on any backbone's pooled features ``f``:

- a Linear projects ``f`` to an embedding ``e`` (``embed_dim``); one learnable embedding ``c_k``
  per class lives in the same space; both are L2-normalised;
- distance-metric learning, ``L_metric = CE(softmax_k(-|e - c_k|^2 / t), y)``, pulls each sample
  to its class embedding and away from the others; classes whose images look alike end with
  embeddings closer together (:func:`~medssl.losses.class_correlation.class_metric_loss`);
- the inter-class correlations are the same softmax evaluated at the class embeddings,
  ``q_ij = softmax_j(-|c_i - c_j|^2 / t)``: a row-stochastic matrix whose diagonal is the largest
  entry of each row. It is rebuilt from the current (detached) embeddings at every step, so the
  soft labels follow the correlations as they are learnt;
- the backbone's own classifier is trained on both labels:
  ``loss = CE(logits, y) + soft_weight * KL(q_y || softmax(logits)) + metric_weight * L_metric``.

The block is used in training only: prediction is the backbone's classifier, as for
``supervised``. Binary and multi-class alike; every network the family builds (ResNet, DenseNet,
2D and 3D), whose pooled features come from the base's ``features_and_logits``.

Where the paper's text was not at hand, decisions made here: the embeddings are L2-normalised
(squared distances in [0, 4]; without it the metric loss falls by inflating the norms, which
drives the soft labels to one-hot); one temperature ``t`` for the metric loss and the soft labels,
so that row ``i`` is exactly the distribution a sample lying on ``c_i`` would get; ``t = 0.5``,
``embed_dim = 128``, both weights 1; the class embeddings start as random unit vectors; the KL
term is not class-weighted (``class_balanced`` weighs the hard cross-entropy only); the metric
loss trains the backbone too (end to end, as the paper trains the block with it); the paper's
further loss "based on a geometrical explanation of correlation" is not reproduced.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medssl.engine.module import register_method
from medssl.losses.class_correlation import (
    class_metric_loss,
    correlation_soft_labels,
    soft_label_kl,
)
from medssl.methods.classify.base import ClassificationConfig, ClassificationMethod


class CCLConfig(ClassificationConfig):
    #: width of the CCL block's embedding space (sample and class embeddings)
    embed_dim: int = Field(128, ge=2)
    #: ``t`` of ``softmax(-|.|^2 / t)``, in the metric loss and the soft labels alike
    temperature: float = Field(0.5, gt=0)
    #: weight of ``KL(soft label || prediction)`` beside the hard cross-entropy (weight 1)
    soft_weight: float = Field(1.0, ge=0)
    #: weight of the distance-metric-learning loss of the CCL block
    metric_weight: float = Field(1.0, ge=0)


class ClassCorrelationBlock(nn.Module):
    """CCL-Net's plug-in head: ``(B, in_dim)`` features -> ``(B, embed_dim)`` unit embeddings,
    and ``num_classes`` learnable class embeddings, unit vectors ``(K, embed_dim)`` as returned
    by ``class_embeddings()``."""

    def __init__(self, in_dim: int, num_classes: int, embed_dim: int = 128) -> None:
        super().__init__()
        self.project = nn.Linear(in_dim, embed_dim)
        self.classes = nn.Parameter(torch.randn(num_classes, embed_dim))

    def class_embeddings(self) -> torch.Tensor:
        return F.normalize(self.classes, dim=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.project(features), dim=1)


@register_method("ccl")
class CCLNet(ClassificationMethod):
    Config = CCLConfig

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        super().__init__(run_config, dataset_info)
        feature_dim = self.encoder.feature_dim
        self.ccl = ClassCorrelationBlock(feature_dim, self.num_classes, self.hp.embed_dim)

    def soft_labels(self) -> torch.Tensor:
        """The current inter-class correlations, ``(K, K)``, row ``i`` the soft label of class
        ``i``; detached: a target, not a path for gradients."""
        classes = self.ccl.class_embeddings().detach()
        return correlation_soft_labels(classes, self.hp.temperature)

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        labeled = batch["labeled"]
        label = labeled["label"].long().view(-1)
        features, logits = self.features_and_logits(labeled["image"])
        hard = self.supervised_loss(logits, label)
        soft = soft_label_kl(logits, self.soft_labels()[label])
        metric = class_metric_loss(
            self.ccl(features), self.ccl.class_embeddings(), label, self.hp.temperature
        )
        loss = hard + self.hp.soft_weight * soft + self.hp.metric_weight * metric
        return {"loss": loss, "hard": hard, "soft": soft, "metric": metric}

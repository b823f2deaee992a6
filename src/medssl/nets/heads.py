"""Heads that sit on an encoder's features: projection (contrastive SSL) and classification.

Both accept pooled features ``(B, D)`` or feature maps ``(B, D, *spatial)``, which they average
over the spatial axes first (:func:`medssl.nets.encoders.global_pool`). ``HEADS`` registers them
by name; ``create_head(name, in_dim, out_dim, **kw)`` builds one.
"""

from __future__ import annotations

import torch
from torch import nn

from medssl.nets.encoders import global_pool
from medssl.registry import Registry

HEADS: Registry = Registry("head")


@HEADS.register("projection")
class ProjectionHead(nn.Module):
    """The projection MLP of SimCLR / MoCo v2: ``(B, in_dim) -> (B, out_dim)``.

    ``num_layers`` Linear layers with, between two of them, BatchNorm1d (``batch_norm``) and
    ReLU: the default is SimCLR's Linear-BN-ReLU-Linear (``batch_norm=False`` gives MoCo v2's
    Linear-ReLU-Linear; ``num_layers=1`` MoCo v1's single Linear). Hidden layers are
    ``hidden_dim`` wide (default ``in_dim``, as both papers). The output is not normalised: the
    contrastive loss L2-normalises it along dim 1. Batch norm needs more than one sample per
    batch in training.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 128,
        hidden_dim: int | None = None,
        num_layers: int = 2,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"a projection head needs at least 1 layer, got {num_layers}")
        hidden = hidden_dim or in_dim
        widths = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
        layers: list[nn.Module] = []
        for i in range(num_layers):
            last = i == num_layers - 1
            layers.append(nn.Linear(widths[i], widths[i + 1], bias=last or not batch_norm))
            if not last:
                if batch_norm:
                    layers.append(nn.BatchNorm1d(widths[i + 1]))
                layers.append(nn.ReLU(inplace=True))
        self.mlp = nn.Sequential(*layers)
        self.in_dim = in_dim
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(global_pool(x))


@HEADS.register("classification")
class ClassificationHead(nn.Module):
    """Global average pooling, dropout and a Linear: ``(B, in_dim, *spatial) -> (B, classes)``."""

    def __init__(self, in_dim: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_dim, num_classes)
        self.in_dim = in_dim
        self.out_dim = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(global_pool(x)))


def create_head(name: str, in_dim: int, out_dim: int, **kw) -> nn.Module:
    """Head ``name`` (``projection``, ``classification``) from ``in_dim`` to ``out_dim``."""
    return HEADS.create(name, in_dim, out_dim, **kw)

"""Instance-discrimination pieces of MoCo-style methods: InfoNCE against a queue of keys."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def info_nce(
    query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """MoCo's InfoNCE: ``(loss, logits)``. ``query``, ``positive`` ``(B, D)`` and ``negatives``
    ``(K, D)`` L2-normalised; ``logits`` ``(B, 1 + K)`` = ``[q.k+, q.k-...] / T``, the positive
    at index 0; ``loss`` = cross-entropy with target 0. Computed in float32 (under bf16 autocast a
    logit of 1/0.07 would lose its third digit)."""
    with torch.autocast(query.device.type, enabled=False):
        q, k = query.float(), positive.float()
        l_pos = (q * k).sum(dim=1, keepdim=True)
        l_neg = q @ negatives.float().t()
        logits = torch.cat([l_pos, l_neg], dim=1) / temperature
        target = torch.zeros(len(q), dtype=torch.long, device=q.device)
        return F.cross_entropy(logits, target), logits


class KeyQueue(nn.Module):
    """A first-in first-out queue of ``size`` L2-normalised keys ``(size, dim)`` (MoCo's
    dictionary), started from random unit vectors; ``ptr`` is where the next key goes."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        """Overwrite the oldest entries with ``keys`` ``(N, dim)`` in order, wrapping around the
        end, as N pushes of one key would (of more than ``size`` only the newest ``size`` stay)."""
        start, n = int(self.ptr), len(keys)
        skip = max(0, n - self.size)  # overwritten within this push
        slots = (torch.arange(skip, n, device=self.keys.device) + start) % self.size
        self.keys[slots] = keys[skip:].detach().to(self.keys.dtype)
        self.ptr.fill_((start + n) % self.size)

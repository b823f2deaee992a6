"""URPC's uncertainty-rectified pyramid consistency (Luo et al., MICCAI 2021; SSL4MIS).

With ``p_s`` the softmax of scale ``s`` and ``p_mean`` their mean, the voxel uncertainty of a
scale is ``D_s = KL(p_mean || p_s)`` and its loss ``mean((p_mean - p_s)^2 * exp(-D_s)) /
(mean(exp(-D_s)) + 1e-8) + mean(D_s)``: where a scale disagrees with the pyramid its distance
counts less, and the second term keeps the disagreement itself small. Everything is computed
from log-probabilities, so a softmax that underflows to 0 cannot turn a step into NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def scale_uncertainty(log_p_s: torch.Tensor, log_p_mean: torch.Tensor) -> torch.Tensor:
    """Per-voxel ``KL(p_mean || p_s)``, (B, K, ...) -> (B, 1, ...), from log-probabilities.

    ``kl_div`` with a log target computes ``exp(l) * (l - log p_s)``, ``l = log p_mean``: finite
    with a finite gradient even where ``p_mean`` underflows to 0 (with a probability target it
    uses ``xlogy``, whose gradient there is ``-inf``, and ``0 * -inf`` turns the step into NaN).
    """
    kl = F.kl_div(log_p_s, log_p_mean, reduction="none", log_target=True)
    return kl.sum(dim=1, keepdim=True)


def rectified_consistency(log_p_s: torch.Tensor, log_p_mean: torch.Tensor) -> torch.Tensor:
    """One scale's uncertainty-rectified distance to the pyramid mean plus its mean uncertainty."""
    uncertainty = scale_uncertainty(log_p_s, log_p_mean)
    weight = torch.exp(-uncertainty)
    distance = (log_p_mean.exp() - log_p_s.exp()) ** 2
    rectified = torch.mean(distance * weight) / (torch.mean(weight) + 1e-8)
    return rectified + torch.mean(uncertainty)


def pyramid_consistency(logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """URPC's ``mean_s L_s`` over the scales' logits (each (B, K, *spatial), same size).

    Gradients flow through ``p_mean`` and the weights, as in SSL4MIS.
    """
    log_probs = torch.stack([torch.log_softmax(x.float(), dim=1) for x in logits])
    # log of the mean of the softmaxes, without leaving log space
    log_p_mean = torch.logsumexp(log_probs, dim=0) - math.log(len(logits))
    return torch.stack([rectified_consistency(lp, log_p_mean) for lp in log_probs]).mean()

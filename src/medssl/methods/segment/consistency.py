"""Pieces every semi-supervised segmentation method shares: ramp-ups and consistency losses.

Kept one layer below the methods so that mean teacher, UA-MT, MC-Net+, URPC and KP-Net compute
the same quantities the same way (SSL4MIS ``ramps.py`` / ``losses.py`` conventions).
"""

from __future__ import annotations

import math

import torch
from pydantic import Field

from medssl.engine.module import MethodConfig


def sigmoid_rampup(step: float, length: float) -> float:
    """Laine & Aila's ramp-up ``exp(-5 (1 - t)^2)``, t = step / length clipped to [0, 1]."""
    if length <= 0:
        return 1.0
    t = min(max(step / length, 0.0), 1.0)
    return float(math.exp(-5.0 * (1.0 - t) ** 2))


class ConsistencyConfig(MethodConfig):
    """Weight of an unsupervised term: ``consistency * sigmoid_rampup(step, rampup)``.

    The papers ramp over "epochs" of 150 iterations (UA-MT on LA: ``consistency_rampup=40``,
    ``iter // 150`` of 6000 iterations, i.e. the whole schedule; MC-Net+: 40 x 150 of 15000).
    medssl states the ramp as a share of the schedule, so shortened CPU schedules ramp
    proportionally: ``rampup_fraction * max_steps`` steps.
    """

    consistency: float = Field(0.1, ge=0)
    rampup_fraction: float = Field(1.0, ge=0, le=1)


def consistency_weight(hp: ConsistencyConfig, step: int, max_steps: int) -> float:
    return hp.consistency * sigmoid_rampup(step, hp.rampup_fraction * max_steps)


def softmax_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Per-voxel squared distance of the two softmax maps, (B, K, ...) -> (B, K, ...)."""
    return (torch.softmax(student_logits, 1) - torch.softmax(teacher_logits, 1)) ** 2


def sharpen(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """MC-Net+'s sharpening ``p^(1/T) / sum_k p_k^(1/T)`` over the class axis."""
    powered = probs.clamp_min(1e-12) ** (1.0 / temperature)
    return powered / powered.sum(dim=1, keepdim=True)

"""Exponential moving average of weights: the teacher of mean-teacher-style methods.

Methods *declare* their (student, teacher) pairs; the engine updates them after every optimiser
step (solo-learn's ``momentum_pairs``), so no method hand-writes the update.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def make_teacher(student: nn.Module) -> nn.Module:
    """A frozen copy of ``student`` that only EMA updates will move."""
    teacher = copy.deepcopy(student)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


@torch.no_grad()
def ema_update(student: nn.Module, teacher: nn.Module, decay: float) -> None:
    """``teacher = decay * teacher + (1 - decay) * student`` for parameters; buffers are copied.

    Shapes: any pair of modules with identical parameter lists.
    """
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.mul_(decay).add_(s.detach(), alpha=1.0 - decay)
    for t, s in zip(teacher.buffers(), student.buffers(), strict=True):
        t.copy_(s)


def ramped_decay(base: float, step: int) -> float:
    """Mean Teacher's warm-up: ``min(1 - 1/(step+1), base)`` so early teachers follow closely."""
    return min(1.0 - 1.0 / (step + 1), base)

"""Optimisers and learning-rate schedules: one per name a method declares.

A method trains with one optimiser (``optim`` of the run config) unless it declares several by
name (a GAN's generator and discriminator); ``optimizers.<name>`` in the config then overrides
``optim`` for that one (its learning rate, Adam betas ...). With several the engine switches to
Lightning's manual optimisation and the method steps each one itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from medssl.engine.config import OptimConfig, RunConfig, deep_update


def optimizer_config(run_config: RunConfig, name: str) -> OptimConfig:
    """``optim`` with ``optimizers.<name>`` merged over it."""
    own = run_config.optimizers.get(name)
    if own is None:
        return run_config.optim
    return OptimConfig.model_validate(deep_update(run_config.optim.model_dump(), own))


def build_optimizer(params: Iterable[nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    params = list(params)
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=False
        )
    if cfg.name == "adam":
        return torch.optim.Adam(
            params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
        )
    return torch.optim.AdamW(
        params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
    )


class _Schedule:
    """Learning-rate factor per step; a class (not a lambda) so LambdaLR saves plain state."""

    def __init__(self, kind: str, max_steps: int, warmup: int) -> None:
        self.kind, self.max_steps, self.warmup = kind, max(1, max_steps), warmup

    def __call__(self, step: int) -> float:
        if self.warmup and step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.max_steps - self.warmup))
        if self.kind == "poly":  # nnU-Net / UA-MT: (1 - t)^0.9
            return (1.0 - progress) ** 0.9
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0


def lr_lambda(cfg: OptimConfig, max_steps: int) -> _Schedule:
    return _Schedule(cfg.schedule, max_steps, cfg.warmup_steps)

"""The method base class every method builds on, and the method registry.

The engine owns the loop, devices, precision, logging and checkpoints (Lightning). A method only
says what differs: its networks, ``training_losses(batch)`` (a dict whose ``"loss"`` is
optimised), which (student, teacher) pairs the engine keeps as EMA copies, and its typed config
with the paper's defaults. The engine and the CLI look methods up here by name.
"""

from __future__ import annotations

import difflib
import importlib
import math
from collections.abc import Iterable
from typing import Any, ClassVar

import lightning as L
import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from medssl.engine.config import OptimConfig, RunConfig
from medssl.engine.ema import ema_update, ramped_decay
from medssl.engine.task import Monitor
from medssl.errors import ConfigError
from medssl.registry import Registry

METHODS: Registry = Registry("method")


class MethodConfig(BaseModel):
    """Base of every method's hyperparameters (extend with the paper's defaults)."""

    model_config = ConfigDict(extra="forbid")


def register_method(name: str):
    """Register a method class under ``name`` (sets ``cls.name``)."""

    def decorator(cls):
        cls.name = name
        return METHODS.register(f"{cls.task}/{name}")(cls)

    return decorator


def _discover() -> None:
    """Import the bundled methods so that they register (the engine never names one)."""
    importlib.import_module("medssl.methods")


def get_method(task: str, name: str) -> type[MethodModule]:
    _discover()
    key = f"{task}/{name}"
    if key in METHODS:
        return METHODS.get(key)
    known = method_names(task)
    close = difflib.get_close_matches(name, known, n=1)
    hint = (
        f"did you mean {close[0]!r}?" if close else f"available: {', '.join(known) or 'none yet'}"
    )
    raise ConfigError(f"unknown {task} method {name!r}; {hint} (medssl methods --task {task})")


def method_names(task: str) -> list[str]:
    _discover()
    return [n.split("/", 1)[1] for n in METHODS.names(f"{task}/*")]


class MethodModule(L.LightningModule):
    """Lightning module base of all methods.

    ``dataset_info`` holds what the networks need to know about the data (channels, classes,
    dimensions) so that a checkpoint rebuilds without the dataset.
    """

    name: ClassVar[str] = ""
    task: ClassVar[str] = ""
    #: the batch streams the method trains on: "labeled", "unlabeled", later "views"
    #: (several augmented views of one image) and "frames" (pairs of one sequence)
    streams: ClassVar[tuple[str, ...]] = ("labeled",)
    #: the value that picks best.ckpt, when it is not the task's
    monitor: ClassVar[Monitor | None] = None
    Config: ClassVar[type[MethodConfig]] = MethodConfig

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters({"run_config": run_config, "dataset_info": dataset_info})
        self.run_config = RunConfig.model_validate(run_config)
        self.dataset_info = dataset_info
        try:
            self.hp = self.Config.model_validate(self.run_config.method_config)
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"method {self.name!r}: invalid method_config.{loc}: {first['msg']}; "
                f"options: {sorted(self.Config.model_fields)}"
            ) from None

    # -- what a method declares ------------------------------------------------------------
    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Losses of one step; ``"loss"`` is optimised, the others are logged."""
        raise NotImplementedError

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(student, teacher) pairs the engine updates by EMA after each optimiser step."""
        return []

    def ema_decay(self) -> float:
        return float(getattr(self.hp, "ema_decay", 0.99))

    def ema_decay_at(self, step: int) -> float:
        """The EMA decay after optimiser step ``step``: mean teacher's warm-up
        ``min(1 - 1 / (step + 1), decay)`` by default; a method with a fixed momentum (MoCo's
        0.999) returns it here."""
        return ramped_decay(self.ema_decay(), step)

    @classmethod
    def finalize_config(cls, cfg: RunConfig) -> RunConfig:
        """Resolve what depends on this machine (e.g. an optional local text encoder) before the
        config is written, so that ``RUN/config.yaml`` says what was actually used."""
        return cfg

    def learnable_params(self) -> Iterable[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # -- what the engine does with it ------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        losses = self.training_losses(batch)
        size = _batch_size(batch)
        self.log_dict(
            {f"train/{k}": v.detach() for k, v in losses.items()},
            on_step=True,
            on_epoch=False,
            prog_bar=False,
            batch_size=size,
            sync_dist=False,
        )
        self.log("loss", losses["loss"].detach(), prog_bar=True, logger=False, batch_size=size)
        return losses["loss"]

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        decay = self.ema_decay_at(self.global_step)
        for student, teacher in self.momentum_pairs():
            ema_update(student, teacher, decay)

    def configure_optimizers(self):
        optimiser = build_optimizer(self.learnable_params(), self.run_config.optim)
        schedule = lr_lambda(self.run_config.optim, self.run_config.train.max_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, schedule)
        return {
            "optimizer": optimiser,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def _batch_size(batch: Any) -> int:
    part = batch.get("labeled", batch) if isinstance(batch, dict) else batch
    if isinstance(part, dict) and "image" in part:
        return int(part["image"].shape[0])
    return 1


def build_optimizer(params: Iterable[nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    params = list(params)
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=False
        )
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


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

"""The method base class every method builds on, and the method registry.

The engine owns the loop, devices, precision, logging and checkpoints (Lightning). A method only
says what differs: its networks, ``training_losses(batch)`` (a dict whose ``"loss"`` is
optimised), which (student, teacher) pairs the engine keeps as EMA copies, and its typed config
with the paper's defaults. The engine and the CLI look methods up here by name.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from typing import Any, ClassVar

import lightning as L
import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from medssl.engine.config import RunConfig
from medssl.engine.ema import ema_update, ramped_decay
from medssl.engine.optim import build_optimizer, lr_lambda, optimizer_config
from medssl.engine.task import Monitor
from medssl.errors import ConfigError
from medssl.nets.encoder_keys import encoders_in
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
        self.hp = self.parse_config(self.run_config.method_config)

    @classmethod
    def parse_config(cls, method_config: dict[str, Any]) -> MethodConfig:
        """``method_config`` validated into the method's :attr:`Config`, a one-line error."""
        try:
            return cls.Config.model_validate(method_config)
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"method {cls.name!r}: invalid method_config.{loc}: {first['msg']}; "
                f"options: {sorted(cls.Config.model_fields)}"
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

    def encoder_network(self) -> nn.Module:
        """The backbone a pretraining run exports (its first one, outermost first)."""
        found = encoders_in(self)
        if not found:
            raise ConfigError(f"method {self.name!r} has no backbone medssl can export")
        return found[0][1]

    def learnable_params(self) -> Iterable[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # -- several optimisers (a GAN's generator and discriminator) ------------------------------
    #: one name per optimiser; ``optimizers.<name>`` in the config overrides ``optim`` for it
    optimizer_names: ClassVar[tuple[str, ...]] = ("main",)

    def optimizer_params(self, name: str) -> Iterable[nn.Parameter]:
        """The parameters the optimiser ``name`` updates (methods with several declare them)."""
        raise NotImplementedError(f"{type(self).__name__} declares optimiser {name!r}")

    def manual_step(self, batch: dict[str, Any], step: ManualStep) -> dict[str, torch.Tensor]:
        """One training step of a method with several optimisers: compute each loss and call
        ``step(name, loss)`` for it (zero_grad, backward with the run's precision, step); return
        the losses to log (``"loss"`` is what the progress line and the divergence guard show)."""
        raise NotImplementedError

    @property
    def automatic_optimization(self) -> bool:  # Lightning's switch to manual optimisation
        return len(self.optimizer_names) == 1

    @automatic_optimization.setter
    def automatic_optimization(self, value: bool) -> None:  # Lightning's base class sets it
        pass

    # -- what the engine does with it ------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        if self.automatic_optimization:
            losses = self.training_losses(batch)
        else:
            losses = self.manual_step(batch, ManualStep(self))
            for scheduler in _as_list(self.lr_schedulers()):
                scheduler.step()
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
        max_steps = self.run_config.train.max_steps
        configured = []
        for name in self.optimizer_names:
            cfg = optimizer_config(self.run_config, name)
            params = self.learnable_params() if name == "main" else self.optimizer_params(name)
            optimiser = build_optimizer(params, cfg)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_lambda(cfg, max_steps))
            schedule = {"scheduler": scheduler, "interval": "step"}
            if len(self.optimizer_names) > 1:  # one learning-rate column per optimiser
                schedule["name"] = f"lr-{name}"
            configured.append({"optimizer": optimiser, "lr_scheduler": schedule})
        return configured[0] if len(configured) == 1 else configured


class ManualStep:
    """``step(name, loss)``: what automatic optimisation does for one optimiser, by name.

    Lightning counts every optimiser's step in ``global_step`` (Lightning-AI/pytorch-lightning
    #17958), so with a generator and a discriminator ``max_steps`` would end at half the
    iterations and every step-based schedule would run twice as fast. Only the first declared
    optimiser's steps are counted here: one training step is one ``global_step``, as with one.
    """

    def __init__(self, module: MethodModule) -> None:
        self.module = module
        optimisers = _as_list(module.optimizers())
        self.by_name = dict(zip(module.optimizer_names, optimisers, strict=True))
        for optimiser in optimisers[1:]:
            optimiser._on_before_step = _nothing
            optimiser._on_after_step = _nothing

    def __call__(self, name: str, loss: torch.Tensor) -> None:
        optimiser = self.by_name[name]
        self.module.toggle_optimizer(optimiser)  # gradients only for what this one updates
        optimiser.zero_grad(set_to_none=True)
        self.module.manual_backward(loss)
        optimiser.step()
        self.module.untoggle_optimizer(optimiser)


def _nothing() -> None:
    return None


def _as_list(items: Any) -> list:
    return list(items) if isinstance(items, list | tuple) else [items]


def _batch_size(batch: Any) -> int:
    part = batch.get("labeled", batch) if isinstance(batch, dict) else batch
    if isinstance(part, dict) and "image" in part:
        return int(part["image"].shape[0])
    return 1

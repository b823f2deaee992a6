"""C2L, Comparing to Learn (Zhou et al., MICCAI 2020, arXiv:2007.07423; funnyzhou/C2L_MICCAI2020).

MoCo-style instance discrimination on 2D radiographs, with mixup of images and of key features.
Per step, on a batch ``x`` of unlabelled images:

* Two views ``x1`` (query) and ``x2`` (key) of every image, drawn independently on the batch
  tensor (:func:`random_views`): a random resized crop (area 0.2-1 of the image, aspect 3/4-4/3,
  resized back to the input size), a rotation of up to 10 degrees, a horizontal flip, brightness
  and contrast jitter of 0.4, and Cutout (3 holes of 1/7 of the side), the official code's
  augmentation. Its grayscale, saturation and hue jitter do nothing to one grey channel.
* Query network = the run's backbone encoder + projection head (the code's single Linear to 128
  dimensions); key network = its momentum copy, ``k <- 0.999 k + 0.001 q`` after every step
  (engine-updated, :meth:`momentum_pairs`), without gradients.
* Mixup: ``lam ~ Beta(1, 1)`` raised to ``max(lam, 1 - lam)`` and one permutation per batch
  (the code's ``mixup_data``); ``x1_mix = lam x1 + (1 - lam) x1[perm]``, ``x2_mix`` alike.
* Three InfoNCE terms (temperature 0.07, the queue of the previous steps' keys as negatives,
  the positive at logit index 0), averaged as in the code ``(L_1 + L_2 + L_3) / 3``:
  ``L_1`` query of ``x1`` vs key of ``x2`` (plain MoCo); ``L_2`` query of ``x1_mix`` vs key of
  ``x2_mix`` (image mixup); ``L_3`` query of ``x1_mix`` vs ``normalize(lam k + (1 - lam) k[perm])``
  with ``k`` the key network's output of ``x2`` before normalisation (feature mixup).
* The queue (16384 keys, L2-normalised) then takes this step's plain keys, first in first out;
  under DDP the keys of every process, gathered.

Deliberate deviations from the code: every term is scored against the queue as it stood at the
start of the step and only the plain keys are enqueued (the code's three calls of its memory
each enqueue their keys before the next term is scored, so ``L_2`` and ``L_3`` count this
step's keys of the same images among their negatives); softmax InfoNCE (the paper's MoCo loss;
the script defaults to the NCE criterion); no shuffle-BN (on one device it changes nothing, and
DDP shuffling across processes is left out). Intensities are not clamped after the jitter
(files may be z-scored). Validation draws the same views from a seeded generator and does not
enqueue. Logged: the three terms and ``instance_acc``, how often the positive outscores every
queued key in ``L_1``. The cpu profile's queue holds 1024 keys (:data:`CPU_QUEUE_SIZE`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medssl.engine.config import RunConfig
from medssl.engine.ema import make_teacher
from medssl.engine.module import MethodConfig, register_method
from medssl.errors import ConfigError
from medssl.losses.contrastive import KeyQueue, info_nce
from medssl.methods.pretrain.base import PretrainMethod, draw, draw_int
from medssl.nets.factory import CLASSIFIERS, create_net
from medssl.nets.heads import ProjectionHead

#: the cpu profile's queue: it fills within the first 64 of the profile's 1000 steps of 16, and
#: stays well below a few thousand images (MedMNIST), so it seldom holds an older key of the
#: query's own image (the paper's 16384 is 2% of its 700k radiographs)
CPU_QUEUE_SIZE = 1024
#: 2D inputs of at most this many pixels a side get the small ResNet stem, as classification
SMALL_INPUT_SIDE = 64


class C2LConfig(MethodConfig):
    queue_size: int = Field(16384, ge=1)  # K negatives (paper); cpu profile: CPU_QUEUE_SIZE
    temperature: float = Field(0.07, gt=0)
    momentum: float = Field(0.999, ge=0, lt=1)  # key network EMA, fixed (not ramped)
    projection_dim: int = Field(128, ge=1)
    head_layers: int = Field(1, ge=1)  # code: one Linear (MoCo v1); 2: MoCo v2's MLP
    mixup_alpha: float = Field(1.0, gt=0)  # lam ~ Beta(alpha, alpha) (code's mixup_data)
    plain_weight: float = Field(1 / 3, ge=0)  # the code averages its three terms
    image_mixup_weight: float = Field(1 / 3, ge=0)
    feature_mixup_weight: float = Field(1 / 3, ge=0)
    crop_scale: tuple[float, float] = (0.2, 1.0)  # area share of the random resized crop
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # its aspect ratio (torchvision)
    rotation_degrees: float = Field(10.0, ge=0)
    flip_prob: float = Field(0.5, ge=0, le=1)
    brightness: float = Field(0.4, ge=0, lt=1)  # factor drawn from 1 +- brightness
    contrast: float = Field(0.4, ge=0, lt=1)
    cutout_holes: int = Field(3, ge=0)
    cutout_size: float = Field(32 / 224, ge=0, le=1)  # hole side / image side (32 px of 224)
    #: the small ResNet / DenseNet stem; None: on for 2D patches of at most 64 px a side
    small_input: bool | None = None


# -- pretext targets and loss: pure functions -------------------------------------------------
def mixup(x: torch.Tensor, lam: float, perm: torch.Tensor) -> torch.Tensor:
    """``lam * x + (1 - lam) * x[perm]`` along the batch axis (images or features)."""
    return lam * x + (1.0 - lam) * x[perm]


def draw_mixup(
    batch: int, alpha: float, generator: torch.Generator | None
) -> tuple[float, torch.Tensor]:
    """``(lam, perm)``: ``lam ~ Beta(alpha, alpha)`` folded to ``max(lam, 1 - lam)`` (the code
    keeps each image the larger part of its mix) and a permutation of ``batch``."""
    seed = int(draw_int(generator, 2**31 - 1, 1))  # numpy draws Beta; torch's Beta has no generator
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = (
        torch.randperm(batch, generator=generator)
        if generator is not None
        else torch.randperm(batch)
    )
    return max(lam, 1.0 - lam), perm


def random_views(x: torch.Tensor, hp: C2LConfig, generator: torch.Generator | None = None):
    """One random view of every image of ``x`` ``(B, C, H, W)``, same shape (module docstring).

    Crop, rotation and flip are one affine resampling (bilinear, zeros outside the image); a
    crop that would not fit (area and aspect both large) is clipped to the image."""
    b, _, h, w = x.shape

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return (lo + (hi - lo) * draw(generator, b)).to(x.device, torch.float32)

    area = uniform(*hp.crop_scale)
    ratio = torch.exp(uniform(math.log(hp.crop_ratio[0]), math.log(hp.crop_ratio[1])))
    cw, ch = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
    cx, cy = (1 - cw) * uniform(-1.0, 1.0), (1 - ch) * uniform(-1.0, 1.0)  # crop centres
    angle = uniform(-1.0, 1.0) * math.radians(hp.rotation_degrees)
    flip = torch.where(uniform(0.0, 1.0) < hp.flip_prob, -1.0, 1.0)
    cos, sin = angle.cos(), angle.sin()
    # output (u, v) in [-1, 1]^2 -> input: centre + rotation (in pixels) of the scaled crop
    theta = torch.stack(
        [
            torch.stack([cos * cw * flip, -sin * ch * h / w, cx], dim=1),
            torch.stack([sin * cw * flip * w / h, cos * ch, cy], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    shape = (b, 1, 1, 1)
    out = out * uniform(1 - hp.brightness, 1 + hp.brightness).view(shape).to(x.dtype)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = mean + (out - mean) * uniform(1 - hp.contrast, 1 + hp.contrast).view(shape).to(x.dtype)
    return cutout(out, hp.cutout_holes, hp.cutout_size, generator)


def cutout(
    x: torch.Tensor, holes: int, size: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017), as the code applies it: ``holes`` squares of ``size``
    times the image side, centred anywhere (clipped at the border), set to 0."""
    b, _, h, w = x.shape
    lh, lw = round(size * h), round(size * w)
    if holes == 0 or lh == 0 or lw == 0:
        return x
    cy = draw_int(generator, h, b, holes, 1, 1).to(x.device)
    cx = draw_int(generator, w, b, holes, 1, 1).to(x.device)
    ys = torch.arange(h, device=x.device).view(1, 1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, 1, w)
    inside = (ys >= cy - lh // 2) & (ys < cy + lh // 2) & (xs >= cx - lw // 2) & (xs < cx + lw // 2)
    return x * (~inside.any(dim=1, keepdim=True)).to(x.dtype)


# -- the method -------------------------------------------------------------------------------
@register_method("c2l")
class C2L(PretrainMethod):
    Config = C2LConfig
    #: the paper's backbones are ResNet-18/50 and DenseNet-121; SGD 0.03, momentum 0.9, weight
    #: decay 1e-4 (code; its step decay at 60/80/100 of 120 epochs is closest to cosine here)
    default_overrides: ClassVar[dict[str, Any]] = {
        "net": {"name": "resnet18"},
        "optim": {
            "name": "sgd",
            "lr": 0.03,
            "momentum": 0.9,
            "weight_decay": 1e-4,
            "schedule": "cosine",
        },
    }

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        if int(dataset_info["spatial_dims"]) != 2:
            raise ConfigError(_NOT_2D)
        super().__init__(run_config, dataset_info)
        hp = self.hp
        self.head = ProjectionHead(
            self.encoder.feature_dim,
            hp.projection_dim,
            num_layers=hp.head_layers,
            batch_norm=False,
        )
        self.key_encoder = make_teacher(self.encoder)
        self.key_head = make_teacher(self.head)
        self.queue = KeyQueue(hp.queue_size, hp.projection_dim)

    @classmethod
    def finalize_config(cls, cfg: RunConfig) -> RunConfig:
        """2D only; the cpu profile's smaller queue unless ``queue_size`` is set."""
        if cfg.data.spatial_dims != 2:
            raise ConfigError(_NOT_2D)
        if cfg.profile == "cpu" and "queue_size" not in cfg.method_config:
            cfg.method_config = {**cfg.method_config, "queue_size": CPU_QUEUE_SIZE}
        return cfg

    def build_backbone(self) -> nn.Module:
        net, patch = self.run_config.net, self.run_config.data.patch_size or []
        small = self.hp.small_input
        if small is None:
            small = bool(patch) and max(patch) <= SMALL_INPUT_SIDE
        options = dict(net.options)
        if net.name in CLASSIFIERS:  # the stem a classification run of this size builds
            options.setdefault("small_input", small)
        return create_net(
            net.name,
            2,
            self.in_channels,
            2,
            options=options,
            channels=net.channels,
            strides=net.strides,
            num_res_units=net.num_res_units,
            norm=net.norm,
            dropout=net.dropout,
        )

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.encoder, self.key_encoder), (self.head, self.key_head)]

    def ema_decay_at(self, step: int) -> float:
        return self.hp.momentum  # MoCo's fixed momentum, from the first step

    def query(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.encoder(x)), dim=1)

    @torch.no_grad()
    def key_features(self, x: torch.Tensor) -> torch.Tensor:
        """The key network's output, not yet normalised (feature mixup mixes these)."""
        return self.key_head(self.key_encoder(x))

    def pretext_losses(
        self, image: torch.Tensor, generator: torch.Generator | None
    ) -> dict[str, torch.Tensor]:
        hp = self.hp
        x1, x2 = random_views(image, hp, generator), random_views(image, hp, generator)
        lam, perm = draw_mixup(len(image), hp.mixup_alpha, generator)
        perm = perm.to(image.device)
        x1_mix = mixup(x1, lam, perm)
        k_raw = self.key_features(x2)
        k = F.normalize(k_raw, dim=1)
        negatives = self.queue.keys.clone()
        plain, logits = info_nce(self.query(x1), k, negatives, hp.temperature)
        q_mix = self.query(x1_mix)
        losses = {"contrastive_loss": plain}
        if hp.image_mixup_weight:
            k_image = F.normalize(self.key_features(mixup(x2, lam, perm)), dim=1)
            losses["image_mixup_loss"] = info_nce(q_mix, k_image, negatives, hp.temperature)[0]
        if hp.feature_mixup_weight:
            k_feature = F.normalize(mixup(k_raw, lam, perm), dim=1)
            losses["feature_mixup_loss"] = info_nce(q_mix, k_feature, negatives, hp.temperature)[0]
        loss = hp.plain_weight * plain
        loss = loss + hp.image_mixup_weight * losses.get("image_mixup_loss", 0.0)
        loss = loss + hp.feature_mixup_weight * losses.get("feature_mixup_loss", 0.0)
        if generator is None:  # training: this step's keys become negatives of the next
            self.queue.push(self.gathered(k))
        acc = (logits.argmax(dim=1) == 0).float().mean()
        return {"loss": loss, **{n: v.detach() for n, v in losses.items()}, "instance_acc": acc}

    def gathered(self, keys: torch.Tensor) -> torch.Tensor:
        """``keys`` of every process, in rank order (the same queue everywhere under DDP)."""
        trainer = self._trainer
        if trainer is None or trainer.world_size == 1:
            return keys
        return self.all_gather(keys).flatten(0, 1)


_NOT_2D = (
    "c2l pretrains 2D networks (radiographs), not 3D ones; to pretrain on slices of 3D volumes "
    "set data.spatial_dims: 2 in the --config YAML"
)

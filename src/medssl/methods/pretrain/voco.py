"""VoCo: volume contrast (Wu, Zhang & Chen, CVPR 2024), with the EMA teacher of its TPAMI
extension and released code (Luffy03/VoCo).

Large volumes share a layout: organs sit in the same place relative to one another. VoCo turns
that into a pretext task with no labels and no augmentation pairs: *where is this crop?*

* **Base crops.** A patch ``(C, X, Y[, Z])`` is cut into a ``grid x grid`` grid over its first
  two axes (paper: 4 x 4 over x-y of a 384 x 384 x 96 volume, the full depth in z), giving
  ``grid^2`` base crops; base crop ``k = i * grid + j`` is column ``i`` along x, row ``j`` along y.
* **Random crops.** ``num_crops`` crops per volume, each the size of one base crop, at a uniform
  random x-y position inside the grid (full z). The target of a crop is its overlap with each
  base crop: ``y_k = |crop & base_k| / |crop|``, computed exactly from the integer boxes
  (:func:`overlap_targets`), so a crop's targets sum to 1.
* **Prediction.** Every crop is resized to ``crop_size`` (paper: 96^3 -> 64^3), encoded by the
  backbone's encoder (pooled features) and projected by an MLP head; the predicted overlap is
  ``p_k = ReLU(cos(f_crop, f_base_k))`` (:func:`predict_overlaps`). As in the released code the
  base features are a stop-gradient target here: only the random crop's path learns from it.
* **Losses** (:func:`prediction_loss`, :func:`base_regularizer`). Position loss
  ``-y_k log(1 - |y_k - p_k|)`` summed over base crops and averaged over crops, plus the negative
  term ``p_k^2`` averaged over the base crops a crop does not touch (``y_k = 0``); regulariser
  ``mean_{k < l} ReLU(cos(f_base_k, f_base_l))^2`` over the base crops of one volume, pushing them
  apart so that ``p`` can tell them apart. ``loss = pred + reg_weight * reg`` (paper: 1).
* **Teacher** (``teacher: true``; TPAMI and the released code, not the CVPR paper). An EMA copy of
  backbone and head (fixed momentum 0.9, no schedule, as released) embeds the base crops that
  the prediction compares against; the student embeds the random crops, and its own base crops
  for the regulariser. The run exports the student's backbone.

Backbones: the run's ``net``, any network whose encoder medssl knows (``unet``, the paper's
``swin_unetr``, ``ssl4mis_unet`` / ``ssl4mis_vnet``, ``vnet``, the classifiers); 2D patches are
cut the same way. The crops must suit it (swin_unetr: multiples of 32, vnet: of 16, a UNet: at
least its downsampling), else a one-line ConfigError names ``crop_size``.

:func:`overlap_matrix` shows what a trained model has learnt: predicted against true overlaps of
a few fixed crops of one volume.

Decisions where paper and code are silent or disagree with medssl's setting: the patch is the
"volume" (medssl's pretrain task draws patches; the paper resizes a whole foreground-cropped scan
to 384 x 384 x 96), so a side not divisible by ``grid`` loses its last ``side % grid`` voxels to
the grid; features are the encoder's pooled last stage for every backbone (the released code
concatenates five pooled SwinUNETR stages, 1152-d, or ReLU-pools the last stage); the projection
head is medssl's :class:`~medssl.nets.heads.ProjectionHead` with the released code's three layers
and batch norm on batch statistics only (``track_running_stats=False``), 256 wide by default
(paper 2048) to keep CPU runs light; the regulariser is the symmetric form (the released code
stops the gradient of the second crop of every pair).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from medssl.engine.ema import make_teacher
from medssl.engine.module import MethodConfig, register_method
from medssl.errors import ConfigError
from medssl.losses.voco import base_regularizer, predict_overlaps, prediction_loss
from medssl.methods.pretrain.base import PretrainMethod, draw_int
from medssl.nets.encoders import encoder_of
from medssl.nets.factory import downsample_factor
from medssl.nets.heads import ProjectionHead


class VoCoConfig(MethodConfig):
    grid: int = Field(4, ge=2)  # base crops per side over the first two axes (paper: 4 x 4)
    num_crops: int = Field(2, ge=1)  # random crops per volume (released code: sw_batch_size 2)
    # side(s) every crop is resized to before encoding (paper: 64); None keeps the base crop's
    # own size. swin_unetr needs multiples of 32, vnet of 16; UNets at least their downsampling.
    crop_size: PositiveInt | list[PositiveInt] | None = None
    proj_dim: int = Field(256, ge=1)  # projection width and hidden width (paper: 2048)
    proj_layers: int = Field(3, ge=1)  # released head: (Linear-BN-ReLU) x 2, Linear
    reg_weight: float = Field(1.0, ge=0)  # weight of the base-crop regulariser (paper: 1)
    teacher: bool = False  # EMA teacher embeds the base crops (TPAMI / released code)
    teacher_momentum: float = Field(0.9, gt=0, lt=1)  # released code: fixed 0.9, no schedule


# -- pretext targets: pure functions of integer boxes ----------------------------------------------
def base_crop_size(patch: Sequence[int], grid: int) -> tuple[int, int]:
    """The x-y side of one base crop of a ``patch`` (spatial sides) cut ``grid x grid``."""
    return int(patch[0]) // grid, int(patch[1]) // grid


def overlap_targets(positions: torch.Tensor, size: Sequence[int], grid: int) -> torch.Tensor:
    """VoCo's targets: the share of each random crop that lies in each base crop.

    ``positions`` ``(..., 2)`` integer x-y corners of random crops of ``size = (s, t)`` voxels;
    base crop ``k = i * grid + j`` covers ``[i s, (i + 1) s) x [j t, (j + 1) t)``. Returns
    ``(..., grid^2)`` float fractions ``|crop & base_k| / (s t)``: exact (integer intersections),
    summing to 1 for a crop inside the grid.
    """
    s, t = int(size[0]), int(size[1])
    corners = torch.arange(grid, device=positions.device)
    x, y = positions[..., 0:1].long(), positions[..., 1:2].long()
    dx = (torch.minimum(x + s, (corners + 1) * s) - torch.maximum(x, corners * s)).clamp(min=0)
    dy = (torch.minimum(y + t, (corners + 1) * t) - torch.maximum(y, corners * t)).clamp(min=0)
    area = dx[..., :, None] * dy[..., None, :]  # (..., grid_x, grid_y) voxel counts
    return area.flatten(-2).float() / (s * t)


def draw_positions(
    generator: torch.Generator | None, batch: int, num: int, size: Sequence[int], grid: int
) -> torch.Tensor:
    """``(batch, num, 2)`` uniform x-y corners of random crops of ``size`` inside the grid."""
    x = draw_int(generator, (grid - 1) * int(size[0]) + 1, batch, num)
    y = draw_int(generator, (grid - 1) * int(size[1]) + 1, batch, num)
    return torch.stack([x, y], dim=-1)


def base_crops(image: torch.Tensor, grid: int) -> torch.Tensor:
    """``(B, C, X, Y, *rest)`` -> ``(B * grid^2, C, s, t, *rest)``: volume-major, then base crop
    ``k = i * grid + j`` (``i`` along x, ``j`` along y)."""
    b, c = image.shape[:2]
    s, t = base_crop_size(image.shape[2:], grid)
    rest = tuple(image.shape[4:])
    x = image[:, :, : grid * s, : grid * t].reshape(b, c, grid, s, grid, t, *rest)
    x = x.permute(0, 2, 4, 1, 3, 5, *range(6, 6 + len(rest)))
    return x.reshape(b * grid * grid, c, s, t, *rest)


def random_crops(image: torch.Tensor, positions: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Crops of ``size = (s, t)`` at ``positions`` ``(B, N, 2)``: ``(B * N, C, s, t, *rest)``."""
    b = image.shape[0]
    positions = positions.to(image.device)
    ix = positions[..., 0, None] + torch.arange(int(size[0]), device=image.device)  # (B, N, s)
    iy = positions[..., 1, None] + torch.arange(int(size[1]), device=image.device)  # (B, N, t)
    batch = torch.arange(b, device=image.device)[:, None, None, None]
    voxels = image.movedim(1, -1)[batch, ix[..., :, None], iy[..., None, :]]  # (B,N,s,t,*rest,C)
    return voxels.movedim(-1, 2).flatten(0, 1)


# -- prediction and losses: pure functions of features ---------------------------------------------
def _batch_statistics(head: nn.Module) -> nn.Module:
    """Batch norm on the batch's own statistics in training and evaluation alike (the released
    head's ``track_running_stats=False``): validation then measures what training optimises."""
    for module in head.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.track_running_stats = False
            module.running_mean = module.running_var = module.num_batches_tracked = None
    return head


@register_method("voco")
class VoCo(PretrainMethod):
    Config = VoCoConfig

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        super().__init__(run_config, dataset_info)
        hp = self.hp
        if self.run_config.data.patch_size:
            self.crop_geometry(self.run_config.data.patch_size)  # a bad setting fails now
        self.head = _batch_statistics(
            ProjectionHead(
                self.encoder.feature_dim, hp.proj_dim, hp.proj_dim, hp.proj_layers, batch_norm=True
            )
        )
        if hp.teacher:  # registered after the student: the student's backbone comes first
            self.teacher_backbone = make_teacher(self.backbone)
            self.teacher_encoder = encoder_of(self.teacher_backbone)
            self.teacher_head = make_teacher(self.head)

    # -- what the engine needs -----------------------------------------------------------------
    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        if not self.hp.teacher:
            return []
        return [(self.backbone, self.teacher_backbone), (self.head, self.teacher_head)]

    def ema_decay_at(self, step: int) -> float:
        return self.hp.teacher_momentum  # fixed, as released (no warm-up)

    def encoder_network(self) -> nn.Module:
        return self.backbone  # the student's, never the teacher's

    # -- geometry --------------------------------------------------------------------------------
    def crop_geometry(self, patch: Sequence[int]) -> tuple[tuple[int, int], tuple[int, ...]]:
        """``((s, t), shape)``: a base crop's x-y side in ``patch`` and the shape every crop is
        encoded at; ConfigError if the network cannot take it."""
        patch = [int(p) for p in patch]
        grid, dims = self.hp.grid, self.spatial_dims
        size = base_crop_size(patch, grid)
        if min(size) < 1:
            raise ConfigError(
                f"voco: patch {patch} is too small for a {grid}x{grid} grid; "
                "lower method_config.grid or raise data.patch_size"
            )
        shape = (*size, *patch[2:])
        wanted = self.hp.crop_size
        if wanted is not None:
            shape = tuple([wanted] * dims if isinstance(wanted, int) else wanted)
            if len(shape) != dims:
                raise ConfigError(
                    f"voco: method_config.crop_size {list(shape)} needs {dims} sides (or one)"
                )
        net = self.run_config.net
        multiple = downsample_factor(net.name, [1])  # a fixed factor: swin_unetr 32, vnet 16
        reach = downsample_factor(net.name, net.strides, len(net.channels or [0] * 5))
        if any(side % multiple for side in shape) or min(shape) < reach:
            need = f"multiples of {multiple}" if multiple > 1 else f"at least {reach} voxels"
            fit = multiple * -(-max(shape) // multiple) if multiple > 1 else 2 * reach
            raise ConfigError(
                f"voco: crops of {list(shape)} voxels (patch {patch} cut {grid}x{grid}) must be "
                f"{need} for {net.name}; set method_config.crop_size (e.g. {fit}) or change "
                "data.patch_size or method_config.grid"
            )
        return size, shape

    # -- the method --------------------------------------------------------------------------------
    def embed(self, crops: torch.Tensor, shape: Sequence[int], teacher: bool = False):
        """Projected features ``(n, proj_dim)`` of crops resized to ``shape``."""
        if tuple(crops.shape[2:]) != tuple(shape):
            mode = "trilinear" if crops.ndim == 5 else "bilinear"
            crops = F.interpolate(crops, size=tuple(shape), mode=mode, align_corners=True)
        if teacher:
            return self.teacher_head(self.teacher_encoder(crops))
        return self.head(self.encoder(crops))

    def overlaps(
        self, image: torch.Tensor, generator: torch.Generator | None, num_crops: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Predicted and true overlaps ``(B, N, grid^2)`` of ``num_crops`` random crops per
        volume, and the student's base-crop features ``(B, grid^2, proj_dim)``."""
        b, grid = image.shape[0], self.hp.grid
        n, k = num_crops or self.hp.num_crops, grid * grid
        size, shape = self.crop_geometry(image.shape[2:])
        positions = draw_positions(generator, b, n, size, grid).to(image.device)
        bases = base_crops(image, grid)
        features = self.embed(torch.cat([random_crops(image, positions, size), bases]), shape)
        crop_f, base_f = features[: b * n].view(b, n, -1), features[b * n :].view(b, k, -1)
        if self.hp.teacher:
            with torch.no_grad():
                reference = self.embed(bases, shape, teacher=True).view(b, k, -1)
        else:
            reference = base_f.detach()  # the released code's stop-gradient on the bases
        return {
            "predicted": predict_overlaps(crop_f, reference),
            "target": overlap_targets(positions, size, grid),
            "bases": base_f,
        }

    def pretext_summary(self) -> dict[str, np.ndarray] | None:
        """Predicted and true overlap matrices of a few validation volumes (the report's plot)."""
        images = getattr(self, "summary_images", None)
        if images is None:
            return None
        summary: dict[str, np.ndarray] = {}
        for i, volume in enumerate(images):
            predicted, true = overlap_matrix(self, volume, seed=i, num_crops=8)
            summary[f"overlap_predicted_{i}"], summary[f"overlap_true_{i}"] = predicted, true
        return summary

    def pretext_losses(
        self, image: torch.Tensor, generator: torch.Generator | None
    ) -> dict[str, torch.Tensor]:
        out = self.overlaps(image, generator)
        pos, neg = prediction_loss(out["predicted"], out["target"])
        reg = base_regularizer(out["bases"])
        pred = pos + neg
        return {
            "loss": pred + self.hp.reg_weight * reg,
            "pred_loss": pred,
            "reg_loss": reg,
            "pos_loss": pos,
            "neg_loss": neg,
        }


@torch.no_grad()
def overlap_matrix(
    module: VoCo, image: torch.Tensor, seed: int = 0, num_crops: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and true overlaps of random crops of one volume, for a report's matrix plot.

    ``image`` is one volume ``(C, *patch)`` (or ``(1, C, *patch)``); ``num_crops`` (default the
    module's) crops are drawn from a generator seeded with ``seed``, so the same call shows the
    same crops at every checkpoint. Evaluated without gradients in eval mode (the module's mode
    is restored). Returns two ``(num_crops, grid^2)`` float arrays: ``predicted[n, k] =
    ReLU(cos)`` of crop ``n`` and base crop ``k = i * grid + j`` (the teacher's, if any), and
    the exact ``true`` overlap fractions (rows sum to 1).
    """
    volume = image if image.ndim == module.spatial_dims + 2 else image[None]
    if volume.shape[0] != 1:
        raise ValueError(f"overlap_matrix takes one volume, got a batch of {volume.shape[0]}")
    was_training = module.training
    module.eval()
    try:
        generator = torch.Generator().manual_seed(seed)
        out = module.overlaps(volume.to(module.device), generator, num_crops)
    finally:
        module.train(was_training)
    return out["predicted"][0].float().cpu().numpy(), out["target"][0].cpu().numpy()

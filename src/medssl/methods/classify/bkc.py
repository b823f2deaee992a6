"""BKC-Net: bi-knowledge contrastive learning (renal tumour subtype and grade on CT; METHODS.md 3;
the official code does not run).

A tumour is diagnosed from the tumour *in its surroundings*, by two kinds of knowledge that
should agree:

- **Stage 1, focus-perceive learning.** The input is a region of interest around the lesion
  widened by ``context_margin`` times its extent on every side, so that the healthy tissue around
  it is in view (:mod:`medssl.tasks.classification.lesion`). The network learns to segment the
  lesion inside that region (soft Dice + BCE), which teaches its encoder where the lesion ends
  and its context begins. For the first ``focus_fraction`` of the steps this is the only loss.
- **Stage 2, bi-knowledge contrast.** The encoder's pooled features of the region (deep
  knowledge) and the case's standardised pyradiomics features (radiomics knowledge) are each
  projected by a two-layer head to one embedding size (144, the code's). The supervised
  contrastive loss at temperature 0.07 treats them as two views of the case
  (:func:`~medssl.losses.bi_knowledge.bi_knowledge_contrastive`): same-class cases cohere,
  classes separate, and the two views of one case align. A linear classifier on the joint
  embedding (the two, concatenated, read at the contrastive scale ``1 / temperature``) is
  trained with cross-entropy; the segmentation loss stays
  on (``seg_weight``) so that the focus is not forgotten.

Switches, so that a bench shows what each part adds: ``radiomics: false`` (the deep view alone:
supervised contrast between cases), ``context_margin: 0`` (the lesion's own box, no
surroundings), ``focus: false`` (no segmentation; the region is still cropped),
``context_margin: null`` (the whole image, hence no segmentation; radiomics of the lesion where
a case gives one, else of every pixel: a diffuse finding such as pneumonia).

Where this departs from the paper, and why: the paper's stage-1 network is an attention U-Net;
here the focus-perceive segmentation is a light feature-pyramid decoder on the run's own
classification backbone (``net.name``: a ResNet or DenseNet), so that ``bkc``, ``supervised`` and
``ccl`` compare on one backbone and one budget; the paper classifies the joint embedding with
k-NN (k = 11), here a linear head trained with it (one network to checkpoint and evaluate). The
radiomics default is the paper's image types (original, LoG sigma 1-5 mm, wavelet) and feature
classes (shape, first order, GLCM, GLRLM, GLSZM, GLDM, bin width 25) on the images' own grid
(the paper resamples CT to 1 mm; ``radiomics_settings`` sets any of
:class:`~medssl.data.radiomics.RadiomicsSettings`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from pydantic import Field
from torch import nn

from medssl.data.radiomics import Standardisation, settings_from
from medssl.engine.module import register_method
from medssl.losses.bi_knowledge import bi_knowledge_contrastive
from medssl.methods.classify.base import ClassificationConfig, ClassificationMethod
from medssl.nets.encoders import Encoder, global_pool
from medssl.tasks.classification.lesion import LESION, RADIOMICS, LesionInputs

BKC_FEATURE_CLASSES = ["shape", "firstorder", "glcm", "glrlm", "glszm", "gldm"]


class BKCConfig(ClassificationConfig):
    #: context on every side of the lesion, in units of its largest extent (0: its own box;
    #: ``None``: the whole image, no segmentation; radiomics of the lesion where the case gives
    #: one, else of every pixel)
    context_margin: float | None = Field(0.5, ge=0)
    #: stage 1: segment the lesion in its region (needs a lesion region)
    focus: bool = True
    #: share of ``train.max_steps`` trained on the segmentation alone before stage 2
    focus_fraction: float = Field(0.2, ge=0, lt=1)
    #: weight of the segmentation loss during stage 2
    seg_weight: float = Field(1.0, ge=0)
    #: the radiomics view (off: the deep view alone)
    radiomics: bool = True
    #: :class:`~medssl.data.radiomics.RadiomicsSettings` fields over BKC-Net's own classes
    radiomics_settings: dict[str, Any] = Field(default_factory=dict)
    #: the common embedding size of the two views (the code's 144)
    embed_dim: int = Field(144, ge=2)
    #: temperature of the supervised contrastive loss
    temperature: float = Field(0.07, gt=0)
    #: weight of the bi-knowledge contrastive loss beside the classifier's cross-entropy
    contrast_weight: float = Field(1.0, ge=0)


def projection_head(in_dim: int, out_dim: int) -> nn.Sequential:
    """Two layers to the common embedding (SupCon's head)."""
    hidden = max(out_dim, min(in_dim, 512))
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim)
    )


class PyramidDecoder(nn.Module):
    """A light feature-pyramid segmentation head: each encoder level -> 1x1 conv to ``width``,
    upsampled to the finest level and summed, a 3x3 conv, one logit per pixel (voxel)."""

    def __init__(self, level_channels: list[int], dims: int, width: int = 32) -> None:
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.lateral = nn.ModuleList(conv(c, width, 1) for c in level_channels)
        self.head = nn.Sequential(
            conv(width, width, 3, padding=1), nn.ReLU(inplace=True), conv(width, 1, 1)
        )

    def forward(self, maps: list[torch.Tensor], size: tuple[int, ...]) -> torch.Tensor:
        finest = maps[0].shape[2:]
        mode = "bilinear" if len(finest) == 2 else "trilinear"
        total = sum(
            F.interpolate(lateral(m), size=finest, mode=mode, align_corners=False)
            for lateral, m in zip(self.lateral, maps, strict=True)
        )
        return F.interpolate(self.head(total), size=size, mode=mode, align_corners=False)


def level_maps(encoder: Encoder, x: torch.Tensor) -> list[torch.Tensor]:
    """The encoder's feature map at each resolution it passes through (the last layer at each
    size), finest first; the last entry is the encoder's own output map."""
    maps: list[torch.Tensor] = []
    for layer in encoder.body.children():
        x = layer(x)
        if maps and maps[-1].shape[2:] == x.shape[2:]:
            maps[-1] = x
        else:
            maps.append(x)
    return maps


@register_method("bkc")
class BKCNet(ClassificationMethod):
    Config = BKCConfig

    @classmethod
    def lesion_inputs(cls, method_config: dict[str, Any]) -> LesionInputs:
        hp = cls.parse_config(method_config)
        settings = None
        if hp.radiomics:
            values = {"feature_classes": BKC_FEATURE_CLASSES, **hp.radiomics_settings}
            settings = settings_from(values, "method_config.radiomics_settings")
        return LesionInputs(hp.context_margin, settings)

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        super().__init__(run_config, dataset_info)
        channels = self._level_channels()
        self.segments = self.hp.focus and self.hp.context_margin is not None
        self.decoder = PyramidDecoder(channels, self.spatial_dims) if self.segments else None
        dim = self.hp.embed_dim
        self.deep_head = projection_head(channels[-1], dim)
        columns = (dataset_info.get("radiomics") or {}).get("columns", [])
        self.radiomics_head = projection_head(len(columns), dim) if self.inputs.radiomics else None
        self.classifier = nn.Linear(
            dim * (2 if self.radiomics_head is not None else 1), self.num_classes
        )
        n = len(columns)
        self.register_buffer("radiomics_mean", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("radiomics_sd", torch.ones(n, dtype=torch.float64))
        self.dice = DiceLoss(sigmoid=True)

    def _level_channels(self) -> list[int]:
        """Channels of each level map, from one probe pass at the run's input size."""
        size = self.dataset_info.get("image_size") or [32] * self.spatial_dims
        channels = int(self.dataset_info["in_channels"])
        was_training = self.net.training
        self.net.eval()
        with torch.no_grad():
            maps = level_maps(self.encoder, torch.zeros(1, channels, *size))
        self.net.train(was_training)
        return [int(m.shape[1]) for m in maps]

    # -- radiomics statistics: taken on the training cases, kept with the weights -------------
    def setup(self, stage: str) -> None:
        data = getattr(self.trainer, "datamodule", None) if self._trainer else None
        stats = getattr(data, "radiomics_stats", None)
        if stage == "fit" and stats is not None:
            self.radiomics_mean.copy_(torch.as_tensor(stats.mean, dtype=torch.float64))
            self.radiomics_sd.copy_(torch.as_tensor(stats.sd, dtype=torch.float64))

    def radiomics_standardisation(self) -> Standardisation:
        columns = list(self.dataset_info["radiomics"]["columns"])
        mean = self.radiomics_mean.cpu().numpy()
        sd = self.radiomics_sd.cpu().numpy()
        return Standardisation(columns, mean, sd, train_ids=[])

    def radiomics_weights(self) -> dict[str, float]:
        """How much each radiomics feature weighs in its projection: the L2 norm of its column
        in the first layer, largest first."""
        if self.radiomics_head is None:
            return {}
        columns = self.dataset_info["radiomics"]["columns"]
        norms = self.radiomics_head[0].weight.detach().norm(dim=0).cpu().numpy()
        order = np.argsort(-norms)
        return {columns[i]: float(norms[i]) for i in order}

    # -- the network ------------------------------------------------------------------------
    def embed(
        self, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor]]:
        """Unit deep and radiomics embeddings ``(B, embed_dim)`` and the level maps."""
        maps = level_maps(self.encoder, batch["image"])
        deep = F.normalize(self.deep_head(global_pool(maps[-1])), dim=1)
        radiomics = None
        if self.radiomics_head is not None:
            radiomics = F.normalize(self.radiomics_head(batch[RADIOMICS].float()), dim=1)
        return deep, radiomics, maps

    def joint(self, deep: torch.Tensor, radiomics: torch.Tensor | None) -> torch.Tensor:
        return deep if radiomics is None else torch.cat([deep, radiomics], dim=1)

    def logits(self, deep: torch.Tensor, radiomics: torch.Tensor | None) -> torch.Tensor:
        """The linear classifier on the joint embedding at the contrastive temperature: unit
        vectors read at scale 1 give logits near zero, which a linear head grows only slowly,
        so for hundreds of steps its argmax stayed on the majority class while its scores
        already ranked the cases (both ``jsrt-nodule`` seeds' best checkpoints); at ``1 / T``,
        the scale the contrastive loss itself compares them at, it decides within steps."""
        return self.classifier(self.joint(deep, radiomics) / self.hp.temperature)

    @torch.no_grad()
    def predict_probs(self, batch: dict[str, Any]) -> torch.Tensor:
        deep, radiomics, _ = self.embed(batch)
        return torch.softmax(self.logits(deep, radiomics).float(), dim=1)

    @torch.no_grad()
    def joint_embedding(self, batch: dict[str, Any]) -> torch.Tensor:
        """The joint embedding the classifier reads, for the report's 2D projection."""
        return self.joint(*self.embed(batch)[:2])

    # -- the losses -------------------------------------------------------------------------
    def focus_steps(self) -> int:
        return int(self.hp.focus_fraction * self.run_config.train.max_steps) if self.segments else 0

    def segmentation_loss(self, maps: list[torch.Tensor], batch: dict[str, Any]) -> torch.Tensor:
        image = batch["image"]
        logits = self.decoder(maps, tuple(image.shape[2:])).float()
        target = (batch[LESION] > 0.5).float()
        return 0.5 * (
            self.dice(logits, target) + F.binary_cross_entropy_with_logits(logits, target)
        )

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        labeled = batch["labeled"]
        label = labeled["label"].long().view(-1)
        deep, radiomics, maps = self.embed(labeled)
        losses: dict[str, torch.Tensor] = {}
        seg = self.segmentation_loss(maps, labeled) if self.segments else None
        if seg is not None:
            losses["seg"] = seg
        if self.global_step < self.focus_steps():  # stage 1: focus-perceive only
            return {"loss": seg, **losses}
        contrast = bi_knowledge_contrastive(deep, radiomics, label, self.hp.temperature)
        ce = self.supervised_loss(self.logits(deep, radiomics), label)
        loss = ce + self.hp.contrast_weight * contrast
        if seg is not None:
            loss = loss + self.hp.seg_weight * seg
        return {"loss": loss, "ce": ce, "contrast": contrast, **losses}

"""CCF-Net: coarse-to-fine landmark localisation with classification (Chen et al., ISBI 2022).

Multi-Scale Context-Guided Lumbar Spine Disease Identification with Coarse-to-fine Localization
and Classification; official code czifan/CCFNet.pytorch (which fails as shipped: a misspelt loss
class, removed NumPy aliases). Specification: ``shared/docs/METHODS.md`` section 4.

**Network** (:class:`medssl.nets.keypoint.CCFNet`). A ResNet-18 or ResNet-50 (``net.name``,
MONAI's, with the ImageNet stem: a stride-2 7x7 convolution and a max pool) read up to
``layer3``, which puts the features on a grid of stride 16; a 1x1 convolution to 256 channels;
the multi-scale context module (CE-Net's dense atrous convolution and residual multi-kernel
pooling, then a bottleneck: the "-MSC" backbones of the paper, ``method_config.context``); one
1x1 convolution to, per landmark and cell, a heatmap, an x and a y offset, and class logits.

**Coarse heatmap.** The target of landmark ``l`` at cell ``c`` is a Gaussian of its distance
to the cell's centre, ``sigma`` = 16 input pixels (one cell, the code's ``sigma``), divided by
its maximum so that the point's own cell is 1. Loss: mean squared error over every cell.

**Offsets (the fine step).** The target at cell ``c`` is (point - centre of ``c``) / 16 in x
and in y. Loss: smooth L1 at the cells whose target heat is within ``offset_threshold`` (0.6,
the code's ``train_threshold``) of the peak, i.e. the point's own cell and its neighbours, so
that a peak found one cell off still reads a usable offset; summed there and divided by the
number of cells, as the code weighs it against the heatmap.

**Decoding.** The highest cell of each landmark's heatmap plus the offset predicted there:
``((i + 0.5 + dx) 16, (j + 0.5 + dy) 16)`` in input pixels.

**Classification.** Per landmark, as the paper's (a disc's or vertebra's grade): class logits
read at the point's own cell in training, at the decoded cell at test time, cross-entropy, when
``landmarks.json`` gives ``landmark_classes``. Per image, where the dataset gives one class per
image (``classes``): the paper has no image-level class; here a linear classifier on the
spatially averaged context features (``method_config.image_class``).

**Loss** = heat + 2 (offset x + offset y) + 0.001 (classification), the code's weights
(METHODS.md). A missing landmark has no heat, offset or class term; a case without a class has
no class term.

Decisions where the paper and code say nothing that applies here: radiographs are grey, so the
stem reads the image's own channels (the code repeats grey to RGB for ImageNet weights, which
medssl does not load); the network is trained from scratch; the per-image classifier above; the
code's test-time flip averaging is not done (a lateral radiograph is not left-right symmetric).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from medssl.engine.module import MethodConfig, register_method
from medssl.errors import ConfigError
from medssl.losses.landmarks import coarse_losses, coarse_targets, decode_coarse, read_at_cells
from medssl.methods.landmarks.base import LandmarkMethod, masked_cross_entropy
from medssl.nets.factory import create_net
from medssl.nets.keypoint import CCFNet

#: the ResNets CCF-Net is published with (MONAI's also have 10 and 34 layers)
BACKBONES = ("resnet10", "resnet18", "resnet34", "resnet50")


class CCFConfig(MethodConfig):
    #: the coarse heatmap's Gaussian, in input pixels (the code: 16, one cell)
    sigma: float = Field(16.0, gt=0)
    #: offsets are trained where the target heat is within this of the peak (the code: 0.6)
    offset_threshold: float = Field(0.6, ge=0, lt=1)
    heat_weight: float = Field(1.0, ge=0)
    offset_weight: float = Field(2.0, ge=0)
    class_weight: float = Field(0.001, ge=0)
    #: channels after the 1x1 reduction of layer3 (the code: 256)
    width: int = Field(256, gt=0, multiple_of=4)
    #: the multi-scale context module ("ResNet18-MSC"); false: the plain backbone
    context: bool = True
    #: classify the image (when the dataset gives classes) and each landmark (when it gives
    #: per-landmark classes)
    image_class: bool = True
    landmark_class: bool = True


@register_method("ccf")
class CCFNetLandmarks(LandmarkMethod):
    Config = CCFConfig
    default_overrides = {"net": {"name": "resnet18"}}

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        super().__init__(run_config, dataset_info)
        net = self.run_config.net
        if net.name not in BACKBONES:
            raise ConfigError(
                f"method 'ccf' reads a ResNet: net.name {net.name!r}; choose one of "
                f"{', '.join(BACKBONES)}"
            )
        # the ImageNet stem (stride 2, then the max pool) puts layer3 at stride 16
        backbone = create_net(
            net.name, 2, self.in_channels, 1, options={"conv1_t_stride": 2, **net.options}
        )
        self.net = CCFNet(
            backbone,
            self.num_landmarks,
            width=self.hp.width,
            context=self.hp.context,
            num_classes=len(self.class_names) if self.hp.image_class else 0,
            landmark_classes=len(self.landmark_class_names) if self.hp.landmark_class else 0,
        )
        self.stride = self.net.stride
        self.check_input_size(self.stride, f"ccf on {net.name}")

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor | None]:
        return self.net(image)

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        labeled = batch["labeled"]
        out = self(labeled["image"])
        targets = coarse_targets(
            labeled["landmarks"].float(),
            out["heat"].shape[2:],
            self.stride,
            self.hp.sigma,
            self.hp.offset_threshold,
        )
        losses = coarse_losses(out["heat"], out["offset"], targets)
        loss = self.hp.heat_weight * losses["heat"] + self.hp.offset_weight * (
            losses["offset_x"] + losses["offset_y"]
        )
        if out["class_logits"] is not None:
            losses["class"] = masked_cross_entropy(out["class_logits"], labeled["class"])
            loss = loss + self.hp.class_weight * losses["class"]
        if out["landmark_logits"] is not None:
            at_point = read_at_cells(out["landmark_logits"], targets.cell)  # (B, L, K_l)
            labels = torch.where(targets.present, labeled["landmark_class"].long(), -1)
            losses["landmark_class"] = masked_cross_entropy(
                at_point.flatten(0, 1), labels.flatten()
            )
            loss = loss + self.hp.class_weight * losses["landmark_class"]
        return {"loss": loss, **losses}

    @torch.no_grad()
    def predict_landmarks(self, batch: dict[str, Any]) -> dict[str, torch.Tensor | None]:
        out = self(batch["image"])
        points, cells = decode_coarse(out["heat"].float(), out["offset"].float(), self.stride)
        landmark_probs = None
        if out["landmark_logits"] is not None:
            at = read_at_cells(out["landmark_logits"].float(), cells)
            landmark_probs = torch.softmax(at, dim=-1)
        class_logits = out["class_logits"]
        return {
            "points": points,
            "class_probs": None if class_logits is None else torch.softmax(class_logits.float(), 1),
            "landmark_class_probs": landmark_probs,
        }

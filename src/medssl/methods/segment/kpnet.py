"""KP-Net: knowledge prompts meet semi-supervised 3D segmentation (Universal-Medical-SSL, 2024).

Network (:mod:`medssl.nets.kpnet`): an image encoder and an image-prompt encoder on the
edge-enhanced image, their features summed at the two deepest scales; per-class text prompts
("A computerized tomography of a {organ}"; "A magnetic resonance image of a {organ}" for MR)
embedded by a frozen text encoder and joined with the bottleneck tokens by the Token Joint Gate;
two decoders, transposed convolution vs trilinear (2D: bilinear) upsampling.

- Image prompt: the Sobel gradient magnitude of the normalised image, scaled to [0, 1], which
  the data pipeline appends as channels (``data.derived_channels: [edge]``, this method's
  default; in-plane for a 2D network on 3D volumes). The official loader reads a precomputed
  edge image from disk (``data_LHY_image.nii.gz``, a commented alternative
  ``data_sobel_image``).
- Text encoder: the official code runs Bio_ClinicalBERT (768-d pooled output) from a local
  folder; medssl uses a frozen encoder that ships inside a PyPI wheel and runs offline
  (``wordllama``, 256-d, L2-normalised; ``pip install 'medssl[text]'``) or, when none is
  installed, a learned embedding per class. ``text_encoder: auto`` is resolved before
  ``RUN/config.yaml`` is written, so the run records which one it used.

Losses, per step, with ``p1, p2`` the two decoders' softmax over all images of the batch
(labelled and unlabelled) and ``w(t) = consistency * sigmoid_rampup``:

- supervised: (Dice + CE) / 2 of each decoder on the labelled images, averaged over the two
  (MC-Net's ``lamda = 0.5`` on the summed decoder losses);
- consistency of different decoding branches: ``mean((p1 - p2)^2)``, the common consistency
  loss between the two differently-upsampled estimates (gradients to both);
- distinctiveness of the same decoding branch: ``sum_d mean((p_d - sharpen(p_d, T))^2)`` with
  the sharpened target detached, T = 0.1: each branch is pulled towards its own sharpened,
  class-distinct prediction.

``loss = supervised + w(t) * (consistency + distinct_weight * distinctiveness)``.

The README states the two terms but the official repository ships no training script or loss
for them; medssl separates what MC-Net+'s mutual term ``mse(p_i, sharpen(p_j))`` mixes: the
cross-branch agreement and the within-branch sharpening. Defaults follow MC-Net+ (the two-decoder
base KP-Net builds on, same up types): weight 1.0, ramp over 40 x 150 of 15000 iterations (0.4 of
the schedule), T = 0.1; channel dropout 0.5 and instance norm as the official ``newNet3d``.
Inference: the mean of the two decoders' softmax (``inference: mean``); the official test code
reads the transposed-convolution decoder alone (``inference: deconv``).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from medssl.engine.config import RunConfig
from medssl.engine.module import register_method
from medssl.errors import ConfigError
from medssl.losses.consistency import branch_distinctiveness, decoder_consistency
from medssl.methods.segment.consistency import ConsistencyConfig
from medssl.methods.segment.semi import SemiSupervisedMethod
from medssl.nets.kpnet import KPNet, kpnet_from_net_config
from medssl.nets.multi_decoder import SSL4MIS_NETS
from medssl.nets.text_prompts import build_prompts, class_prompts, resolve_text_encoder


class KPNetConfig(ConsistencyConfig):
    consistency: float = Field(1.0, ge=0)  # MC-Net+ --consistency 1
    rampup_fraction: float = Field(0.4, ge=0, le=1)  # MC-Net+: 40 x 150 of 15000 iterations
    temperature: float = Field(0.1, gt=0, le=1)  # MC-Net+ sharpening temperature
    distinct_weight: float = Field(1.0, ge=0)
    text_encoder: str = "auto"  # auto | learned | an offline encoder package (wordllama)
    prompt_levels: int = Field(2, ge=0)  # deepest scales where the edge prompt is added
    feature_dropout: float = Field(0.5, ge=0, lt=1)  # official has_dropout (Dropout3d 0.5)
    inference: Literal["mean", "deconv"] = "mean"


class MeanOfDecoders(nn.Module):
    """Test-time network: log of the two decoders' mean softmax (or one decoder's logits)."""

    def __init__(self, net: KPNet, mode: str) -> None:
        super().__init__()
        self.net, self.mode = net, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.net(x)
        if self.mode == "deconv":
            return a
        mean = 0.5 * (torch.softmax(a, 1) + torch.softmax(b, 1))
        return torch.log(mean.clamp_min(1e-8))


@register_method("kpnet")
class KPNetMethod(SemiSupervisedMethod):
    Config = KPNetConfig
    default_overrides = {"data": {"derived_channels": ["edge"]}}

    @classmethod
    def finalize_config(cls, cfg: RunConfig) -> RunConfig:
        """Resolve ``text_encoder: auto`` to what this machine has, so the run records it."""
        requested = cfg.method_config.get("text_encoder", "auto")
        cfg.method_config = {**cfg.method_config, "text_encoder": resolve_text_encoder(requested)}
        return cfg

    def build_net(self) -> nn.Module:
        derived = list(self.run_config.data.derived_channels)
        if derived != ["edge"]:
            raise ConfigError(
                f"kpnet reads the image and its edge prompt only, not derived channels {derived}; "
                "set data.derived_channels: [edge]"
            )
        net, info = self.run_config.net, self.dataset_info
        if net.options and net.name not in SSL4MIS_NETS:
            raise ConfigError(
                f"net.options {sorted(net.options)}: kpnet builds its own two-encoder network "
                f"from the shared net settings of {net.name!r}; remove net.options"
            )
        if self.hp.text_encoder == "auto":
            raise ConfigError(
                "kpnet: text_encoder 'auto' is resolved with the run config (finalize_config); "
                "building the module directly, pass 'learned' or an encoder name"
            )
        sentences = class_prompts(info["class_names"], info.get("channel_names", {}))
        prompts = build_prompts(self.hp.text_encoder, sentences)
        return kpnet_from_net_config(
            net,
            self.spatial_dims,
            int(info["in_channels"]),
            self.num_classes,
            prompts=prompts,
            text_dim=prompts().shape[1],
            patch_size=self.patch_size,
            feature_dropout=self.hp.feature_dropout,
            prompt_levels=self.hp.prompt_levels,
        )

    def on_fit_start(self) -> None:
        if not self.net.prompts.ready:
            raise ConfigError(
                f"kpnet: text encoder {self.hp.text_encoder!r} is not installed, so the class "
                "prompts cannot be embedded; pip install 'medssl[text]' or set "
                "method_config.text_encoder: learned"
            )

    def inference_net(self) -> nn.Module:
        return MeanOfDecoders(self.net, self.hp.inference)

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        x_l, y_l, x_u = self.split_batch(batch)
        logits_a, logits_b = self.net(self.all_images(x_l, x_u))
        n = len(x_l)
        supervised = 0.5 * (
            self.supervised_loss(logits_a[:n], y_l) + self.supervised_loss(logits_b[:n], y_l)
        )
        p_a, p_b = torch.softmax(logits_a, 1), torch.softmax(logits_b, 1)
        consistency = decoder_consistency(p_a, p_b)
        t = self.hp.temperature
        distinct = branch_distinctiveness(p_a, t) + branch_distinctiveness(p_b, t)
        weight = self.unsup_weight()
        return {
            "loss": supervised + weight * (consistency + self.hp.distinct_weight * distinct),
            "supervised": supervised,
            "consistency": consistency,
            "distinctiveness": distinct,
            "consistency_weight": torch.tensor(weight),
        }

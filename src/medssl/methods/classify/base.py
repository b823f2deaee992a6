"""The classification family's base: one image -> logits network, cross-entropy, val AUC.

Every classification method (supervised, CCL, later BKC) inherits this and adds its own losses.
The network comes from the factory by ``run_config.net.name`` (ResNet or DenseNet, 2D or 3D);
validation accumulates softmax probabilities over the epoch and logs ``val/auc``,
``val/accuracy``, ``val/f1_macro`` and ``val/balanced_accuracy`` with
:mod:`medssl.metrics.classification` (an AUC a one-class validation set cannot define is nan).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medssl.data.derived import input_channels
from medssl.engine.module import MethodConfig, MethodModule
from medssl.errors import ConfigError
from medssl.metrics.classification import classification_metrics
from medssl.nets.encoders import encoder_of
from medssl.nets.factory import CLASSIFIERS, create_net
from medssl.tasks.classification.lesion import LesionInputs

#: inputs whose every side is at most this get the small stem (``small_input``) by default
SMALL_INPUT_SIDE = 64


def balanced_weights(counts: Sequence[int]) -> list[float]:
    """Cross-entropy class weights inverse to class frequency, ``N / (K * n_k)`` (scikit-learn's
    "balanced"; 1 for every class when they are equally frequent). A class without training
    samples gets 0: no sample will carry it."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.zeros_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return [float(w) for w in weights]


class ClassificationConfig(MethodConfig):
    #: cross-entropy weights inverse to the training class frequencies, N / (K * n_k)
    class_balanced: bool = False
    #: the networks' 3x3 stride-1 stem without max pool (MedMNIST's 28 x 28 images); ``None``:
    #: on for 2D inputs of at most 64 pixels a side
    small_input: bool | None = None
    #: read a region around each case's lesion (mask or position) instead of the whole image,
    #: widened by this many times the lesion's largest extent on every side (0: the lesion's own
    #: box; ``None``: the whole image); the same region for every method of a comparison
    context_margin: float | None = Field(None, ge=0)


class ClassificationMethod(MethodModule):
    task = "classification"
    Config = ClassificationConfig

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        super().__init__(run_config, dataset_info)
        self.num_classes = int(dataset_info["num_classes"])
        self.spatial_dims = int(dataset_info["spatial_dims"])
        #: what the method reads besides the image (a lesion region, radiomics)
        self.inputs = self.lesion_inputs(self.run_config.method_config)
        self.net = self.build_net()
        #: the network's feature extractor (its own layers, not a registered submodule: no
        #: duplicate state keys), built once for :meth:`features_and_logits`
        self.__dict__["encoder"] = encoder_of(self.net)
        # set from the training split when ``class_balanced`` (on_fit_start); not saved
        self.register_buffer("class_weights", torch.ones(self.num_classes), persistent=False)
        self._val_probs: list[torch.Tensor] = []
        self._val_labels: list[torch.Tensor] = []

    def small_input(self) -> bool:
        if self.hp.small_input is not None:
            return self.hp.small_input
        size = self.dataset_info.get("image_size") or []
        return self.spatial_dims == 2 and bool(size) and max(size) <= SMALL_INPUT_SIDE

    def build_net(self) -> nn.Module:
        net = self.run_config.net
        if net.name not in CLASSIFIERS:
            raise ConfigError(
                f"net.name {net.name!r} is not a classification network; choose one of "
                f"{', '.join(CLASSIFIERS)}"
            )
        self.check_input_size(net.name)
        return create_net(
            net.name,
            self.spatial_dims,
            input_channels(
                int(self.dataset_info["in_channels"]), self.run_config.data.derived_channels
            ),
            self.num_classes,
            options={"small_input": self.small_input(), **net.options},
            channels=net.channels,
            strides=net.strides,
            num_res_units=net.num_res_units,
            norm=net.norm,
            dropout=net.dropout,
        )

    def check_input_size(self, name: str) -> None:
        """DenseNet's stem (/4) and three transitions (/8) fail on inputs they shrink below one
        voxel: say so before training, not with a pooling error from inside the network."""
        size = self.dataset_info.get("image_size") or []
        if not name.startswith("densenet") or not size:
            return
        small = self.small_input()
        factor = 8 if small else 32
        if min(size) < factor:
            fix = "a larger data.patch_size" if small else "method_config.small_input: true"
            raise ConfigError(
                f"net {name} shrinks its input {factor} times: data.patch_size {size} is too "
                f"small; use {fix} (or a ResNet)"
            )

    @classmethod
    def lesion_inputs(cls, method_config: dict[str, Any]) -> LesionInputs:
        """What the method reads besides the image (:mod:`medssl.tasks.classification.lesion`):
        the lesion region when ``context_margin`` is set; a lesion-aware method adds radiomics."""
        return LesionInputs(cls.parse_config(method_config).context_margin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's pooled features ``(B, D)`` and the logits ``(B, K)`` it computes from
        them, in one forward pass (the logits are ``self(x)``'s): for methods that put a head or
        a loss on the features. The features are :func:`~medssl.nets.encoders.encoder_of`'s
        (ResNet: after ``layer4``; DenseNet: ``features`` and its ReLU), the input of the
        network's last Linear, its classifier (``fc`` / ``class_layers.out``)."""
        features = self.encoder(x)
        classifier = [m for m in self.net.modules() if isinstance(m, nn.Linear)][-1]
        return features, classifier(features)

    def inference_net(self) -> nn.Module:
        """The network used at test time (a teacher for EMA methods, if they choose)."""
        return self.net

    # -- loss --------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        if self.hp.class_balanced:
            counts = self.trainer.datamodule.class_counts
            self.class_weights = torch.tensor(
                balanced_weights(counts), dtype=torch.float32, device=self.device
            )

    def supervised_loss(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        weight = self.class_weights if self.hp.class_balanced else None
        return F.cross_entropy(logits.float(), label.long().view(-1), weight=weight)

    # -- inference ---------------------------------------------------------------------------
    @torch.no_grad()
    def predict_probs(self, batch: dict[str, Any]) -> torch.Tensor:
        """Softmax class probabilities (B, K) of a preprocessed batch: its ``image`` (B, C,
        *size), and what else the method reads (:meth:`lesion_inputs`)."""
        return torch.softmax(self.inference_net()(batch["image"]).float(), dim=1)

    # -- validation: metrics over the whole validation set -----------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_probs, self._val_labels = [], []

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._val_probs.append(self.predict_probs(batch))
        self._val_labels.append(batch["label"].long().view(-1))

    def on_validation_epoch_end(self) -> None:
        if not self._val_probs:
            return
        probs, labels = torch.cat(self._val_probs), torch.cat(self._val_labels)
        if self.trainer.world_size > 1:  # every rank scores the whole validation set
            probs = self.all_gather(probs).flatten(0, 1)
            labels = self.all_gather(labels).flatten()
        scores = classification_metrics(labels.cpu(), probs.double().cpu())
        for name, value in scores.items():
            self.log(f"val/{name}", value, prog_bar=name == "auc", sync_dist=False)
        self._val_probs, self._val_labels = [], []

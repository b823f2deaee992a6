"""The landmarks family's base: one radiograph -> L points (and classes), validated by MRE.

A method builds its network and says how one batch trains it (``training_losses``) and how its
outputs become points (``predict_landmarks``: ``[x, y]`` in the network input's continuous
pixels, and class probabilities where it predicts classes). Validation maps the points back to
the original image (``landmarks_scale``) and logs ``val/mre`` (mm where the dataset gives a
pixel spacing, else pixels), ``val/sdr_2mm`` ... ``val/sdr_4mm`` with
:mod:`medssl.metrics.landmarks`, and the classification metrics of the image class when the
method predicts one. Missing landmarks (NaN) are left out of every metric.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from medssl.engine.module import MethodModule
from medssl.errors import ConfigError
from medssl.metrics.classification import classification_metrics
from medssl.metrics.landmarks import landmark_metrics


class LandmarkMethod(MethodModule):
    task = "landmarks"

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        super().__init__(run_config, dataset_info)
        self.num_landmarks = int(dataset_info["num_landmarks"])
        self.in_channels = int(dataset_info["in_channels"])
        self.image_size = [int(n) for n in dataset_info["image_size"]]
        self.class_names = [str(n) for n in dataset_info.get("class_names") or []]
        self.landmark_class_names = [str(n) for n in dataset_info.get("landmark_class_names") or []]
        self._val: list[dict[str, torch.Tensor]] = []

    def check_input_size(self, stride: int, network: str) -> None:
        """Input sides must be multiples of the network's total stride: say so before training,
        not with a shape error from inside the network."""
        if any(n % stride for n in self.image_size):
            raise ConfigError(
                f"{network} needs input sides divisible by {stride}, got data.patch_size "
                f"{self.image_size}; set data.patch_size to multiples of {stride}"
            )

    # -- what a method provides -------------------------------------------------------------
    def predict_landmarks(self, batch: dict[str, Any]) -> dict[str, torch.Tensor | None]:
        """``points`` ``(B, L, 2)`` in input pixels; ``class_probs`` ``(B, K)`` and
        ``landmark_class_probs`` ``(B, L, K_l)`` or None, for a preprocessed batch."""
        raise NotImplementedError

    # -- validation: metrics over the whole validation set, in original pixels ---------------
    def on_validation_epoch_start(self) -> None:
        self._val = []

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        out = self.predict_landmarks(batch)
        scale = batch["landmarks_scale"].to(out["points"].dtype)[:, None, :]
        row = {
            "pred": out["points"].float() / scale,
            "target": batch["landmarks"].to(scale.dtype) / scale,
        }
        if out.get("class_probs") is not None and "class" in batch:
            row["probs"], row["label"] = out["class_probs"].float(), batch["class"].long()
        self._val.append(row)

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        rows = {k: torch.cat([r[k] for r in self._val]) for k in self._val[0]}
        if self.trainer.world_size > 1:  # every rank scores the whole validation set
            rows = {k: self.all_gather(v).flatten(0, 1) for k, v in rows.items()}
        spacing = self.dataset_info.get("spacing_mm")
        scores = landmark_metrics(rows["pred"].cpu(), rows["target"].cpu(), spacing)
        for name in ("mre", "sdr_2mm", "sdr_2.5mm", "sdr_3mm", "sdr_4mm"):
            self.log(f"val/{name}", scores[name], prog_bar=name == "mre", sync_dist=False)
        if "probs" in rows:
            labelled = rows["label"] >= 0
            if labelled.any():
                probs = rows["probs"][labelled].double().cpu()
                labels = rows["label"][labelled].cpu()
                for name, value in classification_metrics(labels, probs).items():
                    self.log(f"val/{name}", value, sync_dist=False)
        self._val = []


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the samples whose label is not -1 (``(N, K)`` logits, ``(N,)``
    labels); 0 with a graph when none has one, never NaN."""
    keep = labels >= 0
    if not bool(keep.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[keep].float(), labels[keep].long())

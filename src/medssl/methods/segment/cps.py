"""Cross pseudo supervision, CPS (Chen et al., CVPR 2021), in its SSL4MIS medical form.

Two networks of the same architecture, initialised differently, supervise each other. Per step:

* Both networks see every image of the batch; each gets (Dice + CE) / 2 on the labelled images.
* Pseudo labels: ``y1 = argmax softmax(net1(x))``, ``y2 = argmax softmax(net2(x))``, detached
  (one-hot hard labels, no confidence threshold).
* ``cps = CE(net1(x), y2) + CE(net2(x), y1)``: each network learns from the *other's* hard
  labels; no gradient flows through a pseudo label into the network that produced it.
* Loss ``sup1 + sup2 + w(t) * cps``, ``w(t) = 0.1 * sigmoid_rampup`` over the whole schedule
  (SSL4MIS: consistency 0.1, ramp 200 "epochs" of 150 iterations = its 30000 iterations).

The CPS paper applies the cross term to labelled and unlabelled images alike (``L_cps^l +
L_cps^u``): the default ``pseudo_on: all``; SSL4MIS uses the unlabelled part only
(``pseudo_on: unlabeled``; without an unlabelled pool the labelled images stand in). As in
SSL4MIS, net1's convolutions are Kaiming-normal and net2's Xavier-normal initialised
(``init: kaiming_xavier``); ``init: default`` keeps two independent draws of MONAI's own
initialisation. Both networks train in the one optimiser, which is the same as SSL4MIS's two
SGD optimisers with equal settings, since no parameter is shared. Evaluation uses net1
(``evaluate: net1``, as SSL4MIS reports model1) or the mean of the two softmaxes
(``evaluate: ensemble``).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from medssl.engine.module import register_method
from medssl.losses.pseudo_label import cross_pseudo_loss, pseudo_labels
from medssl.methods.segment.consistency import ConsistencyConfig
from medssl.methods.segment.semi import SemiSupervisedMethod

LOG_EPS = 1e-8  # floor of the ensemble's mean probability before the log
CONVOLUTIONS = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)


class CPSConfig(ConsistencyConfig):
    pseudo_on: Literal["all", "unlabeled"] = "all"
    init: Literal["kaiming_xavier", "default"] = "kaiming_xavier"
    evaluate: Literal["net1", "ensemble"] = "net1"


def init_convolutions(net: nn.Module, scheme: str) -> nn.Module:
    """Re-draw every convolution's weight, ``kaiming`` or ``xavier`` normal (SSL4MIS)."""
    draw = nn.init.kaiming_normal_ if scheme == "kaiming" else nn.init.xavier_normal_
    for module in net.modules():
        if isinstance(module, CONVOLUTIONS):
            draw(module.weight)
    return net


class SoftmaxEnsemble(nn.Module):
    """``log(mean_i softmax(net_i(x)))``: log-probabilities, so argmax and softmax still work."""

    def __init__(self, *nets: nn.Module) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([torch.softmax(net(x), dim=1) for net in self.nets]).mean(dim=0)
        return torch.log(probs.clamp_min(LOG_EPS))


@register_method("cps")
class CrossPseudoSupervision(SemiSupervisedMethod):
    Config = CPSConfig

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        super().__init__(run_config, dataset_info)
        self.net2 = self.build_net()  # a second draw of the random initialisation
        if self.hp.init == "kaiming_xavier":
            init_convolutions(self.net, "kaiming")
            init_convolutions(self.net2, "xavier")

    def inference_net(self) -> nn.Module:
        if self.hp.evaluate == "ensemble":
            return SoftmaxEnsemble(self.net, self.net2)
        return self.net

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        x_l, y_l, x_u = self.split_batch(batch)
        images = self.all_images(x_l, x_u)
        logits1, logits2 = self.net(images), self.net2(images)
        n = len(x_l)
        supervised1 = self.supervised_loss(logits1[:n], y_l)
        supervised2 = self.supervised_loss(logits2[:n], y_l)
        start = n if self.hp.pseudo_on == "unlabeled" and x_u is not None else 0
        cps = cross_pseudo_loss(logits1[start:], logits2[start:])
        agreement = (pseudo_labels(logits1) == pseudo_labels(logits2)).float().mean()
        weight = self.unsup_weight()
        return {
            "loss": supervised1 + supervised2 + weight * cps,
            "supervised1": supervised1,
            "supervised2": supervised2,
            "cps": cps,
            "cps_weight": torch.tensor(weight),
            "pseudo_agreement": agreement,
        }

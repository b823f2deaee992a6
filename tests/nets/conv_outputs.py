"""Record what convolutions produce during a forward pass: the tests' view of a topology."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

PLAIN_CONVS = (nn.Conv2d, nn.Conv3d)


def conv_output_shapes(module: nn.Module, run: Callable[[], object]) -> list[torch.Size]:
    """Output shapes of the plain (not transposed) convolutions inside ``module``, in the order
    they run while ``run()`` executes (without gradients)."""
    seen: list[torch.Size] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
        for m in module.modules()
        if type(m) in PLAIN_CONVS
    ]
    try:
        with torch.no_grad():
            run()
    finally:
        for hook in hooks:
            hook.remove()
    return seen

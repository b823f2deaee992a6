"""Derived input channels: images computed from the image and appended as extra channels.

``data.derived_channels: [edge, histeq]`` appends, per image channel and in that order, the
named derivations, so a ``C``-channel image reaches the network with ``C * (1 + k)`` channels.
They run in the deterministic prefix after intensity normalisation, so patches, augmentation,
caching, sliding windows and ``Invertd`` treat them as more channels of the same image, and
``predict`` computes them exactly as training did. KP-Net's image prompt is ``edge``; a new
derivation is one function registered here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai import transforms as mt

from medssl.registry import Registry

Derivation = Callable[[torch.Tensor, bool], torch.Tensor]
#: name -> ``f(image (C, *spatial), in_plane) -> (C, *spatial)``
DERIVED_CHANNELS: Registry[Derivation] = Registry("derived channel")


@DERIVED_CHANNELS.register("edge")
def edge_magnitude(image: torch.Tensor, in_plane: bool = False) -> torch.Tensor:
    """Sobel gradient magnitude of each channel of ``(C, *spatial)``, scaled to [0, 1] per channel
    by its 99.5th percentile (values above it clip to 1).

    ``in_plane``: gradients along the first two spatial axes of each slice of a 3D volume only
    (a 2D network on 3D volumes sees each slice's own edges). A flat image gives zeros.
    """
    plain = image.as_tensor() if hasattr(image, "as_tensor") else torch.as_tensor(image)
    plain = plain.float()
    sobel = mt.SobelGradients(padding_mode="replicate")  # replicate: axes of size 1 are fine
    if in_plane and plain.ndim == 4:
        c, h, w, depth = plain.shape
        slices = plain.permute(0, 3, 1, 2).reshape(c * depth, h, w)
        grads = sobel(slices).reshape(2, c * depth, h, w)
        magnitude = grads.pow(2).sum(0).sqrt().reshape(c, depth, h, w).permute(0, 2, 3, 1)
    else:
        axes = plain.ndim - 1
        magnitude = sobel(plain).reshape(axes, *plain.shape).pow(2).sum(0).sqrt()
    peak = _robust_peak(magnitude.flatten(1)).view(-1, *([1] * (plain.ndim - 1)))
    return (magnitude / peak).clamp(0.0, 1.0)


def _robust_peak(values: torch.Tensor, quantile: float = 0.995) -> torch.Tensor:
    """Per-row 99.5th percentile (the maximum where that is 0): a few outlier voxels do not
    squash every other edge towards zero."""
    k = max(1, math.ceil(quantile * values.shape[1]))
    high = values.kthvalue(k, dim=1).values
    return torch.where(high > 0, high, values.amax(1)).clamp_min(1e-6)


@DERIVED_CHANNELS.register("histeq")
def histogram_equalised(image: torch.Tensor, in_plane: bool = False) -> torch.Tensor:
    """Histogram-equalised copy of each channel in [0, 1] (MONAI ``HistogramNormalize``, 256
    bins): low-contrast structure spread over the whole range. ``in_plane`` is not used: the
    histogram of a whole volume is the stable one."""
    plain = image.as_tensor() if hasattr(image, "as_tensor") else torch.as_tensor(image)
    plain = plain.float()
    equalise = mt.HistogramNormalize(num_bins=256, min=0.0, max=1.0)
    return torch.stack([torch.as_tensor(equalise(c[None]))[0] for c in plain]).float()


def check_derived(names: Sequence[str]) -> list[str]:
    """The names as given, each registered (else a one-line "did you mean"), none twice."""
    for name in names:
        DERIVED_CHANNELS.get(name)
    if len(set(names)) != len(names):
        raise ValueError(f"data.derived_channels lists a channel twice: {list(names)}")
    return list(names)


class DerivedChannelsd(mt.MapTransform):
    """Append the derived channels ``names`` to the image: ``(C, ...) -> (C * (1 + k), ...)``.

    ``in_plane``: a 2D network reads slices of 3D volumes, so derivations that look at
    neighbours (edges) stay within each slice.
    """

    def __init__(self, keys: Sequence[str] | str, names: Sequence[str], in_plane: bool) -> None:
        super().__init__(keys)
        self.derivations = [DERIVED_CHANNELS.get(n) for n in check_derived(names)]
        self.in_plane = in_plane

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            extra = [f(image, self.in_plane).to(image.dtype) for f in self.derivations]
            d[key] = torch.cat([image, *extra], dim=0)
        return d


def input_channels(image_channels: int, names: Sequence[str]) -> int:
    """What the network reads: the image's channels and each derivation of them."""
    return image_channels * (1 + len(names))

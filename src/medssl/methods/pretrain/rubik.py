"""Rubik's cube+ (Zhu et al., Medical Image Analysis 2020), which extends the Rubik's cube of
Zhuang et al. (MICCAI 2019). No official code exists; this is written from the papers.

A 3D patch is cut into a 2x2x2 grid of cubes with a random gap between neighbours, so that the
puzzle cannot be solved from edges that continue across cubes. Three transformations, each with
its target, make the puzzle:

- **cube ordering**: the eight cubes are shuffled by one of K = 100 permutations chosen once, far
  apart in Hamming distance (the greedy selection of Noroozi & Favaro's jigsaw); target: the
  permutation's index.
- **cube orientation**: every cube is independently rotated by 180 degrees horizontally (in the
  plane of axes 0 and 1, i.e. about the slice axis of a NIfTI volume), vertically (in the plane
  of axes 1 and 2) or not at all, 1/3 each; target: two bits per cube.
- **cube masking** (the "+"): every cube is masked with probability 0.5 by a random voxel mask:
  each of its voxels is set to 0 with probability 0.5 (the same mask for every channel); target:
  one bit per cube.

A Siamese octad, the run's encoder shared by the eight cubes and fed them as one batch, gives a
feature per cube: its deepest feature map averaged to a 2x2x2 grid and flattened (the papers' octad
flattens its last convolutional map into fully connected layers; a global average would keep no
trace of where in the cube things are, which is what a rotation or a mask changes). The eight
features, concatenated in their shuffled order, feed an MLP that classifies the permutation (cross-
entropy over K); each cube's feature feeds a linear rotation head (two logits, BCE) and a linear
mask head (one logit, BCE). Loss = perm + rot_weight * rot + mask_weight * mask. ``mask_prob: 0,
mask_weight: 0`` is the MICCAI 2019 Rubik's cube.

Where the papers leave room: the gap is drawn per patch and axis in [max_gap / 2, max_gap] (the
papers' "about 6-10 voxels" spans a factor of two) and the grid is placed at a random offset in
what the cubes and the gap leave of the patch. Cube sides are cut as multiples of the network's
downsampling factor (cropped, never resampled, so cubes keep the voxel size of the downstream
run); a patch too small for that is refused. Intensities are not rescaled to the papers' [-1, 1]:
the data pipeline already normalises them as the downstream run will see them, and masked voxels
become 0, the centre of either range.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medssl.engine.module import MethodConfig, register_method
from medssl.errors import ConfigError
from medssl.methods.pretrain.base import PretrainMethod, draw, draw_int
from medssl.nets.factory import downsample_factor

NUM_CUBES = 8  # the 2x2x2 grid
POOLED_CELLS = 8  # each cube's deepest map averaged to a 2x2x2 grid
PERMUTATION_SEED = 0  # one permutation set for every process and run
NONE, HORIZONTAL, VERTICAL = 0, 1, 2  # a cube's rotation
FLIPS = {HORIZONTAL: (-3, -2), VERTICAL: (-2, -1)}  # 180 degrees = flipping both axes of a plane


class RubikConfig(MethodConfig):
    # K: "about 100" in both papers (docs/METHODS.md); the set's minimum Hamming distance is 5
    num_permutations: int = Field(100, ge=2, le=math.factorial(NUM_CUBES))
    # voxels between neighbouring cubes, drawn in [max_gap / 2, max_gap]: the papers' 6-10
    max_gap: int = Field(10, ge=0)
    # masking: the probability a cube is masked and the share of its voxels set to 0 (0.5 and
    # 0.5 as public re-implementations; the paper's values are not verified here)
    mask_prob: float = Field(0.5, ge=0, le=1)
    mask_ratio: float = Field(0.5, gt=0, le=1)
    hidden_dim: int = Field(1024, ge=1)  # the permutation MLP's width (re-implementations)
    rot_weight: float = Field(1.0, ge=0)  # loss weights: equal, no paper weighting verified
    mask_weight: float = Field(1.0, ge=0)


# -- pretext targets (pure functions) ----------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _max_hamming(k: int, n: int, seed: int) -> tuple[tuple[int, ...], ...]:
    candidates = np.array(list(itertools.permutations(range(n))), dtype=np.int8)
    candidates = candidates[np.random.default_rng(seed).permutation(len(candidates))]
    chosen = [0]  # a random first permutation: the first of the seeded order
    nearest = (candidates != candidates[0]).sum(axis=1)  # distance to the chosen set
    for _ in range(k - 1):
        best = int(nearest.argmax())  # ties: the first in the seeded order
        chosen.append(best)
        nearest = np.minimum(nearest, (candidates != candidates[best]).sum(axis=1))
    return tuple(tuple(int(v) for v in candidates[i]) for i in chosen)


def max_hamming_permutations(
    k: int, n: int = NUM_CUBES, seed: int = PERMUTATION_SEED
) -> torch.Tensor:
    """``(k, n)`` permutations of ``range(n)`` far apart from one another.

    Greedy, as Noroozi & Favaro select jigsaw permutations: from a random first one, repeatedly
    add the permutation whose minimum Hamming distance to those chosen is largest, among all n!
    (enumerable for 8 cubes: 40320). The same ``(k, n, seed)`` gives the same set in every
    process (seeded NumPy, cached)."""
    if not 1 <= k <= math.factorial(n):
        raise ValueError(f"{k} permutations of {n} items: choose 1 to {math.factorial(n)}")
    return torch.tensor(_max_hamming(k, n, seed), dtype=torch.long)


def cube_side(patch: Sequence[int], max_gap: int, factor: int = 1) -> list[int]:
    """Each axis's cube side: half of what the largest gap leaves of the patch, rounded down to a
    multiple of ``factor`` (what the network's downsampling needs)."""
    return [(int(p) - max_gap) // 2 // factor * factor for p in patch]


def cut_cubes(
    image: torch.Tensor,
    side: Sequence[int],
    max_gap: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``(B, C, D0, D1, D2)`` -> the 2x2x2 cubes ``(B, 8, C, *side)``, cube ``4i + 2j + k`` at
    grid position ``(i, j, k)``. Per patch and axis the gap between the two cubes is drawn in
    ``[ceil(max_gap / 2), max_gap]`` and the pair starts at a random offset in what is left."""
    batch, channels, *patch = image.shape
    room = torch.tensor(patch) - 2 * torch.tensor(side) - max_gap
    if len(patch) != 3 or bool((room < 0).any()) or min(side) < 1:
        raise ValueError(f"cubes of {list(side)} and gaps up to {max_gap} do not fit {patch}")
    low = (max_gap + 1) // 2
    gap = low + (draw(generator, batch, 3) * (max_gap - low + 1)).long()
    offset = (draw(generator, batch, 3) * (room + max_gap - gap + 1)).long()
    cubes = []
    for b in range(batch):
        starts = [
            (o, o + s + g)
            for o, s, g in zip(offset[b].tolist(), side, gap[b].tolist(), strict=True)
        ]
        for i, j, k in itertools.product((0, 1), repeat=3):
            a0, a1, a2 = starts[0][i], starts[1][j], starts[2][k]
            cubes.append(image[b, :, a0 : a0 + side[0], a1 : a1 + side[1], a2 : a2 + side[2]])
    return torch.stack(cubes).view(batch, NUM_CUBES, channels, *side)


def draw_puzzle(
    batch: int,
    num_permutations: int,
    side: Sequence[int],
    mask_prob: float,
    mask_ratio: float,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """The random choices of one batch (CPU tensors): ``perm_index`` (B,), ``rotation`` (B, 8) in
    {NONE, HORIZONTAL, VERTICAL}, ``masked`` (B, 8) bool and ``keep`` (B, 8, 1, *side) bool, the
    voxels a masked cube keeps."""
    return {
        "perm_index": draw_int(generator, num_permutations, batch),
        "rotation": draw_int(generator, 3, batch, NUM_CUBES),
        "masked": draw(generator, batch, NUM_CUBES) < mask_prob,
        "keep": draw(generator, batch, NUM_CUBES, 1, *side) >= mask_ratio,
    }


def scramble(
    cubes: torch.Tensor,
    order: torch.Tensor,
    rotation: torch.Tensor,
    masked: torch.Tensor,
    keep: torch.Tensor,
) -> torch.Tensor:
    """Shuffle, rotate and mask cubes ``(B, 8, C, *side)``: position ``p`` of patch ``b`` gets
    cube ``order[b, p]``, then rotated by ``rotation[b, p]`` and, where ``masked[b, p]``, zeroed
    outside ``keep[b, p]``. Targets refer to positions (the shuffled order)."""
    rows = torch.arange(cubes.shape[0], device=cubes.device)[:, None]
    out = cubes[rows, order]
    turn = rotation.view(*rotation.shape, 1, 1, 1, 1)
    for kind, axes in FLIPS.items():
        out = torch.where(turn == kind, out.flip(axes), out)
    drop = masked.view(*masked.shape, 1, 1, 1, 1) & ~keep
    return out.masked_fill(drop, 0)


def rubik_losses(
    perm_logits: torch.Tensor,
    rot_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    perm_index: torch.Tensor,
    rotation: torch.Tensor,
    masked: torch.Tensor,
    rot_weight: float = 1.0,
    mask_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Cross-entropy over the K permutations ``(B, K)``; BCE of the horizontal / vertical bits
    ``(B, 8, 2)`` and of the mask bit ``(B, 8)`` of every cube; accuracies for the log."""
    perm = F.cross_entropy(perm_logits, perm_index)
    bits = torch.stack((rotation == HORIZONTAL, rotation == VERTICAL), dim=-1)
    rot = F.binary_cross_entropy_with_logits(rot_logits, bits.to(rot_logits.dtype))
    mask = F.binary_cross_entropy_with_logits(mask_logits, masked.to(mask_logits.dtype))
    with torch.no_grad():
        perm_acc = (perm_logits.argmax(dim=1) == perm_index).float().mean()
        rot_acc = ((rot_logits > 0) == bits).all(dim=-1).float().mean()
        mask_acc = ((mask_logits > 0) == masked).float().mean()
    return {
        "loss": perm + rot_weight * rot + mask_weight * mask,
        "perm_loss": perm,
        "rot_loss": rot,
        "mask_loss": mask,
        "perm_acc": perm_acc,
        "rot_acc": rot_acc,
        "mask_acc": mask_acc,
    }


# -- the method ----------------------------------------------------------------------------------
@register_method("rubik")
class RubikCube(PretrainMethod):
    Config = RubikConfig

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        if int(dataset_info["spatial_dims"]) != 3:
            raise ConfigError(
                "rubik cuts 3D patches into 2x2x2 cubes and this run is 2D; "
                "set data.spatial_dims 3 (with a 3D dataset)"
            )
        super().__init__(run_config, dataset_info)
        hp = self.hp
        net = self.run_config.net
        self.factor = downsample_factor(net.name, net.strides, len(net.channels or [0] * 5))
        # instance norm needs more than one voxel in the encoder's deepest map
        self.instance_norm = any(isinstance(m, nn.InstanceNorm3d) for m in self.encoder.modules())
        if self.run_config.data.patch_size:
            self.fitted_side(self.run_config.data.patch_size)  # refuse before training starts
        dim = self.encoder.feature_dim * POOLED_CELLS
        self.perm_head = nn.Sequential(
            nn.Linear(NUM_CUBES * dim, hp.hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hp.hidden_dim, hp.num_permutations),
        )
        self.rot_head = nn.Linear(dim, 2)
        self.mask_head = nn.Linear(dim, 1)
        permutations = max_hamming_permutations(hp.num_permutations)
        self.register_buffer("permutations", permutations, persistent=False)

    def fitted_side(self, patch: Sequence[int]) -> list[int]:
        """The cube side of ``patch``, refused where the encoder cannot take it: every side a
        multiple of the downsampling factor, twice it under instance norm."""
        need = self.factor * (2 if self.instance_norm else 1)
        side = cube_side(patch, self.hp.max_gap, self.factor)
        if min(side) < need:
            why = f"{need} ({self.run_config.net.name}'s downsampling factor {self.factor}"
            why += ", twice for instance norm)" if self.instance_norm else ")"
            raise ConfigError(
                f"rubik: a {list(patch)} patch with gaps up to {self.hp.max_gap} leaves cubes of "
                f"{side} voxels, under {why}; set data.patch_size to at least "
                f"{2 * need + self.hp.max_gap} per axis or lower method_config.max_gap"
            )
        return side

    def pretext_losses(
        self, image: torch.Tensor, generator: torch.Generator | None
    ) -> dict[str, torch.Tensor]:
        hp, batch, device = self.hp, image.shape[0], image.device
        side = self.fitted_side(image.shape[2:])
        cubes = cut_cubes(image, side, hp.max_gap, generator)
        drawn = draw_puzzle(batch, hp.num_permutations, side, hp.mask_prob, hp.mask_ratio,
                            generator)  # fmt: skip
        drawn = {name: value.to(device) for name, value in drawn.items()}
        order = self.permutations[drawn["perm_index"]]
        puzzle = scramble(cubes, order, drawn["rotation"], drawn["masked"], drawn["keep"])
        # The Siamese octad: one encoder, the 8 cubes of every patch in one batch.
        grid = self.encoder.feature_map(puzzle.flatten(0, 1))
        features = F.adaptive_avg_pool3d(grid, 2).reshape(batch, NUM_CUBES, -1)
        return rubik_losses(
            self.perm_head(features.flatten(1)),
            self.rot_head(features),
            self.mask_head(features).squeeze(-1),
            drawn["perm_index"],
            drawn["rotation"],
            drawn["masked"],
            hp.rot_weight,
            hp.mask_weight,
        )

"""Rubik's cube+: the permutation set, the cubes and their scrambling, the losses, training."""

from __future__ import annotations

import csv
import itertools
import math
import re
from pathlib import Path

import pytest
import torch

from medssl import api
from medssl.engine.handoff import ENCODER_FILE
from medssl.errors import ConfigError
from medssl.methods.pretrain.rubik import (
    FLIPS,
    NONE,
    RubikCube,
    cube_side,
    cut_cubes,
    draw_puzzle,
    max_hamming_permutations,
    scramble,
)

PRETRAIN = {
    "data": {"patch_size": [32, 32, 32], "batch_size": 2, "val_cases": 2},
    "net": {"channels": [8, 16, 32], "num_res_units": 0},
    "train": {"val_every": 2, "log_every": 1},
    "optim": {"name": "adam", "lr": 0.001, "schedule": "constant"},
}


def _distances(perms: torch.Tensor) -> torch.Tensor:
    """Pairwise Hamming distances ``(K, K)`` of permutations ``(K, n)``."""
    return (perms[:, None, :] != perms[None, :, :]).sum(dim=-1)


def _min_distance(perms: torch.Tensor) -> int:
    d = _distances(perms)
    return int(d[~torch.eye(len(perms), dtype=torch.bool)].min())


def _module(patch=(20, 20, 20), dims=3, **method_config) -> RubikCube:
    cfg = {
        "task": "pretrain",
        "method": "rubik",
        "data": {"patch_size": list(patch), "spatial_dims": dims},
        "net": {"channels": [8, 16], "num_res_units": 0},
        "method_config": {"max_gap": 4, "num_permutations": 10, "hidden_dim": 64,
                          **method_config},
    }  # fmt: skip
    return RubikCube(cfg, {"spatial_dims": dims, "in_channels": 1})


def _unscramble(puzzle: torch.Tensor, order: torch.Tensor, rotation: torch.Tensor):
    """Undo the rotation of every position, then put position ``p`` back at cube ``order[p]``."""
    out = torch.empty_like(puzzle)
    for b, p in itertools.product(range(puzzle.shape[0]), range(8)):
        cube = puzzle[b, p]
        kind = int(rotation[b, p])
        if kind != NONE:  # a 180-degree rotation is its own inverse
            cube = cube.flip(FLIPS[kind])
        out[b, order[b, p]] = cube
    return out


# -- the permutation set -----------------------------------------------------------------------
def test_the_permutation_set_is_the_greedy_max_min_hamming_set():
    perms = max_hamming_permutations(100)
    assert perms.shape == (100, 8)
    assert torch.equal(perms.sort(dim=1).values, torch.arange(8).expand(100, 8))
    assert len({tuple(p) for p in perms.tolist()}) == 100
    assert torch.equal(perms, max_hamming_permutations(100))  # the same set on every call
    smallest = _min_distance(perms)
    # Greedy farthest-point selection: the set ends when no permutation is farther from it than
    # its own closest pair, so no other permutation could have raised its minimum.
    every = torch.tensor(list(itertools.permutations(range(8))))
    to_set = (every[:, None, :] != perms[None, :, :]).sum(dim=-1).min(dim=1).values
    assert int(to_set.max()) <= smallest
    # ... and each pick was the farthest at its time, so the minimum only shrinks as K grows.
    assert torch.equal(max_hamming_permutations(30), perms[:30])
    assert _min_distance(perms[:30]) >= smallest
    generator = torch.Generator().manual_seed(0)
    random = torch.stack([torch.randperm(8, generator=generator) for _ in range(100)])
    assert smallest == 5 and _min_distance(random) < smallest  # 5 vs 2 for a random set


def test_greedy_picks_by_hand_on_three_items():
    # Of the 3! permutations, those at distance 3 from one are its two cyclic shifts: the greedy
    # set of 2 is a permutation and one of its shifts, that of 3 a whole cyclic group.
    pair = max_hamming_permutations(2, n=3)
    assert _min_distance(pair) == 3
    triple = max_hamming_permutations(3, n=3)
    assert _distances(triple).sum() == 3 * 6
    with pytest.raises(ValueError, match="choose 1 to 6"):
        max_hamming_permutations(7, n=3)


# -- cutting and scrambling cubes --------------------------------------------------------------
def test_cube_sides_are_multiples_of_the_network_factor():
    assert cube_side([32, 32, 32], max_gap=10, factor=4) == [8, 8, 8]  # (32 - 10) // 2 = 11
    assert cube_side([64, 64, 48], max_gap=10, factor=8) == [24, 24, 16]
    assert cube_side([8, 8, 8], max_gap=0) == [4, 4, 4]


def test_cubes_tile_the_patch_in_grid_order_without_a_gap():
    image = torch.arange(2 * 8**3, dtype=torch.float32).view(2, 1, 8, 8, 8)
    cubes = cut_cubes(image, [4, 4, 4], max_gap=0)
    assert cubes.shape == (2, 8, 1, 4, 4, 4)
    for i, j, k in itertools.product((0, 1), repeat=3):
        expected = image[:, :, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4, 4 * k : 4 * k + 4]
        assert torch.equal(cubes[:, 4 * i + 2 * j + k], expected)


def test_gaps_are_drawn_between_half_and_all_of_max_gap():
    # A voxel's value is its position: x * 10000 + y * 100 + z.
    x, y, z = torch.meshgrid(torch.arange(14), torch.arange(15), torch.arange(16), indexing="ij")
    image = (x * 10000 + y * 100 + z).float()[None, None].expand(64, 1, -1, -1, -1)
    cubes = cut_cubes(image, [4, 5, 6], max_gap=4, generator=torch.Generator().manual_seed(0))
    start = cubes[:, :, 0, 0, 0, 0].long()  # (B, 8) positions of every cube's first voxel
    first = torch.stack([start[:, 0] // 10000, start[:, 0] // 100 % 100, start[:, 0] % 100], 1)
    gaps = []
    for axis, (cube, side, scale) in enumerate(
        zip((4, 2, 1), (4, 5, 6), (10000, 100, 1), strict=True)
    ):
        gap = (start[:, cube] - start[:, 0]) // scale - side
        assert ((gap >= 2) & (gap <= 4)).all() and (first[:, axis] >= 0).all()
        assert (first[:, axis] + 2 * side + gap <= image.shape[2 + axis]).all()  # inside
        gaps.append(gap)
    assert set(torch.cat(gaps).tolist()) == {2, 3, 4}
    again = cut_cubes(image, [4, 5, 6], max_gap=4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(cubes, again)  # a seeded generator draws the same cubes


def test_permutation_and_rotation_are_recovered_from_the_targets():
    generator = torch.Generator().manual_seed(1)
    cubes = torch.randn(6, 8, 2, 4, 5, 6, generator=generator)  # sides differ: 180 deg only
    drawn = draw_puzzle(6, 10, [4, 5, 6], mask_prob=0.0, mask_ratio=0.5, generator=generator)
    order = max_hamming_permutations(10)[drawn["perm_index"]]
    puzzle = scramble(cubes, order, drawn["rotation"], drawn["masked"], drawn["keep"])
    assert not drawn["masked"].any() and set(drawn["rotation"].unique().tolist()) == {0, 1, 2}
    assert not torch.equal(puzzle, cubes)
    assert torch.equal(_unscramble(puzzle, order, drawn["rotation"]), cubes)


def test_masks_hit_exactly_the_cubes_the_targets_name():
    generator = torch.Generator().manual_seed(2)
    cubes = torch.rand(6, 8, 2, 4, 4, 4, generator=generator) + 1  # no voxel is 0
    drawn = draw_puzzle(6, 10, [4, 4, 4], mask_prob=0.5, mask_ratio=0.5, generator=generator)
    order = max_hamming_permutations(10)[drawn["perm_index"]]
    puzzle = scramble(cubes, order, drawn["rotation"], drawn["masked"], drawn["keep"])
    unmasked = scramble(cubes, order, drawn["rotation"], torch.zeros_like(drawn["masked"]),
                        drawn["keep"])  # fmt: skip
    zeroed = puzzle == 0  # (B, 8, C, *side)
    assert torch.equal(zeroed.flatten(2).any(dim=2), drawn["masked"])
    assert 0.3 < drawn["masked"].float().mean() < 0.7
    masked = drawn["masked"]
    # A masked cube loses the same voxels in every channel, about mask_ratio of them, and keeps
    # the others; an unmasked cube is untouched.
    assert torch.equal(zeroed[masked], (~drawn["keep"][masked]).expand(-1, 2, -1, -1, -1))
    assert 0.4 < zeroed[masked].float().mean() < 0.6
    assert torch.equal(puzzle[~zeroed], unmasked[~zeroed])


# -- the method --------------------------------------------------------------------------------
def test_validation_draws_the_same_puzzle_and_losses_are_logged():
    torch.manual_seed(0)
    module = _module()
    image = torch.randn(2, 1, 20, 20, 20)
    first = module.pretext_losses(image, torch.Generator().manual_seed(3))
    second = module.pretext_losses(image, torch.Generator().manual_seed(3))
    names = {"loss", "perm_loss", "rot_loss", "mask_loss", "perm_acc", "rot_acc", "mask_acc"}
    assert set(first) == names and all(torch.equal(first[n], second[n]) for n in names)
    assert math.isclose(
        float(first["perm_loss"].detach()), math.log(10), rel_tol=0.2
    )  # chance level
    total = first["perm_loss"] + first["rot_loss"] + first["mask_loss"]
    assert torch.allclose(first["loss"], total)


def test_the_losses_decrease_on_a_fixed_batch():
    torch.manual_seed(0)
    module = _module()
    image = torch.randn(2, 1, 20, 20, 20)
    optimiser = torch.optim.Adam(module.parameters(), lr=1e-2)
    history = []
    for _ in range(12):
        losses = module.pretext_losses(image, torch.Generator().manual_seed(0))  # same puzzle
        optimiser.zero_grad()
        losses["loss"].backward()
        optimiser.step()
        history.append({k: float(v.detach()) for k, v in losses.items()})
    first, last = history[0], history[-1]
    assert last["loss"] < 0.6 * first["loss"] and last["perm_loss"] < 0.5 * first["perm_loss"]
    # The per-cube heads read pooled features only (12 steps: about 0.67 -> 0.56 and 0.72 -> 0.64).
    assert last["rot_loss"] < 0.9 * first["rot_loss"]
    assert last["mask_loss"] < 0.95 * first["mask_loss"]
    assert last["perm_acc"] > first["perm_acc"]


def test_cubes_too_small_for_the_network_are_refused():
    with pytest.raises(ConfigError, match=r"data.patch_size to at least 12 .*max_gap"):
        _module(patch=(20, 20, 10))  # cubes of 2 under a factor 2 with instance norm: 4
    with pytest.raises(ConfigError, match=r"a \[20, 20, 10\] patch .* cubes of \[8, 8, 2\]"):
        _module().pretext_losses(torch.randn(1, 1, 20, 20, 10), None)  # smaller than configured
    with pytest.raises(ConfigError, match="num_permutations"):
        _module(num_permutations=40321)


# -- end to end --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pretrained(seg_phantom: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rubik") / "run"
    return api.train(seg_phantom, task="pretrain", method="rubik", out=out, profile="cpu",
                     max_steps=4, config=PRETRAIN)  # fmt: skip


def test_pretraining_logs_every_part_and_exports_the_encoder(pretrained: Path):
    assert (pretrained / ENCODER_FILE).stat().st_size > 0
    with open(pretrained / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    for name in ("loss", "perm_loss", "rot_loss", "mask_loss", "perm_acc"):
        assert any(r.get(f"train/{name}") for r in rows), name
    assert len([r for r in rows if r.get("val/perm_acc")]) == 2
    assert all(math.isfinite(float(r["val/pretext_loss"])) for r in rows
               if r.get("val/pretext_loss"))  # fmt: skip


def test_a_segmentation_run_starts_from_the_rubik_encoder(
    pretrained: Path, seg_phantom: Path, tmp_path: Path, capfd
):
    from tests.conftest import train_tiny

    run = train_tiny(seg_phantom, method="mean_teacher", out=tmp_path / "ft", max_steps=1,
                     init=str(pretrained))  # fmt: skip
    assert (run / "checkpoints" / "last.ckpt").is_file()
    line = next(x for x in capfd.readouterr().err.splitlines() if x.startswith("init from"))
    assert re.search(r": [1-9]\d* tensors loaded .*; 0 missing, 0 unexpected$", line), line


def test_a_2d_run_is_refused_in_one_line(seg_phantom: Path, tmp_path: Path):
    config = {**PRETRAIN, "data": {**PRETRAIN["data"], "spatial_dims": 2, "patch_size": [32, 32]}}
    with pytest.raises(ConfigError, match="set data.spatial_dims 3") as err:
        api.train(seg_phantom, task="pretrain", method="rubik", out=tmp_path / "r",
                  profile="cpu", max_steps=1, config=config)  # fmt: skip
    assert "\n" not in str(err.value) and not (tmp_path / "r").exists()

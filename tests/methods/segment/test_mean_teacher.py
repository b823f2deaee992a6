"""Mean teacher beats supervised training with the same labels on a fixed tiny problem.

The problem is the setting semi-supervised learning is for: two labelled cases come from a quiet
scanner (noise sd 0.1), while the unlabelled pool and the held-out cases come from a noisy one
(sd 0.6). Supervised training sees only the quiet cases; mean teacher also learns, through its
noise-perturbed consistency, on the noisy unlabelled ones. Images are 64x64 disks on a textured
background, stored as 4-slice volumes and segmented slice-wise by a 2D UNet.

Development runs (1 thread, 500 steps; docs/RESULTS.md): held-out Dice supervised
0.334 / 0.821 / 0.851 and mean teacher 0.627 / 0.861 / 0.899 for training seeds 0 / 1 / 2.
Supervised alone is erratic under the shift (one seed in three fails); mean teacher wins at
every seed, so the test asserts the mean margin and a win at each seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from medssl import api

SEEDS = (0, 1, 2)
STEPS = 500


def write_shifted_disks(root: Path, labelled=2, unlabelled=12, val=4, seed=0) -> Path:
    """nnU-Net layout: quiet labelled cases, then a noisy pool and noisy held-out cases."""
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    for i in range(labelled + unlabelled + val):
        pooled = labelled <= i < labelled + unlabelled
        noise = 0.1 if i < labelled else 0.6
        image = np.zeros((64, 64, 4), np.float32)
        label = np.zeros((64, 64, 4), np.uint8)
        for z in range(4):
            for _ in range(rng.integers(1, 4)):
                cx, cy, r = rng.uniform(10, 54), rng.uniform(10, 54), rng.uniform(4, 10)
                label[..., z][(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = 1
            texture = ndimage.gaussian_filter(rng.normal(0, 1, (64, 64)), 3) * 2
            image[..., z] = label[..., z] + 0.3 * texture + rng.normal(0, noise, (64, 64))
        case = f"toy_{i:03d}"
        nib.save(nib.Nifti1Image(image, np.eye(4)), root / "imagesTr" / f"{case}_0000.nii.gz")
        if not pooled:
            nib.save(nib.Nifti1Image(label, np.eye(4)), root / "labelsTr" / f"{case}.nii.gz")
    meta = {"channel_names": {"0": "MRI"}, "labels": {"background": 0, "disk": 1}}
    meta |= {"numTraining": labelled + val, "file_ending": ".nii.gz"}
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


CONFIG = {
    "plan": False,  # the fixed problem's own settings over the profile's (RESULTS records them)
    "data": {
        "spatial_dims": 2,
        "patch_size": [64, 64],
        "batch_size": 4,
        "unlabeled_batch_size": 4,
        "val_cases": 4,
        "val_order": "last",
        "labeled_order": "first",
        "intensity": "none",
    },
    "net": {"channels": [16, 32, 64], "num_res_units": 1},
    "train": {"val_every": STEPS, "log_every": 100},
}
MEAN_TEACHER = {"method_config": {"consistency": 1.0, "rampup_fraction": 0.3}}


def held_out_dice(data: Path, out: Path, method: str, seed: int) -> float:
    config = CONFIG | (MEAN_TEACHER if method == "mean_teacher" else {})
    run = api.train(
        data, method=method, out=out, labeled=2, profile="cpu", max_steps=STEPS,
        config=config, seed=seed,
    )  # fmt: skip
    return api.evaluate(run, data, only="val")["mean"]["dice"]


def test_mean_teacher_beats_supervised_with_the_same_labels(tmp_path: Path):
    data = write_shifted_disks(tmp_path / "disks")
    dice = {
        method: [held_out_dice(data, tmp_path / f"{method}{s}", method, s) for s in SEEDS]
        for method in ("supervised", "mean_teacher")
    }
    sup, mt = (np.array(dice[m]) for m in ("supervised", "mean_teacher"))
    assert (mt > sup).all(), dice
    assert mt.mean() - sup.mean() > 0.05, dice

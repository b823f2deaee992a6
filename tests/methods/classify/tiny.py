"""What the classification method tests share: a fast 3D classifier and ``api.train`` of one
classification method under the cpu profile."""

from __future__ import annotations

from pathlib import Path

from medssl import api

# a small, fast 3D classifier: ResNet-10 with a stride-2 stem on 20^3 inputs
TINY_3D = {
    "data": {"batch_size": 6, "patch_size": [20, 20, 20]},
    "net": {"name": "resnet10", "options": {"conv1_t_stride": 2}},
    "train": {"val_every": 4, "log_every": 1},
}


def train_classifier(
    method: str, data: Path, out: Path, max_steps: int, config: dict, **options
) -> Path:
    """``api.train`` of the classification ``method`` under the cpu profile."""
    return api.train(
        data,
        method=method,
        out=out,
        task="classification",
        profile="cpu",
        max_steps=max_steps,
        config=config,
        **options,
    )

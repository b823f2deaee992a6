"""The DataLoader every task's data module builds, in one place.

Training loaders drop the last short batch; ``draws`` gives an epoch of that many samples taken
without replacement from the whole set (a fresh permutation each epoch, repeated when the set is
smaller), so a large or class-sorted set is seen whole rather than by its first cases.
"""

from __future__ import annotations

import torch
from monai.data import DataLoader


def task_loader(
    data: torch.utils.data.Dataset,
    batch_size: int,
    num_workers: int,
    train: bool,
    draws: int | None = None,
) -> DataLoader:
    """A loader of ``data``: shuffled (or ``draws`` samples an epoch) when ``train``."""
    sampler = None
    if train and draws is not None:
        sampler = torch.utils.data.RandomSampler(data, replacement=False, num_samples=draws)
    return DataLoader(
        data,
        batch_size=batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        drop_last=train,
    )

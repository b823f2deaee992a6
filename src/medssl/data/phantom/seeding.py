"""Seeded draws that do not depend on how many cases are made.

Every random draw comes from a generator seeded by ``(seed, kind code, ...)``, so the same seed
gives byte-identical data and a smaller dataset is a prefix of a larger one. The kind codes
are part of that contract: changing one changes every dataset of that kind.
"""

from __future__ import annotations

import numpy as np

KIND_CODE = {"seg3d": 1, "cls3d": 2, "landmark2d": 3}


def case_rng(seed: int, kind: str, index: int) -> np.random.Generator:
    """The generator for one case, independent of how many cases are made."""
    return np.random.default_rng([seed, KIND_CODE[kind], index])


def dataset_rng(seed: int, kind: str) -> np.random.Generator:
    """The generator for dataset-level draws (the cls3d split), apart from all cases."""
    return np.random.default_rng([seed, 100 + KIND_CODE[kind]])


def balanced_labels(n: int, seed: int, kind: str) -> np.ndarray:
    """0/1 per case with one of each in every pair (2k, 2k+1), in random order.

    Balanced by construction (to within one for odd ``n``), and a case's class does not
    depend on ``n``, so a smaller dataset stays a prefix of a larger one.
    """
    code = 200 + KIND_CODE[kind]
    firsts = [int(np.random.default_rng([seed, code, k]).integers(2)) for k in range((n + 1) // 2)]
    return np.array([(f + j) % 2 for f in firsts for j in (0, 1)][:n], dtype=np.int64)


def stratified_split(
    labels: np.ndarray, rng: np.random.Generator, val_fraction: float = 0.2
) -> list[str]:
    """``"train"``/``"val"`` per case, ``val_fraction`` of each class in val (>= 1 if >= 2)."""
    split = np.array(["train"] * len(labels), dtype=object)
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_val = max(1, round(val_fraction * len(members))) if len(members) >= 2 else 0
        split[members[:n_val]] = "val"
    return split.tolist()

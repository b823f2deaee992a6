"""Deterministic train / validation / labelled-subset selection, written to ``RUN/split.json``.

The validation part comes from the dataset's own split when it has one (``meta["split"] ==
"val"``, e.g. ACDC's ``splits.json``), else a seeded fraction of the labelled cases (or the last
ones in list order, so that "the first N" labelled sets of a protocol stay inside its training
part). ``--labeled N`` then picks N of the remaining labelled training cases (seeded, or the
first N in the dataset's order, as UA-MT does); every other training case joins the unlabelled
pool.

Self-supervised pretraining has no labelled part: :func:`make_pretrain_split` splits every case,
labelled or not, into a training part and a validation part that monitors the pretext loss.
It writes the same ``split.json`` shape, so that every reader of it keeps working::

    {"labeled": [], "unlabeled": [<training ids>], "val": [<validation ids>], "seed": 0,
     "order": "seeded", "kind": "pretrain", "counts": {"labeled": 0, "unlabeled": N, "val": V}}
"""

from __future__ import annotations

import random
from typing import Any

from medssl.data.dataset import Dataset
from medssl.errors import ConfigError


def _count(value: int | float, total: int, what: str) -> int:
    """A count, or a fraction in (0, 1) of ``total`` (at least one case)."""
    if isinstance(value, float) and not value.is_integer():
        if not 0.0 < value < 1.0:
            raise ConfigError(f"{what} {value}: a fraction must lie in (0, 1); or give a count")
        return max(1, round(value * total))
    if value < 0:
        raise ConfigError(f"{what} {value}: must not be negative")
    return int(value)


def make_split(
    dataset: Dataset,
    labeled: int | float | None = None,
    seed: int = 0,
    val_cases: int | float = 0.2,
    order: str = "seeded",
    labeled_ids: list[str] | None = None,
    val_order: str = "seeded",
) -> dict[str, Any]:
    """Return ``{"labeled", "unlabeled", "val", "seed", ...}`` lists of case ids."""
    labelled = [c.id for c in dataset.labeled]
    unlabelled = [c.id for c in dataset.unlabeled if c.meta.get("split") != "test"]
    if not labelled:
        raise ConfigError(
            f"{dataset.root}: no labelled cases found; add label files to train on (an "
            "image-only set can pretrain, or be the unlabelled pool of another set)"
        )
    val = [c.id for c in dataset.labeled if c.meta.get("split") == "val"]
    train = [i for i in labelled if i not in set(val)]
    if not val and val_cases:
        n_val = _count(val_cases, len(labelled), "val_cases")
        if n_val >= len(labelled):
            raise ConfigError(f"val_cases={val_cases} leaves no training case of {len(labelled)}")
        if val_order == "last":  # keeps "the first N" labelled sets nested and val fixed
            val = labelled[-n_val:]
        else:
            shuffled = random.Random(seed).sample(labelled, len(labelled))
            val = sorted(shuffled[:n_val], key=labelled.index)
        train = [i for i in labelled if i not in set(val)]

    if labeled_ids is not None:
        missing = [i for i in labeled_ids if i not in train]
        if missing:
            raise ConfigError(f"labeled_ids {missing[:3]} are not labelled training cases")
        chosen = list(labeled_ids)
    elif labeled is None:
        chosen = list(train)
    else:
        n = _count(labeled, len(train), "--labeled")
        if n == 0:
            raise ConfigError(
                f"--labeled {labeled}: training needs at least one labelled case; give a count "
                f">= 1 (of {len(train)}) or a fraction in (0, 1)"
            )
        if n > len(train):
            raise ConfigError(f"--labeled {labeled}: only {len(train)} labelled training cases")
        if order == "first":
            chosen = train[:n]
        else:
            chosen = sorted(random.Random(seed + 1).sample(train, n), key=train.index)
    pool = [i for i in train if i not in set(chosen)] + unlabelled
    return {
        "labeled": chosen,
        "unlabeled": pool,
        "val": val,
        "seed": seed,
        "order": "explicit" if labeled_ids is not None else order,
        "counts": {"labeled": len(chosen), "unlabeled": len(pool), "val": len(val)},
    }


def make_pretrain_split(
    dataset: Dataset,
    seed: int = 0,
    val_cases: int | float = 0.1,
    *,
    include_test: bool = False,
) -> dict[str, Any]:
    """Train / validation case ids for pretraining, in ``split.json``'s shape (module docstring).

    Every case counts, labelled or not (labels are ignored); test cases (``meta["split"] ==
    "test"``, e.g. nnU-Net's ``imagesTs/``) are left out unless ``include_test``, so that a
    model later fine-tuned and tested on them has not seen them. ``val_cases`` is a count or a
    fraction in (0, 1) (at least one case); 0 gives no validation part. The validation cases
    are a seeded sample, listed in dataset order like the training ones: the same dataset and
    seed always give the same split. Raises a one-line :class:`ConfigError` when there is no
    case, or too few for the validation part asked for.
    """
    ids = [c.id for c in dataset.cases if include_test or c.meta.get("split") != "test"]
    if not ids:
        only_test = bool(dataset.cases)
        raise ConfigError(
            f"{dataset.root}: no case to pretrain on"
            + ("; every case is a test case (include_test=True uses them)" if only_test else "")
        )
    n_val = _count(val_cases, len(ids), "val_cases") if val_cases else 0
    if n_val >= len(ids):
        raise ConfigError(
            f"{dataset.root}: val_cases={val_cases} leaves no training case of {len(ids)}; "
            + (f"give at most {len(ids) - 1}" if len(ids) > 1 else "add cases")
            + ", or 0 for no validation"
        )
    position = {case_id: k for k, case_id in enumerate(ids)}
    val = sorted(random.Random(seed).sample(ids, n_val), key=position.__getitem__)
    held = set(val)
    train = [i for i in ids if i not in held]
    return {
        "labeled": [],
        "unlabeled": train,
        "val": val,
        "seed": seed,
        "order": "seeded",
        "kind": "pretrain",
        "counts": {"labeled": 0, "unlabeled": len(train), "val": len(val)},
    }

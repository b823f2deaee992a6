"""``--resume``: continue a run only with what it was trained on, and say in one line what differs.

Everything is checked before anything is written: a resume on other data, with another method or
other networks used to crash deep inside ``load_state_dict`` after it had already rewritten the
run's ``config.yaml`` and ``split.json``. A resume may lengthen the schedule or change how it runs
(devices, precision, logging); anything that changes what is trained is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from medssl.data.dataset import Dataset
from medssl.engine.checkpoint import load_checkpoint
from medssl.engine.config import deep_update
from medssl.engine.run import CKPT_DIR, read_run
from medssl.engine.task import get_task
from medssl.errors import CheckpointError, ConfigError, file_error

# Keys a resume may change: how long and how the run goes on, not what it trains.
RESUMABLE = frozenset(
    {
        "train.max_steps",
        "train.devices",
        "train.nodes",
        "train.logger",
        "train.precision",
        "train.accelerator",
        "train.log_every",
        "data.sw_overlap",
        "data.sw_batch_size",
        "data.num_workers",
        "data_dir",  # a moved dataset (the old folder is gone); its cases must match the split
    }
)
# What the checkpoint's networks were built for; a difference is refused by name.
INFO_KEYS = ("num_classes", "class_names", "in_channels", "spatial_dims", "data_dims")
START_NEW = "start a new run with another --out to change it"


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"max_steps": 5}}`` -> ``{"train.max_steps": 5}``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def resumed_values(
    run_dir: Path, file_values: dict[str, Any], flag_values: dict[str, Any]
) -> dict[str, Any]:
    """The saved config with ``--config`` and the flags merged over it; refuses any change a
    checkpoint cannot continue from."""
    saved, _ = read_run(run_dir)
    check_same_data(run_dir, saved.get("data_dir"), flag_values.get("data_dir"))
    if isinstance(saved.get("task"), str):  # keys of older versions where they live now
        task = get_task(saved["task"])
        saved, file_values = task.upgrade_config(saved), task.upgrade_config(file_values)
    merged = deep_update(deep_update(saved, file_values), flag_values)
    before, after = flatten(saved), flatten(merged)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    refused = [k for k in changed if k not in RESUMABLE]
    if refused:
        key = refused[0]
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise file_error(
            run_dir,
            f"--resume would change {key} from {before.get(key)!r} to {after.get(key)!r}{more}",
            f"resume with the run's own settings, or {START_NEW}",
            ConfigError,
        )
    return merged


def check_same_data(run_dir: Path, saved: str | None, given: str | None) -> None:
    """The run's own dataset, or the same one moved: another folder that exists beside the
    original is other data, however alike its case names."""
    if not saved or not given:
        return
    old, new = Path(saved).expanduser(), Path(given).expanduser()
    if old.exists() and old.resolve() != new.resolve():
        raise file_error(
            run_dir,
            f"was trained on {saved}, not {given}",
            f"resume with --data {saved}, or {START_NEW}",
            ConfigError,
        )


def saved_split(run_dir: Path, dataset: Dataset) -> dict[str, Any]:
    """The run's own ``split.json``; every case it names must be in ``dataset``."""
    config, split = read_run(run_dir)
    if not split:
        raise file_error(run_dir, "has no split.json", START_NEW, CheckpointError)
    known = {case.id for case in dataset.cases}
    named = [i for part in ("labeled", "unlabeled", "val") for i in split.get(part, [])]
    missing = [i for i in named if i not in known]
    if missing:
        raise file_error(
            run_dir,
            f"was trained on {config.get('data_dir')}; {dataset.root} lacks {len(missing)} of "
            f"its cases ({', '.join(missing[:3])})",
            f"resume with --data {config.get('data_dir')}, or {START_NEW}",
            ConfigError,
        )
    return split


def check_checkpoint_fits(
    run_dir: Path, info: dict[str, Any], state_dict: dict[str, torch.Tensor]
) -> None:
    """The last checkpoint was made by networks of these shapes, for data like this."""
    last = run_dir / CKPT_DIR / "last.ckpt"
    saved = load_checkpoint(last)
    saved_info = (saved.get("hyper_parameters") or {}).get("dataset_info") or {}
    for key in INFO_KEYS:
        if key in saved_info and saved_info[key] != info.get(key):
            raise file_error(
                run_dir,
                f"was trained for {key} = {saved_info[key]!r}; this data gives {info.get(key)!r}",
                f"resume with the run's own --data, or {START_NEW}",
                ConfigError,
            )
    weights = saved.get("state_dict") or {}
    differ = [
        k
        for k in sorted(set(weights) | set(state_dict))
        if k not in weights or k not in state_dict or weights[k].shape != state_dict[k].shape
    ]
    if differ:
        raise file_error(
            last,
            f"its networks differ from this run's ({len(differ)} tensors, e.g. {differ[0]})",
            f"resume with the run's own settings, or {START_NEW}",
            CheckpointError,
        )

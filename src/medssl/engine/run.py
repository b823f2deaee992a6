"""The run directory: ``config.yaml``, ``split.json``, ``checkpoints/``, ``metrics.csv``.

It is never overwritten without ``force``; ``--resume`` reuses it. Under DDP the launcher re-runs
the command in each worker process: only rank 0 creates or clears the folder.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from medssl.data.splits import write_json_atomic
from medssl.errors import CheckpointError, ConfigError, file_error

CONFIG, SPLIT, CKPT_DIR = "config.yaml", "split.json", "checkpoints"


def is_worker_process() -> bool:
    """True in a DDP worker that Lightning's launcher started (rank > 0)."""
    return int(os.environ.get("LOCAL_RANK", "0")) > 0 or int(os.environ.get("NODE_RANK", "0")) > 0


def prepare_run_dir(out: str | Path, force: bool, resume: bool) -> Path:
    out = Path(out)
    if is_worker_process():
        return out
    if resume:
        if not (out / CKPT_DIR / "last.ckpt").is_file():
            raise file_error(
                out,
                "nothing to resume (no checkpoints/last.ckpt)",
                "drop --resume to start a new run",
                CheckpointError,
            )
        return out
    if out.exists() and any(out.iterdir()):
        if not force:
            raise file_error(
                out,
                "run directory exists",
                "choose a new --out, add --resume to continue, or --force to overwrite",
                ConfigError,
            )
        shutil.rmtree(out)
    (out / CKPT_DIR).mkdir(parents=True, exist_ok=True)
    return out


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    tmp = run_dir / f".{CONFIG}.tmp"
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    os.replace(tmp, run_dir / CONFIG)


def write_split(run_dir: Path, split: dict[str, Any]) -> None:
    write_json_atomic(run_dir / SPLIT, split)


def read_run(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, split) of an existing run, with a one-line error if it is not one."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise file_error(
            run_dir,
            "not a medssl run directory (no config.yaml)",
            "pass the folder given to medssl train --out",
            CheckpointError,
        )
    config = yaml.safe_load((run_dir / CONFIG).read_text())
    split_path = run_dir / SPLIT
    split = json.loads(split_path.read_text()) if split_path.is_file() else {}
    return config, split


def best_checkpoint(run_dir: Path) -> Path:
    for name in ("best.ckpt", "last.ckpt"):
        path = run_dir / CKPT_DIR / name
        if path.is_file():
            return path
    raise file_error(
        run_dir,
        "run has no checkpoint yet",
        "train it (or --resume) before evaluating",
        CheckpointError,
    )


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer deletes an existing metrics.csv; a resumed run must append to it."""

    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        if os.path.isfile(self.metrics_file_path):  # resumed: keep the columns already written
            with open(self.metrics_file_path, newline="") as fh:
                self.metrics_keys = next(csv.reader(fh), [])

    def _check_log_dir_exists(self) -> None:  # noqa: D401 - Lightning hook
        return None


class RunLogger(CSVLogger):
    """CSV logger writing ``RUN/metrics.csv`` directly (no ``version_N`` sub-folders)."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(save_dir=str(run_dir), name="", version="")

    @property
    def log_dir(self) -> str:
        return self.root_dir

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.root_dir)
        return self._experiment

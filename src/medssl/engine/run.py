"""The run directory: ``config.yaml``, ``split.json``, ``checkpoints/``, ``metrics.csv``.

It is never overwritten without ``force``, and ``force`` replaces only a folder that is a medssl
run (recognised by what a run writes), never the dataset or a folder of other files; the old run
is kept until the new one has its first checkpoint. ``--resume`` reuses it. Under DDP the
launcher re-runs the command in each worker process: only rank 0 creates or clears the folder.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from medssl.atomic import check_outside, output_error, write_json_atomic, write_text_atomic
from medssl.errors import CheckpointError, ConfigError, file_error

CONFIG, SPLIT, CKPT_DIR = "config.yaml", "split.json", "checkpoints"
METRICS, ERROR_LOG = "metrics.csv", "error.log"


def is_worker_process() -> bool:
    """True in any process but the global rank 0 of a DDP run: a worker Lightning's launcher
    started, another node's process (``NODE_RANK``), or a torchrun / SLURM rank > 0."""
    ranks = ("LOCAL_RANK", "NODE_RANK", "RANK", "GROUP_RANK")
    return any(int(os.environ.get(name, "0") or 0) > 0 for name in ranks)


# What a run (and ``evaluate`` / ``report`` on it) writes at its top level; a folder holding
# anything else is not one, and ``--force`` never deletes it.
RUN_ENTRIES = frozenset(
    {
        CONFIG,
        SPLIT,
        "plan.json",
        "pretext_summary.npz",
        "encoder.safetensors",
        "encoder.json",
        CKPT_DIR,
        METRICS,
        "hparams.yaml",
        "evaluation.json",
        "comparison.json",
        "report.html",
        "plots",
        "overlays",
        ERROR_LOG,
        "tensorboard",
        "mlruns",
    }
)


def foreign_entries(folder: Path) -> list[str]:
    """Top-level names in ``folder`` that no medssl run writes (its own hidden temp files and
    report staging folders excepted)."""
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name not in RUN_ENTRIES and not _is_own_temporary(p.name)
    )


def _is_own_temporary(name: str) -> bool:
    return name.startswith(".") and (".tmp" in name or name.startswith(".report-"))


def is_run_dir(folder: Path) -> bool:
    """A folder medssl train wrote: a ``config.yaml`` naming a task and a method, and nothing
    a run does not write."""
    try:
        config = yaml.safe_load((folder / CONFIG).read_text())
        return (
            isinstance(config, dict)
            and {"task", "method"} <= set(config)
            and not foreign_entries(folder)
        )
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False


def replaced_name(out: Path) -> Path:
    """Where ``--force`` keeps the old run until the new one has its first checkpoint."""
    return out.with_name(f".{out.name}.replaced")


def data_dir_of(data: str | Path | Sequence[str | Path]) -> str:
    """The run's ``data_dir``: one folder, or several (pretraining pools them) joined by
    ``os.pathsep``; :func:`data_roots` splits it again."""
    roots = [data] if isinstance(data, str | Path) else list(data)
    return os.pathsep.join(str(r) for r in roots)


def data_roots(data_dir: str | Path | None) -> list[str]:
    """The folders of a run's ``data_dir`` (:func:`data_dir_of`)."""
    return [r for r in str(data_dir or "").split(os.pathsep) if r]


def check_not_data(out: Path, data_dir: str | Path | None) -> None:
    """Refuse a run folder that is, holds or lies inside the dataset (any of them)."""
    for folder in data_roots(data_dir):
        check_outside(out, folder, "--data", "--out")


def check_resumable(out: Path) -> None:
    """A run to resume has its ``last.ckpt``; if not, say so, and where an old run waits."""
    if (out / CKPT_DIR / "last.ckpt").is_file():
        return
    kept = replaced_name(out)
    hint = f"; the run it replaced is kept in {kept}" if kept.exists() else ""
    raise file_error(
        out,
        f"nothing to resume (no checkpoints/last.ckpt){hint}",
        "drop --resume to start a new run",
        CheckpointError,
    )


def prepare_run_dir(
    out: str | Path, force: bool, resume: bool, data_dir: str | Path | None = None
) -> tuple[Path, Path | None]:
    """Create (or, for ``resume``, check) the run folder; returns it and, after ``force``, where
    the old run was moved until the new one can replace it (see :class:`ReplacedRun`)."""
    out = Path(out)
    check_not_data(out, data_dir)
    if is_worker_process():
        return out, None
    if resume:
        check_resumable(out)
        return out, None
    if out.exists() and not out.is_dir():
        raise file_error(out, "is a file, not a folder", "choose another --out", ConfigError)
    backup = None
    try:
        if out.exists() and any(out.iterdir()):
            if not force:
                raise file_error(
                    out,
                    "run directory exists",
                    "choose a new --out, add --resume to continue, or --force to replace the run",
                    ConfigError,
                )
            backup = _move_old_run_aside(out)
        (out / CKPT_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a read-only or full disk: one line, and the old run stays
        restore_replaced(out, backup)
        raise output_error(out, err) from None
    return out, backup


def _move_old_run_aside(out: Path) -> Path:
    """``--force``: rename the old run to a hidden sibling; it is deleted once the new run has
    a checkpoint, and put back if the new one fails before that."""
    if not is_run_dir(out):
        foreign = foreign_entries(out)
        what = f"holds {', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}"
        raise file_error(
            out,
            f"not a medssl run directory ({what if foreign else 'no config.yaml'}); "
            "--force only replaces a run medssl wrote",
            "choose another --out, or move those files yourself",
            ConfigError,
        )
    backup = replaced_name(out)
    if backup.exists():  # an earlier --force was killed before its first checkpoint
        if (out / CKPT_DIR / "last.ckpt").exists() or not is_run_dir(backup):
            remove_run(backup)  # the newer run got its checkpoint: the old one was to go
        else:
            remove_run(out)  # the unfinished newer run; the original is still the backup
            out.mkdir()
            return backup
    os.replace(out, backup)
    out.mkdir()
    return backup


def remove_run(folder: Path) -> None:
    """Delete a folder only if it holds nothing but what a run writes; anything else is kept."""
    if folder.is_dir() and not foreign_entries(folder):
        shutil.rmtree(folder, ignore_errors=True)


def restore_replaced(out: Path, backup: Path | None) -> None:
    """Undo ``--force`` after a failure before the new run's first checkpoint."""
    if backup is None or not backup.exists():
        return
    remove_run(out)
    if not out.exists():
        os.replace(backup, out)


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    write_text_atomic(run_dir / CONFIG, yaml.safe_dump(config, sort_keys=False))


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


class ReplacedRun(Callback):
    """Deletes the run that ``--force`` moved aside as soon as the new run has a checkpoint."""

    def __init__(self, backup: Path | None, last: Path) -> None:
        self.backup, self.last = backup, last

    def drop_when_replaced(self) -> None:
        if self.backup is not None and self.last.exists():
            remove_run(self.backup)
            self.backup = None

    def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
        self.drop_when_replaced()

    def on_validation_end(self, *args: Any, **kwargs: Any) -> None:
        self.drop_when_replaced()


def drop_rows_after(metrics_csv: Path, step: int) -> None:
    """A resumed run repeats the steps after its last checkpoint: drop their old rows first."""
    if not metrics_csv.is_file():
        return
    with open(metrics_csv, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or "step" not in rows[0]:
        return
    column = rows[0].index("step")
    kept = [rows[0]] + [r for r in rows[1:] if not _at_or_after(r, column, step)]
    if len(kept) == len(rows):
        return
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(kept)
    write_text_atomic(metrics_csv, buffer.getvalue())


def _at_or_after(row: list[str], column: int, step: int) -> bool:
    try:
        return int(float(row[column])) >= step
    except (IndexError, ValueError):
        return False


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

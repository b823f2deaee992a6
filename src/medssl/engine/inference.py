"""``evaluate`` and ``predict`` of any trained run: load it, then ask its task.

The model is rebuilt from the run's best checkpoint (``weights_only=True``); what is computed and
written is the task's (``Task.evaluate`` / ``Task.predict``). What every task's outputs share lives
here: ``evaluation.json`` beside the run, an ``--out`` file that may only replace an earlier
evaluation, and ``predict``'s all-or-nothing publication of its files.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medssl.atomic import output_error, write_json_atomic
from medssl.data.dataset import Dataset
from medssl.engine.allocator import keep_freed_memory
from medssl.engine.checkpoint import load_checkpoint
from medssl.engine.module import MethodModule, get_method
from medssl.engine.run import best_checkpoint, read_run
from medssl.engine.task import get_task
from medssl.errors import CheckpointError, ConfigError, OutputError, file_error


def load_model(run_dir: str | Path, task: str | None = None) -> MethodModule:
    """Rebuild the method of a run from its best checkpoint (``weights_only=True``)."""
    keep_freed_memory()  # sliding-window inference allocates as training does
    run_dir = Path(run_dir)
    read_run(run_dir)
    ckpt = best_checkpoint(run_dir)
    state = load_checkpoint(ckpt)
    hp = state.get("hyper_parameters") or {}
    if "run_config" not in hp or "dataset_info" not in hp:
        raise file_error(
            ckpt,
            "not a medssl checkpoint (no run config inside)",
            "pass a run made by medssl train",
            CheckpointError,
        )
    run_task = hp["run_config"]["task"]
    if task is not None and run_task != task:
        raise file_error(
            ckpt,
            f"checkpoint is for task {run_task!r}, not {task!r}",
            "pass a run of the right task",
            CheckpointError,
        )
    cls = get_method(run_task, hp["run_config"]["method"])
    module = cls(hp["run_config"], hp["dataset_info"])
    module.load_state_dict(state["state_dict"])
    module.eval()
    return module


def evaluate(
    run_dir: str | Path, dataset: Dataset, out: str | Path | None = None, **options: Any
) -> dict[str, Any]:
    """Metrics of a run over every labelled case of ``dataset`` (whatever split it was in),
    written to ``RUN/evaluation.json`` and ``out``; ``options`` are the task's (segmentation:
    ``units``, ``largest_component``, ``overlays``)."""
    run_dir = Path(run_dir)
    check_evaluation_target(out)
    module = load_model(run_dir)
    result = get_task(module.run_config.task).evaluate(run_dir, module, dataset, **options)
    write_json_atomic(run_dir / "evaluation.json", result)
    if out is not None:
        write_json_atomic(out, result)
    return result


def predict(
    run_dir: str | Path, inputs: list[str | Path], out_dir: str | Path, **options: Any
) -> list[Path]:
    """What the run's task writes for each input (segmentation: a NIfTI mask per volume)."""
    module = load_model(run_dir)
    task = get_task(module.run_config.task)
    return task.predict(module, [Path(p) for p in inputs], Path(out_dir), **options)


def check_evaluation_target(out: str | Path | None) -> None:
    """``evaluate --out FILE`` may replace an earlier evaluation, never another file."""
    if out is None or not Path(out).exists():
        return
    path = Path(out)
    try:
        earlier = json.loads(path.read_text()) if path.is_file() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        earlier = None
    if not (isinstance(earlier, dict) and {"task", "mean", "per_case"} <= set(earlier)):
        raise file_error(
            path,
            "exists and is not a medssl evaluation",
            "choose another --out file; medssl replaces only its own results",
            ConfigError,
        )


def make_staging_dir(out_dir: Path) -> Path:
    """A hidden folder inside ``out_dir`` (same file system, so the final moves are renames)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = out_dir / f".predict-{secrets.token_hex(4)}.tmp"
        staging.mkdir()
    except OSError as err:
        raise output_error(out_dir, err) from None
    return staging


def publish(staging: Path, targets: list[Path]) -> list[Path]:
    """Move the staged masks into place; if any move fails, the ones already moved go back."""
    moved: list[Path] = []
    try:
        for target in targets:
            if target.exists():  # appeared while predicting
                raise file_error(target, "appeared while predicting", "choose another --out")
            os.replace(staging / target.name, target)
            moved.append(target)
    except BaseException as err:
        for target in moved:
            target.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise output_error(targets[len(moved)], err) from None
        raise
    return moved


def write_outputs(
    inputs: list[Path],
    out_dir: Path,
    suffix: str,
    check: Callable[[Path], None],
    write: Callable[[Path, Path], None],
) -> list[Path]:
    """One ``OUT/<stem><suffix>`` per input, all or nothing.

    Every input is checked (``check``) and every output name decided before the first one is
    made; ``write(input, staged_file)`` writes into a hidden folder inside ``out_dir``, and the
    files move into place only when all of them were written and read back, so a failure (a
    corrupt input, a full disk) leaves none. Existing files are never replaced.
    """
    targets = output_names(inputs, out_dir, suffix)
    for path in targets:
        check(path)
    created = not out_dir.exists()
    staging = make_staging_dir(out_dir)
    try:
        for path, target in targets.items():
            try:
                write(path, staging / target.name)
            except OutputError as err:  # name the file the user asked for, not the staged one
                raise OutputError(
                    str(err).replace(str(staging / target.name), str(target))
                ) from None
        return publish(staging, list(targets.values()))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()  # a failed predict leaves not even the folder it made


def output_names(inputs: list[Path], out_dir: Path, suffix: str) -> dict[Path, Path]:
    """``{input: OUT/<stem><suffix>}``, refusing missing inputs, two inputs with one output name,
    an output that exists already, and an ``--out`` inside a DICOM series folder."""
    targets: dict[Path, Path] = {}
    by_target: dict[Path, Path] = {}
    for path in inputs:
        if not path.exists():
            raise file_error(path, "no such file or folder", "check the input path")
        if path.is_dir() and path.resolve() in (out_dir.resolve(), *out_dir.resolve().parents):
            raise file_error(
                out_dir, f"lies inside the input series {path}", "choose an --out outside it"
            )
        target = out_dir / f"{_stem(path)}{suffix}"
        if target in by_target:
            raise file_error(
                path,
                f"would be written to {target}, as {by_target[target]} would",
                "rename one of them or predict them into separate --out folders",
                ConfigError,
            )
        if target.exists():
            raise file_error(
                target,
                "exists",
                "choose another --out folder; predict never replaces existing files",
                ConfigError,
            )
        targets[path], by_target[target] = target, path
    return targets


def _stem(path: Path) -> str:
    name = path.name
    for ending in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".png", ".jpg", ".jpeg", ".dcm"):
        if name.lower().endswith(ending):
            return name[: -len(ending)]
    return name

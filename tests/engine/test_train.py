"""The engine's contract: the run directory, overwrite protection, resume after a kill, DDP."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from medssl import api
from medssl.errors import ConfigError, DataError
from tests.conftest import TINY_SEG_CONFIG, train_tiny

CLI = [sys.executable, "-m", "medssl.cli"]


def _steps(metrics_csv: Path) -> list[int]:
    with open(metrics_csv) as fh:
        return [int(r["step"]) for r in csv.DictReader(fh) if r.get("step")]


def _losses_per_step(metrics_csv: Path) -> list[int]:
    with open(metrics_csv) as fh:
        return [int(r["step"]) for r in csv.DictReader(fh) if r.get("train/loss")]


def test_run_directory_has_the_documented_files(tiny_run: Path):
    config = yaml.safe_load((tiny_run / "config.yaml").read_text())
    assert config["method"] == "supervised" and config["train"]["max_steps"] == 4
    assert config["data"]["patch_size"] == [32, 32, 32]
    split = (tiny_run / "split.json").read_text()
    assert '"labeled"' in split and '"unlabeled"' in split and '"val"' in split
    last = torch.load(tiny_run / "checkpoints" / "last.ckpt", weights_only=True)
    best = torch.load(tiny_run / "checkpoints" / "best.ckpt", weights_only=True)
    assert last["global_step"] == 4
    assert last["hyper_parameters"]["dataset_info"]["num_classes"] == 4
    rows = list(csv.DictReader(open(tiny_run / "metrics.csv")))
    val = {int(r["step"]) + 1: float(r["val/dice"]) for r in rows if r.get("val/dice")}
    assert sorted(val) == [2, 4]  # validated every 2 steps
    assert best["global_step"] == max(val, key=val.get)  # best.ckpt = best validation Dice
    assert "lr-SGD" in rows[0]  # the learning rate keeps its column name (the report plots it)
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert len(losses) == 4 and all(0 < v < 10 for v in losses)
    assert any(r.get("val/dice") for r in rows)


def test_split_is_deterministic_and_disjoint(tiny_run: Path, seg_phantom: Path, tmp_path: Path):
    import json

    split = json.loads((tiny_run / "split.json").read_text())
    assert len(split["labeled"]) == 2 and len(split["val"]) == 1
    assert not set(split["labeled"]) & set(split["val"])
    assert not set(split["unlabeled"]) & (set(split["labeled"]) | set(split["val"]))
    again = train_tiny(seg_phantom, out=tmp_path / "again", max_steps=1)
    assert json.loads((again / "split.json").read_text())["labeled"] == split["labeled"]


def test_existing_run_is_never_overwritten_without_force(tiny_run: Path, seg_phantom: Path):
    before = (tiny_run / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    with pytest.raises(ConfigError, match="exists"):
        train_tiny(seg_phantom, out=tiny_run, max_steps=1)
    assert (tiny_run / "checkpoints" / "last.ckpt").stat().st_mtime_ns == before


def test_force_replaces_a_run(seg_phantom: Path, tmp_path: Path):
    run = train_tiny(seg_phantom, out=tmp_path / "r", max_steps=1)
    run = train_tiny(seg_phantom, out=run, max_steps=2, force=True)
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2


def test_bad_data_fails_with_one_line_and_leaves_no_run(seg_phantom: Path, tmp_path: Path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(seg_phantom, broken)
    image = sorted((broken / "imagesTr").glob("*.nii.gz"))[0]
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    out = tmp_path / "run"
    with pytest.raises(DataError) as info:
        train_tiny(broken, out=out, max_steps=1)
    assert image.name in str(info.value) and "\n" not in str(info.value)
    assert not out.exists()


def test_bf16_precision_trains_on_cpu(seg_phantom: Path, tmp_path: Path):
    run = train_tiny(seg_phantom, out=tmp_path / "bf16", max_steps=2, precision="bf16-mixed")
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert all(
        torch.isfinite(torch.tensor(float(r["train/loss"]))) for r in rows if r.get("train/loss")
    )
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["precision"] == "bf16-mixed"


def _train_cmd(data: Path, out: Path, config: Path, steps: int, *extra: str) -> list[str]:
    return [
        *CLI, "train", "--data", str(data), "--out", str(out), "--labeled", "2",
        "--profile", "cpu", "--max-steps", str(steps), "--config", str(config), *extra,
    ]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_resume_after_a_killed_run(seg_phantom: Path, tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump({**TINY_SEG_CONFIG, "train": {**TINY_SEG_CONFIG["train"], "val_every": 3}})
    )
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        _train_cmd(seg_phantom, out, config, 400), env=_env(), stderr=subprocess.DEVNULL
    )
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while time.time() < deadline and not last.exists():
        time.sleep(0.5)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists(), "the run never wrote a checkpoint"
    killed_at = torch.load(last, weights_only=True)["global_step"]
    assert 0 < killed_at < 400
    steps_before = _steps(out / "metrics.csv")
    # --resume continues from last.ckpt (here with a shorter horizon so that the test is quick).
    target = killed_at + 4
    done = subprocess.run(
        _train_cmd(seg_phantom, out, config, target, "--resume"),
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert torch.load(last, weights_only=True)["global_step"] == target
    steps_after = _steps(out / "metrics.csv")
    assert killed_at >= max(steps_before) - 3  # last.ckpt follows every validation (3 steps)
    kept = [s for s in steps_before if s < killed_at]
    assert steps_after[: len(kept)] == kept  # rows up to the checkpoint kept
    assert max(steps_after) >= target - 1
    # the steps between the checkpoint and the kill were run again, and are logged once
    assert _losses_per_step(out / "metrics.csv") == sorted(
        set(_losses_per_step(out / "metrics.csv"))
    )


def test_resume_without_a_run_is_a_one_line_error(seg_phantom: Path, tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(TINY_SEG_CONFIG))
    cmd = _train_cmd(seg_phantom, tmp_path / "none", config, 2, "--resume")
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--resume" in done.stderr


def test_two_process_ddp_on_cpu(seg_phantom: Path, tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(TINY_SEG_CONFIG))
    out = tmp_path / "ddp"
    cmd = _train_cmd(seg_phantom, out, config, 3, "--devices", "2")
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 3
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["devices"] == 2


def test_same_seed_same_run(seg_phantom: Path, tmp_path: Path):
    """Initialisation, patch sampling and augmentation all follow --seed."""

    def losses(out: Path, seed: int) -> list[float]:
        train_tiny(seg_phantom, out=out, max_steps=3, seed=seed)
        rows = csv.DictReader(open(out / "metrics.csv"))
        return [float(r["train/loss"]) for r in rows if r.get("train/loss")]

    first, again, other = (
        losses(tmp_path / "a", 1),
        losses(tmp_path / "b", 1),
        losses(tmp_path / "c", 2),
    )
    assert first == again
    assert first != other


def test_resume_keeps_the_runs_method(tiny_run: Path, seg_phantom: Path):
    with pytest.raises(ConfigError, match="was trained with method 'supervised'"):
        api.train(seg_phantom, out=tiny_run, method="mean_teacher", resume=True)


def test_progress_lines_show_the_runs_monitor(capsys):
    """The plain progress line shows the task's (or method's) monitor, not a fixed val/dice."""
    from types import SimpleNamespace

    from medssl.engine.progress import LineProgress

    progress = LineProgress(every=1, monitor="val/auc")
    trainer = SimpleNamespace(
        global_step=2,
        max_steps=4,
        is_global_zero=True,
        callback_metrics={"loss": torch.tensor(0.5), "val/auc": torch.tensor(0.9)},
    )
    progress.on_train_start(trainer, None)
    progress.on_train_batch_end(trainer, None, None, None, 0)
    line = capsys.readouterr().err
    assert "val/auc 0.9000" in line and "loss 0.5000" in line and "dice" not in line

"""Ctrl-C and kill -9 at several points of a run: the folder is always either a run that
``--resume`` continues, or nothing, or one that ``--force`` replaces; never a trap."""

from __future__ import annotations

import csv
import signal
from pathlib import Path

import torch

from tests.conftest import train_tiny
from tests.faults.conftest import (
    Background,
    call_cli,
    last_line,
    one_line,
    progress_step,
    replaced_name,
    snapshot,
    train_args,
    write_config,
)


def _step(run: Path) -> int:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]


def _loss_steps(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="") as fh:
        return [int(float(r["step"])) for r in csv.DictReader(fh) if r.get("train/loss")]


def test_ctrl_c_after_a_checkpoint_then_resume(seg_phantom: Path, tmp_path: Path):
    run = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", train={"val_every": 6})
    job = Background(train_args(seg_phantom, run, config, 400), tmp_path)
    last = run / "checkpoints" / "last.ckpt"
    try:
        job.wait_until(last.exists, "the first checkpoint")
        first = _step(run)
        # a step or two past the checkpoint, so that metrics.csv holds rows the resume repeats
        job.wait_until(lambda: progress_step(job.stderr) >= first + 2, "steps past it")
        code = job.signal(signal.SIGINT)
    finally:
        job.stop()
    assert code == 130, job.stderr[-3000:]
    assert "Traceback" not in job.stderr
    line = last_line(job.stderr)
    assert "interrupted" in line and "--resume" in line, job.stderr[-3000:]
    assert len([m for m in job.stderr.splitlines() if "--resume" in m]) == 1
    kept = _step(run)
    assert kept >= first
    assert max(_loss_steps(run)) >= kept  # rows logged after the checkpoint, to be dropped

    target = kept + 2
    code, _, err = call_cli(
        ["train", "--resume", "--out", run, "--data", seg_phantom, "--max-steps", target]
    )
    assert code == 0, err[-3000:]
    assert _step(run) == target
    losses = _loss_steps(run)
    assert sorted(losses) == sorted(set(losses)), "a step's train/loss logged twice"
    assert sorted(losses) == list(range(target))


def test_ctrl_c_before_the_first_checkpoint_leaves_nothing(seg_phantom: Path, tmp_path: Path):
    run = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", train={"val_every": 1000})
    job = Background(train_args(seg_phantom, run, config, 400), tmp_path)
    try:
        job.wait_until((run / "config.yaml").exists, "config.yaml")
        code = job.signal(signal.SIGINT)
    finally:
        job.stop()
    assert code == 130, job.stderr[-3000:]
    assert "Traceback" not in job.stderr
    line = last_line(job.stderr)
    assert "interrupted" in line and "nothing was kept" in line, job.stderr[-3000:]
    assert not run.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bg.stderr", "c.yaml", "tmpdir"]


def test_kill_right_after_config_then_resume_and_force(seg_phantom: Path, tmp_path: Path):
    run = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", train={"val_every": 1000})
    job = Background(train_args(seg_phantom, run, config, 400), tmp_path)
    try:
        job.wait_until((run / "config.yaml").exists, "config.yaml")
        job.signal(signal.SIGKILL)
    finally:
        job.stop()
    assert not (run / "checkpoints" / "last.ckpt").exists()
    before = snapshot(run)

    code, _, err = call_cli(["train", "--resume", "--out", run, "--data", seg_phantom])
    assert code == 2, err[-3000:]
    assert snapshot(run) == before

    train_tiny(seg_phantom, out=run, max_steps=2, force=True)
    assert _step(run) == 2
    assert not replaced_name(run).exists()

    # (checked last, so that the steps above run whatever the wording)
    line = one_line(err)
    assert "nothing to resume" in line, line

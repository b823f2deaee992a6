"""Segmentation as a task plugin: registered, found by the engine, behaviour as before the move."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import torch

from medssl.engine.task import TASKS, Monitor, get_task, task_names
from medssl.errors import ConfigError
from tests.conftest import TINY_SEG_CONFIG, train_tiny

SRC = Path(__file__).resolve().parents[3] / "src" / "medssl"

# The first four training losses of seeded runs on the seg_phantom fixture, measured on the engine
# before segmentation moved into medssl/tasks (commit 12a6a7c): the move changed no number.
LOSSES_BEFORE_THE_MOVE = {
    "supervised": [1.1463384628295898, 1.1316897869110107, 1.1296439170837402, 1.1189148426055908],
    "mean_teacher": [1.1463394165039062, 1.131697416305542, 1.1296892166137695, 1.119006872177124],
}


def _losses(run: Path) -> list[float]:
    with open(run / "metrics.csv") as fh:
        return [float(r["train/loss"]) for r in csv.DictReader(fh) if r.get("train/loss")]


@pytest.mark.parametrize("method", sorted(LOSSES_BEFORE_THE_MOVE))
def test_seeded_losses_are_those_of_the_engine_before_the_move(seg_phantom, tmp_path, method):
    # the engine before the move had no planned defaults: the profile's fixed ones
    config = {**TINY_SEG_CONFIG, "plan": False}
    run = train_tiny(
        seg_phantom, method=method, out=tmp_path / method, max_steps=4, seed=0, config=config
    )
    assert _losses(run) == pytest.approx(LOSSES_BEFORE_THE_MOVE[method], rel=1e-6, abs=0)


def test_segmentation_is_registered_with_its_monitor():
    assert "segmentation" in task_names()
    task = get_task("segmentation")
    assert task.monitor == Monitor("val/dice", "max")
    assert task.bench_metrics[:2] == ("dice", "jaccard")


def test_best_checkpoint_follows_the_monitor_direction(tiny_run):
    """best.ckpt holds the step of the highest val/dice (mode max), whatever came later."""
    with open(tiny_run / "metrics.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("val/dice")]
    best_step = max(rows, key=lambda r: float(r["val/dice"]))["step"]
    best = torch.load(tiny_run / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["global_step"] == int(best_step) + 1


def test_an_unknown_task_is_one_line_naming_the_registered_ones(seg_phantom, tmp_path):
    from medssl import api

    with pytest.raises(ConfigError, match=r"unknown task 'segmentaton'; did you mean"):
        api.train(seg_phantom, task="segmentaton", out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_the_engine_names_no_task():
    """The engine finds tasks through their registry: no task's name appears in its code."""
    named = {}
    for path in sorted((SRC / "engine").glob("*.py")):
        text = path.read_text()
        for name in TASKS.names():
            if re.search(rf"[\"']{re.escape(name)}[\"']", text):
                named.setdefault(path.name, []).append(name)
    assert named == {}

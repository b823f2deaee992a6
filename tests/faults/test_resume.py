"""``--resume`` checks everything before it writes: other data or other networks are refused in
one line and leave the run as it was; a longer schedule is honoured."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from medssl import api
from tests.conftest import train_tiny
from tests.faults.conftest import call_cli, copy_run, one_line, snapshot


@pytest.fixture(scope="module")
def resumable(seg_phantom: Path, tmp_path_factory) -> Path:
    """A 2-step run with last.ckpt at step 2; tests resume private copies of it."""
    return train_tiny(seg_phantom, out=tmp_path_factory.mktemp("resume") / "run", max_steps=2)


def _step(run: Path) -> int:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]


def test_resume_on_other_data_is_refused_before_writing(
    resumable: Path, other_phantom: Path, tmp_path: Path
):
    run = copy_run(resumable, tmp_path / "run")
    config, split = (run / "config.yaml").read_bytes(), (run / "split.json").read_bytes()
    before = snapshot(run)
    code, _, err = call_cli(["train", "--resume", "--out", run, "--data", other_phantom])
    assert code == 2, err[-3000:]
    line = one_line(err)
    assert str(other_phantom) in line
    assert (run / "config.yaml").read_bytes() == config
    assert (run / "split.json").read_bytes() == split
    assert snapshot(run) == before


def test_resume_with_other_networks_is_refused_by_name(
    resumable: Path, seg_phantom: Path, tmp_path: Path
):
    run = copy_run(resumable, tmp_path / "run")
    before = snapshot(run)
    changed = tmp_path / "f.yaml"
    changed.write_text(yaml.safe_dump({"net": {"channels": [4, 8, 16]}}))
    args = ["train", "--resume", "--out", run, "--data", seg_phantom, "--config", changed]
    code, _, err = call_cli(args)
    assert code == 2, err[-3000:]
    line = one_line(err)
    assert "net.channels" in line
    assert snapshot(run) == before


def test_resume_honours_a_longer_schedule(resumable: Path, seg_phantom: Path, tmp_path: Path):
    run = copy_run(resumable, tmp_path / "run")
    split = (run / "split.json").read_bytes()
    longer = tmp_path / "f.yaml"
    longer.write_text(yaml.safe_dump({"train": {"max_steps": 4}}))
    assert _step(run) == 2
    api.train(seg_phantom, out=run, resume=True, config=longer)
    assert _step(run) == 4
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["max_steps"] == 4
    assert (run / "split.json").read_bytes() == split

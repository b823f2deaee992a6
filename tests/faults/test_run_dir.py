"""``--force`` replaces only what medssl wrote, never the dataset, and never before the new run
can take the old one's place; ``demo --force`` and ``data corrupt`` keep to the same rule."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
import torch

from medssl.errors import ConfigError
from tests.conftest import train_tiny
from tests.faults.conftest import (
    Background,
    call_cli,
    file_changed,
    last_line,
    one_line,
    replaced_name,
    run_cli,
    snapshot,
    train_args,
    write_config,
)

THESIS = "Chapter 1. Four years of work, and no other copy.\n"


def _step(run: Path) -> int:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]


def test_force_refuses_a_folder_that_is_not_a_run(seg_phantom: Path, tmp_path: Path):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "thesis.txt").write_text(THESIS)
    config = write_config(tmp_path / "c.yaml")
    code, _, err = run_cli(train_args(seg_phantom, out, config, 2, "--force"), tmp_path)
    assert code == 2, err[-3000:]
    line = one_line(err)
    assert "thesis.txt" in line and "--force" in line
    assert sorted(os.listdir(out)) == ["thesis.txt"]
    assert (out / "thesis.txt").read_text() == THESIS
    assert not replaced_name(out).exists()


def test_force_refuses_a_run_folder_holding_other_files(
    tiny_run: Path, seg_phantom: Path, tmp_path: Path
):
    out = shutil.copytree(tiny_run, tmp_path / "run")
    (out / "thesis.txt").write_text(THESIS)
    before = snapshot(out)
    with pytest.raises(ConfigError, match="thesis.txt"):
        train_tiny(seg_phantom, out=out, max_steps=1, force=True)
    assert snapshot(out) == before
    assert not replaced_name(out).exists()


@pytest.mark.parametrize("where", ["same", "inside", "contains", "symlink"])
def test_out_never_overlaps_the_data(seg_phantom: Path, tmp_path: Path, where: str):
    parent = tmp_path / "parent"
    data = Path(shutil.copytree(seg_phantom, parent / "data"))
    out = {
        "same": data,
        "inside": data / "run",
        "contains": parent,
        "symlink": tmp_path / "link",
    }[where]
    if where == "symlink":
        out.symlink_to(data, target_is_directory=True)
    before = snapshot(parent)
    config = write_config(tmp_path / "c.yaml")
    code, _, err = call_cli(train_args(data, out, config, 1, "--force"))
    assert code == 2, err[-3000:]
    line = one_line(err)
    assert "--data" in line
    assert snapshot(parent) == before
    assert not replaced_name(out).exists() and not replaced_name(data).exists()


def test_interrupted_force_brings_the_old_run_back(seg_phantom: Path, tmp_path: Path):
    run = train_tiny(seg_phantom, out=tmp_path / "run", max_steps=2)
    before = snapshot(run)
    config = write_config(tmp_path / "c.yaml", train={"val_every": 1000})
    job = Background(train_args(seg_phantom, run, config, 400, "--force"), tmp_path)
    try:
        job.wait_until(
            file_changed(run / "config.yaml", before["config.yaml"]), "the new config.yaml"
        )
        code = job.signal(signal.SIGINT)
    finally:
        job.stop()
    assert code == 130, job.stderr[-3000:]
    assert snapshot(run) == before  # run A again, byte for byte
    assert not replaced_name(run).exists()
    assert "Traceback" not in job.stderr
    line = last_line(job.stderr)
    assert "interrupted" in line and "nothing was kept" in line, job.stderr[-3000:]
    assert "--resume" not in line  # the new run has nothing to resume


def test_killed_force_keeps_the_old_run_aside_until_replaced(seg_phantom: Path, tmp_path: Path):
    run = train_tiny(seg_phantom, out=tmp_path / "run", max_steps=2)
    before = snapshot(run)
    config = write_config(tmp_path / "c.yaml", train={"val_every": 1000})
    job = Background(train_args(seg_phantom, run, config, 400, "--force"), tmp_path)
    try:
        job.wait_until(
            file_changed(run / "config.yaml", before["config.yaml"]), "the new config.yaml"
        )
        job.signal(signal.SIGKILL)
    finally:
        job.stop()
    kept = replaced_name(run)
    assert kept.is_dir(), sorted(os.listdir(tmp_path))
    assert snapshot(kept) == before  # the old run, whole, in the hidden sibling

    # --resume cannot continue the unfinished new run, and says where the old one is
    state = snapshot(tmp_path)
    code, _, err = call_cli(["train", "--resume", "--out", run, "--data", seg_phantom])
    assert code == 2, err[-3000:]
    assert snapshot(tmp_path) == state

    # a later --force replaces it, and the old run goes once the new one has its checkpoint
    train_tiny(seg_phantom, out=run, max_steps=2, force=True)
    assert _step(run) == 2
    assert not kept.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

    # (checked last, so that the steps above run whatever the wording)
    line = one_line(err)
    assert str(kept) in line, line


@pytest.fixture
def demo_must_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails the test if the demo goes on to make its phantom after a refused --force."""

    def no_demo(*args, **kwargs):
        raise AssertionError("the demo went on after --force into a foreign folder")

    monkeypatch.setattr("medssl.data.phantom.make_phantom", no_demo)


def test_demo_force_refuses_a_folder_that_is_not_a_demo(tmp_path: Path, demo_must_not_run):
    from medssl.demo import run_demo

    out = tmp_path / "work"
    out.mkdir()
    (out / "thesis.txt").write_text(THESIS)
    (out / "supervised").mkdir()  # a demo name, holding something a run never writes
    (out / "supervised" / "notes.txt").write_text("mine\n")
    before = snapshot(out)
    with pytest.raises(ConfigError, match="thesis.txt") as info:
        run_demo(out, force=True)
    assert "\n" not in str(info.value)
    assert snapshot(out) == before


def test_demo_force_refuses_a_demo_name_that_is_not_a_run(tmp_path: Path, demo_must_not_run):
    from medssl.demo import run_demo

    out = tmp_path / "work"
    (out / "supervised").mkdir(parents=True)
    (out / "supervised" / "thesis.txt").write_text(THESIS)
    before = snapshot(out)
    with pytest.raises(ConfigError, match="not a medssl demo folder"):
        run_demo(out, force=True)
    assert snapshot(out) == before


@pytest.mark.parametrize("inside", ["bad", "imagesTr/bad"])
def test_corrupt_refuses_an_out_inside_the_dataset(seg_phantom: Path, tmp_path: Path, inside):
    data = Path(shutil.copytree(seg_phantom, tmp_path / "data"))
    before = snapshot(data)
    code, _, err = call_cli(["data", "corrupt", data, data / inside])
    assert code == 2, err[-3000:]
    line = one_line(err)
    assert "inside" in line
    assert snapshot(data) == before

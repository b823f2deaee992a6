"""Several optimisers: manual optimisation, per-optimiser config, one global step per batch,
and a resume that continues every optimiser's state."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

from medssl import api
from medssl.engine.config import RunConfig
from medssl.engine.optim import optimizer_config
from tests.conftest import TINY_SEG_CONFIG
from tests.engine import two_optimisers

CONFIG = {
    **TINY_SEG_CONFIG,
    "optim": {"name": "sgd", "lr": 0.01},
    "optimizers": {"critic": {"name": "adam", "lr": 0.002, "betas": [0.5, 0.999]}},
}


def _adam_steps(optimizer_state: dict) -> set[int]:
    return {int(s["step"]) for s in optimizer_state["state"].values()}


def test_per_optimiser_config_merges_over_optim():
    cfg = RunConfig.model_validate({"task": "segmentation", **CONFIG})
    critic = optimizer_config(cfg, "critic")
    assert (critic.name, critic.lr, critic.betas) == ("adam", 0.002, (0.5, 0.999))
    assert optimizer_config(cfg, "segmenter") == cfg.optim


def test_two_optimisers_train_one_global_step_per_batch(seg_phantom: Path, tmp_path: Path):
    run = api.train(
        seg_phantom,
        method=two_optimisers.NAME,
        out=tmp_path / "run",
        labeled=2,
        profile="cpu",
        max_steps=4,
        config=CONFIG,
    )
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 4  # not 8: only the first optimiser's steps count
    segmenter, critic = last["optimizer_states"]
    assert "momentum_buffer" in next(iter(segmenter["state"].values()))  # SGD
    assert critic["param_groups"][0]["betas"] == (0.5, 0.999)  # Adam with its own betas
    assert _adam_steps(critic) == {4}  # stepped once per batch
    with open(run / "metrics.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("train/loss")]
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3] and all(r["train/critic"] for r in rows)
    with open(run / "metrics.csv") as fh:
        header = next(csv.reader(fh))
    assert {"lr-segmenter", "lr-critic"} <= set(header)  # one learning-rate column each


def test_resume_after_a_kill_continues_both_optimisers(seg_phantom: Path, tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "train": {**CONFIG["train"], "val_every": 3}}))
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-c",
        "import sys, tests.engine.two_optimisers; from medssl.cli import main; "
        "sys.argv[0] = 'medssl'; main()",
        "train",
        "--data",
        str(seg_phantom),
        "--out",
        str(out),
        "--method",
        two_optimisers.NAME,
        "--labeled",
        "2",
        "--profile",
        "cpu",
        "--config",
        str(config),
    ]
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([*cmd, "--max-steps", "400"], cwd=root, stderr=subprocess.DEVNULL)
    last = out / "checkpoints" / "last.ckpt"
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not last.exists():
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed = torch.load(last, weights_only=True)
    at = killed["global_step"]
    assert 0 < at < 400 and _adam_steps(killed["optimizer_states"][1]) == {at}
    done = subprocess.run(
        [*cmd, "--resume", "--max-steps", str(at + 3)], cwd=root, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    resumed = torch.load(last, weights_only=True)
    assert resumed["global_step"] == at + 3
    # Adam's step counts went on from the checkpoint: its moments were restored, not restarted
    assert _adam_steps(resumed["optimizer_states"][1]) == {at + 3}
    momentum = resumed["optimizer_states"][0]["state"]
    assert momentum and all("momentum_buffer" in s for s in momentum.values())

"""Beyond one machine: ``--nodes`` through torchrun, and metrics into TensorBoard / MLflow."""

from __future__ import annotations

import csv
import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from medssl import api
from medssl.errors import ConfigError
from tests.conftest import TINY_SEG_CONFIG, train_tiny

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_nodes_through_torchrun(seg_phantom: Path, tmp_path: Path):
    """Two torchrun 'nodes' of one process each on loopback: one run, written once, by rank 0."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(TINY_SEG_CONFIG))
    out, port = tmp_path / "run", _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "NODE_RANK", "RANK")}
    env.update(PL_DISABLE_FORK="1", OMP_NUM_THREADS="1")
    train = ["-m", "medssl.cli", "train", "--data", str(seg_phantom), "--out", str(out)]
    train += ["--labeled", "2", "--profile", "cpu", "--max-steps", "3", "--config", str(config)]
    train += ["--nodes", "2", "--devices", "1"]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes",
                "2",
                "--nproc-per-node",
                "1",
                "--node-rank",
                str(rank),
                "--master-addr",
                "127.0.0.1",
                "--master-port",
                str(port),
                *train,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for rank in (0, 1)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err[-3000:]
    stdout = "".join(o for o, _ in results)
    assert stdout.count("run written to") == 1  # rank 0 alone reports (and writes) the run
    config_written = yaml.safe_load((out / "config.yaml").read_text())
    assert config_written["train"]["nodes"] == 2
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 3


def test_metrics_go_to_tensorboard_as_well(seg_phantom: Path, tmp_path: Path):
    pytest.importorskip("tensorboardX")  # in the test extra; tensorboard itself also works
    config = {**TINY_SEG_CONFIG, "train": {**TINY_SEG_CONFIG["train"], "logger": "tensorboard"}}
    run = train_tiny(seg_phantom, out=tmp_path / "tb", max_steps=3, config=config)
    events = list((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    with open(run / "metrics.csv") as fh:  # the CSV is always written
        assert sum(1 for r in csv.DictReader(fh) if r.get("train/loss")) == 3


def test_mlflow_without_its_package_is_one_line(seg_phantom: Path, tmp_path: Path):
    if importlib.util.find_spec("mlflow") is not None:
        pytest.skip("mlflow is installed here; the missing-package message cannot be shown")
    config = {**TINY_SEG_CONFIG, "train": {**TINY_SEG_CONFIG["train"], "logger": "mlflow"}}
    with pytest.raises(
        ConfigError, match=r"needs the mlflow package; pip install 'medssl\[mlflow\]'"
    ):
        api.train(
            seg_phantom, out=tmp_path / "ml", labeled=2, profile="cpu", max_steps=1, config=config
        )
    assert not (tmp_path / "ml").exists()

"""A benchmark protocol trains every method on the same budget and writes one table as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from medssl.bench.base import BENCHMARKS, Benchmark, register, run_benchmark
from tests.conftest import TINY_SEG_CONFIG


def test_a_protocol_runs_end_to_end(seg_phantom: Path, tmp_path: Path, capsys):
    name = "test-tiny-phantom"
    if name not in BENCHMARKS:
        register(
            Benchmark(
                name=name,
                description="test only: tiny phantom",
                data=str(seg_phantom),  # absolute: overrides the shared data root
                task="segmentation",
                methods=["supervised"],
                labeled=2,
                configs={
                    "cpu": {
                        **TINY_SEG_CONFIG,
                        "train": {**TINY_SEG_CONFIG["train"], "max_steps": 4},
                    }
                },
                units="voxel",
            )
        )
    payload = run_benchmark(name, profile="cpu", out=tmp_path / "bench")
    saved = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert saved["rows"] == payload["rows"] and saved["units"]["hd95"] == "voxel"
    (row,) = saved["rows"]
    assert row["method"] == "supervised" and row["labeled"] == 2 and row["val_cases"] == 1
    assert 0.0 <= row["dice"] <= 1.0 and row["it_per_s"] > 0
    assert row["train_it_per_s"] > 0 and 0.0 <= row["data_wait"] < 1.0
    assert (tmp_path / "bench" / "supervised" / "checkpoints" / "best.ckpt").is_file()
    assert "supervised" in capsys.readouterr().out  # the printed table

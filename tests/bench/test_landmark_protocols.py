"""The landmark protocols resolve under both profiles, their networks build, and the table ends
with the annotators' own disagreement where there are two."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medssl.bench.base import BENCHMARKS, load_benchmarks
from medssl.bench.landmarks import human_reference
from medssl.data.layouts import load_dataset
from medssl.engine.module import get_method
from medssl.engine.task import get_task

load_benchmarks()

SIZES = {
    ("ceph", "cpu"): [192, 256],  # 670 x 836 cephalograms, the longer side 256
    ("ceph", "gpu"): [416, 512],
    ("jsrt-landmarks", "cpu"): [256, 256],
    ("jsrt-landmarks", "gpu"): [512, 512],
}


@pytest.mark.parametrize("name", ["ceph", "jsrt-landmarks"])
@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_protocol_builds(name: str, profile: str, shared_data: Path):
    bench = BENCHMARKS.get(name)
    assert bench.task == "landmarks" and bench.methods == ["heatmap", "ccf"]
    assert bench.data_dir() == shared_data / bench.data
    assert bench.published["columns"] == ["mre", "sdr_2mm"]
    dataset = load_dataset(bench.data_dir())
    task = get_task("landmarks")
    for method, net in (("heatmap", "unet"), ("ccf", "resnet18")):
        cfg = bench.run_config(dataset, profile, method)
        assert cfg.data.patch_size == SIZES[(name, profile)] and cfg.net.name == net
        assert cfg.train.max_steps == (4000 if profile == "gpu" else 800) and not cfg.plan
        info = task.dataset_info(dataset, cfg)
        assert info["num_landmarks"] == (19 if name == "ceph" else 166)
        module = get_method("landmarks", method)(cfg.to_dict(), info)
        assert sum(p.numel() for p in module.parameters()) > 0
    split = task.make_split(dataset, bench.run_config(dataset, profile, "ccf"))
    assert len(split["val"]) == (20 if name == "ceph" else 37)


def test_the_human_reference_row_comes_from_the_evaluation(tmp_path: Path):
    run = tmp_path / "heatmap"
    run.mkdir()
    inter = {
        "between": ["annotator1", "annotator2"],
        "cases": 20,
        "mean": {"mre": 1.1, "sd": 0.7, "sdr_2mm": 0.9},
    }
    (run / "evaluation.json").write_text(json.dumps({"inter_annotator": inter}))
    payload = {
        "rows": [{"method": "heatmap", "labeled": 80, "mre": 2.0, "sdr_2mm": 0.6, "run": str(run)}]
    }
    row = human_reference(payload)
    assert row == {
        "method": "annotator2 vs annotator1 (human reference)",
        "labeled": "-",
        "mre": 1.1,
        "sdr_2mm": 0.9,
        "val_cases": 20,
    }
    (run / "evaluation.json").write_text(json.dumps({"mean": {}}))
    assert human_reference(payload) is None

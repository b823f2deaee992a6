"""The classification protocols resolve under both profiles and their networks build."""

from __future__ import annotations

from pathlib import Path

import pytest

import medssl.bench.protocols  # noqa: F401  (registers the protocols)
from medssl.bench.base import BENCHMARKS
from medssl.data.layouts import load_dataset
from medssl.engine.module import get_method
from medssl.engine.task import get_task


@pytest.mark.parametrize("name", ["pneumonia", "adrenal3d"])
@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_protocol_builds(name: str, profile: str, shared_data: Path):
    bench = BENCHMARKS.get(name)
    assert bench.task == "classification"
    assert bench.methods == ["supervised", "bkc", "ccl"] and bench.seeds == (0, 1)
    assert bench.data_dir() == shared_data / bench.data
    assert bench.published["columns"] == ["auc", "accuracy"]
    dataset = load_dataset(bench.data_dir())
    cfg = bench.run_config(dataset, profile, "supervised")
    task = get_task("classification")
    split = task.make_split(dataset, cfg)
    assert split["val"] and all(i.startswith("val_") for i in split["val"])
    module = get_method("classification", "supervised")(
        cfg.to_dict(), task.dataset_info(dataset, cfg)
    )
    assert sum(p.numel() for p in module.parameters()) > 0
    expected = [28, 28] if name == "pneumonia" else [28, 28, 28]
    assert cfg.data.patch_size == expected and cfg.optim.name == "adam"
    # bkc reads whole images (no region) and its own radiomics settings; the others do not
    bkc = bench.run_config(dataset, profile, "bkc")
    assert bkc.method_config["context_margin"] is None
    assert ("radiomics_settings" in bkc.method_config) == (profile == "cpu")  # cpu: lighter
    assert "radiomics_settings" not in bench.run_config(dataset, profile, "ccl").method_config

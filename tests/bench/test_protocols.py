"""The named semi-supervised protocols resolve, for every method and profile, to the settings
they promise, and every method's network builds under them: no GPU has run the ``gpu`` profiles
yet, so a wrong key must fail here and not an hour into a lent machine."""

from __future__ import annotations

from pathlib import Path

import pytest

import medssl.bench.protocols  # noqa: F401  (registers the protocols)
import medssl.methods  # noqa: F401  (registers the methods)
from medssl.bench.base import BENCHMARKS
from medssl.data.layouts import load_dataset
from medssl.engine.module import get_method
from medssl.engine.task import get_task

PROTOCOL_CASES = [(b, p) for b in ("la-8", "acdc-7") for p in ("gpu", "cpu")]


@pytest.mark.parametrize(("bench_name", "profile"), PROTOCOL_CASES)
def test_every_method_builds_under_the_protocol(bench_name: str, profile: str, shared_data: Path):
    bench = BENCHMARKS.get(bench_name)
    assert bench.data_dir() == shared_data / bench.data  # the benches read ../shared/data
    dataset = load_dataset(bench.data_dir())
    for method in bench.methods:
        cfg = bench.run_config(dataset, profile, method)
        split = get_task(cfg.task).make_split(dataset, cfg)
        module = get_method(bench.task, method)(
            cfg.to_dict(), get_task(cfg.task).dataset_info(dataset, cfg)
        )
        assert sum(p.numel() for p in module.parameters()) > 0, method
        assert len(split["labeled"]) == bench.labeled and split["unlabeled"], method


def test_la_gpu_profile_is_the_published_protocol():
    bench = BENCHMARKS.get("la-8")
    dataset = load_dataset(bench.data_dir())
    for method in ("supervised", "bcp", "kpnet"):
        cfg = bench.run_config(dataset, "gpu", method)
        assert cfg.net.name == "ssl4mis_vnet" and cfg.data.patch_size == [112, 112, 80]
        assert (cfg.data.batch_size, cfg.data.unlabeled_batch_size) == (2, 2)
        assert cfg.train.max_steps == 15000 and cfg.optim.name == "sgd" and cfg.optim.lr == 0.01
    cfg = bench.run_config(dataset, "gpu", "supervised")
    module = get_method("segmentation", "supervised")(
        cfg.to_dict(), get_task(cfg.task).dataset_info(dataset, cfg)
    )
    assert sum(p.numel() for p in module.net.parameters()) == 9_448_866  # the papers' 9.45 M
    split = get_task(cfg.task).make_split(dataset, cfg)
    ids = sorted(c.id for c in dataset.labeled)  # UA-MT's train.list is the sorted ids
    assert split["labeled"] == ids[:8] and sorted(split["val"]) == ids[-16:]


def test_acdc_gpu_profile_is_the_published_protocol():
    bench = BENCHMARKS.get("acdc-7")
    dataset = load_dataset(bench.data_dir())
    for method in ("supervised", "mcnet_plus"):
        cfg = bench.run_config(dataset, "gpu", method)
        assert cfg.data.spatial_dims == 2 and cfg.data.slice_size == [256, 256]
        assert cfg.data.patch_size == [256, 256]
        assert (cfg.data.batch_size, cfg.data.unlabeled_batch_size) == (12, 12)
        assert cfg.train.max_steps == 30000 and cfg.net.channels == [16, 32, 64, 128, 256]
        assert cfg.net.name == "ssl4mis_unet" and cfg.data.intensity == "minmax"
        assert cfg.data.spatial_augment == "ssl4mis" and not cfg.data.intensity_augment

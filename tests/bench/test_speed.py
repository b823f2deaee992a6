"""``medssl bench speed-la``: seconds per training step, peak memory and data-wait share of each
method at the published LA setting, each method timed in a process of its own."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from medssl.bench.base import BENCHMARKS, load_benchmarks, run_benchmark
from medssl.bench.speed import step_times
from medssl.data.layouts import load_dataset
from medssl.errors import ConfigError, TrainingError
from tests.test_cli import run_cli

TINY = "net: {name: unet, channels: [8, 16]}\ndata: {patch_size: [32, 32, 32]}\n"


def test_speed_la_times_each_method_through_the_cli(monkeypatch, capsys, tmp_path: Path):
    config, out = tmp_path / "tiny.yaml", tmp_path / "speed"
    config.write_text(TINY)
    code, printed, err = run_cli(
        monkeypatch,
        capsys,
        *("bench", "speed-la", "--profile", "cpu", "--methods", "supervised,mean_teacher"),
        *("--config", config, "--warmup", "1", "--steps", "2", "--out", out),
    )
    assert code == 0, err
    saved = json.loads((out / "results.json").read_text())
    assert saved["benchmark"] == "speed-la" and saved["profile"] == "cpu" and saved["complete"]
    assert {"description", "machine", "code", "rows"} <= set(saved)
    assert saved["overrides"]["data"]["patch_size"] == [32, 32, 32]
    assert [row["method"] for row in saved["rows"]] == ["supervised", "mean_teacher"]
    assert [row["batch"] for row in saved["rows"]] == [
        {"labeled": 2},  # supervised loads no unlabelled patches
        {"labeled": 2, "unlabeled": 2},
    ]
    for row in saved["rows"]:
        assert 0 < row["s_per_it_min"] <= row["s_per_it"]
        assert row["peak_rss_mb"] > 0 and row["peak_cuda_mb"] is None
        assert 0.0 <= row["data_wait"] <= 1.0
        assert row["timed_steps"] == 2 and row["steps_per_window"] == 1
        assert row["precision"] == "32" and row["patch_size"] == [32, 32, 32]
        assert row["batch"]["labeled"] == 2 and row["net"] == "unet"
        run = Path(row["run"])
        assert run == out / row["method"] and (run / "metrics.csv").is_file()
        assert "max_steps: 3" in (run / "config.yaml").read_text()  # 1 warm-up + 2 timed
    table = " ".join(printed.split())
    assert "supervised" in table and "mean_teacher" in table and "s_per_it" in table
    assert "overridden by" in table and saved["code"] in table


def test_a_wrong_method_fails_in_one_line_before_any_training(monkeypatch, capsys, tmp_path: Path):
    out = tmp_path / "speed"
    args = ("bench", "speed-la", "--methods", "supervised,mean_techer", "--out", out)
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and "did you mean 'mean_teacher'" in err
    assert err.strip().count("\n") == 0 and not out.exists()


def test_options_of_another_kind_of_benchmark_are_refused(tmp_path: Path):
    with pytest.raises(ConfigError, match="--largest-component does not apply"):
        run_benchmark("speed-la", profile="cpu", out=tmp_path, largest_component=True)
    with pytest.raises(ConfigError, match="--steps does not apply"):
        run_benchmark("la-8", profile="cpu", out=tmp_path, steps=3)
    assert not any(tmp_path.iterdir())


def test_the_stock_setting_is_the_published_la_one():
    load_benchmarks()
    bench = BENCHMARKS.get("speed-la")
    dataset = load_dataset(bench.data_dir())
    for profile, precision, steps in (("cpu", "32", 5), ("gpu", "bf16-mixed", 20)):
        schedule = bench.schedule(bench.warmup, bench.steps[profile])
        cfg = bench.run_config(dataset, profile, "ua_mt", schedule)
        assert cfg.net.name == "ssl4mis_vnet" and cfg.net.channels == [16, 32, 64, 128, 256]
        assert cfg.data.patch_size == [112, 112, 80]
        assert (cfg.data.batch_size, cfg.data.unlabeled_batch_size) == (2, 2)
        assert cfg.train.precision == precision and cfg.data.val_cases == 0
        assert cfg.train.max_steps == 2 + steps < cfg.train.val_every and cfg.train.log_every == 1
    assert "T = 8" in bench.description  # ua_mt's default uncertainty_passes


def write_metrics(path: Path, window: int, total: int) -> Path:
    """metrics.csv as the engine writes it: one value per window at its last step (0-based),
    repeated by Lightning on the rows up to the next one; the window ending at step s took
    (s + 1) / 10 s a step and waited 10 % of it."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["epoch", "lr-SGD", "perf/data_wait", "perf/it_per_s", "step"])
        value = None
        for step in range(total):
            writer.writerow(["", 0.01, "", "", step])
            if (step + 1) % window == 0:
                value = (0.1, 10 / (step + 1))
            writer.writerow([0, "", *(value or ("", "")), step])
    return path


def test_step_times_reads_the_engines_windows_after_the_warm_up(tmp_path: Path):
    per_step = step_times(write_metrics(tmp_path / "a.csv", window=1, total=7), warmup=2)
    assert per_step["timed_steps"] == 5 and per_step["steps_per_window"] == 1
    assert per_step["s_per_it"] == pytest.approx((0.3 + 0.4 + 0.5 + 0.6 + 0.7) / 5)
    assert per_step["s_per_it_min"] == pytest.approx(0.3)
    assert per_step["data_wait"] == pytest.approx(0.1)
    # 22 steps: windows of 5 end at steps 5, 10, 15, 20 (1-based); the first holds the warm-up
    windows = step_times(write_metrics(tmp_path / "b.csv", window=5, total=22), warmup=2)
    assert windows["timed_steps"] == 15 and windows["steps_per_window"] == 5
    assert windows["s_per_it"] == pytest.approx((1.0 + 1.5 + 2.0) / 3)
    assert windows["s_per_it_min"] == pytest.approx(1.0)
    with pytest.raises(TrainingError, match="no timing window"):
        step_times(write_metrics(tmp_path / "c.csv", window=5, total=12), warmup=6)

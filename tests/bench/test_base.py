"""A benchmark protocol trains every method on the same budget and writes one table as JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import medssl
from medssl.bench import base
from medssl.bench.base import BENCHMARKS, Benchmark, register, run_benchmark
from medssl.errors import ConfigError
from tests.conftest import TINY_SEG_CONFIG

TINY_BENCH = "test-tiny-phantom"


def register_tiny(seg_phantom: Path) -> str:
    """A one-method protocol on the session phantom, 4 steps (registered once)."""
    name = TINY_BENCH
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
    return name


def test_a_protocol_runs_end_to_end(seg_phantom: Path, tmp_path: Path, capsys):
    payload = run_benchmark(register_tiny(seg_phantom), profile="cpu", out=tmp_path / "bench")
    saved = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert saved["rows"] == payload["rows"] and saved["units"]["hd95"] == "voxel"
    (row,) = saved["rows"]
    assert row["method"] == "supervised" and row["labeled"] == 2 and row["val_cases"] == 1
    assert 0.0 <= row["dice"] <= 1.0 and row["it_per_s"] > 0
    assert {"dice", "jaccard", "hd95", "asd"} <= set(row)  # the task's bench columns
    assert row["train_it_per_s"] > 0 and 0.0 <= row["data_wait"] < 1.0
    assert (tmp_path / "bench" / "supervised" / "checkpoints" / "best.ckpt").is_file()
    printed = capsys.readouterr().out
    assert "supervised" in printed and "overridden" not in printed  # the stock protocol's table
    assert saved["code"] == base.code_version() and saved["code"] in " ".join(printed.split())
    assert saved["postprocess"] == "none"  # raw argmax unless asked


def test_largest_component_reaches_every_row(seg_phantom: Path, tmp_path: Path, capsys):
    name = register_tiny(seg_phantom)
    saved = run_benchmark(name, profile="cpu", out=tmp_path / "bench", largest_component=True)
    assert saved["postprocess"] == "largest_component"
    (row,) = saved["rows"]
    evaluation = json.loads((Path(row["run"]) / "evaluation.json").read_text())
    assert evaluation["postprocess"] == "largest_component"
    assert evaluation["mean"]["dice"] == row["dice"]
    assert "largest component" in " ".join(capsys.readouterr().out.split())


def test_code_version_names_the_checkouts_commit(monkeypatch):
    source = Path(medssl.__file__).parent
    head = subprocess.run(
        ["git", "-C", str(source), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    version = base.code_version()
    assert version.startswith(f"medssl {medssl.__version__}")
    if head.returncode == 0:  # a git checkout (CI's clean clone is one)
        assert f" at {head.stdout.strip()}" in version

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(base.subprocess, "run", no_git)
    assert base.code_version() == f"medssl {medssl.__version__}"  # an installed wheel


def test_config_overrides_the_profile_and_is_recorded(seg_phantom: Path, tmp_path: Path):
    override = tmp_path / "longer.yaml"
    override.write_text("train: {max_steps: 6}\n")
    name = register_tiny(seg_phantom)
    saved = run_benchmark(name, profile="cpu", out=tmp_path / "bench", config=override)
    assert saved["overrides"] == {"train": {"max_steps": 6}}
    run = Path(saved["rows"][0]["run"])
    assert "max_steps: 6" in (run / "config.yaml").read_text()
    assert BENCHMARKS.get(name).configs["cpu"]["train"]["max_steps"] == 4  # protocol untouched


def test_protocol_merges_overrides_over_the_profile_without_touching_it(seg_phantom: Path):
    bench = BENCHMARKS.get(register_tiny(seg_phantom))
    merged = bench.protocol("cpu", {"train": {"max_steps": 9}})
    assert merged["train"]["max_steps"] == 9
    assert merged["train"]["val_every"] == 2  # siblings kept
    assert bench.configs["cpu"]["train"]["max_steps"] == 4
    assert bench.protocol("cpu") == {"plan": False, **bench.configs["cpu"]}  # never planned


def test_missing_override_file_fails_before_training(seg_phantom: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="config file not found"):
        run_benchmark(
            register_tiny(seg_phantom), profile="cpu", out=tmp_path / "b", config=tmp_path / "x"
        )
    assert not (tmp_path / "b").exists()


def test_a_wrong_override_key_fails_before_training(seg_phantom: Path, tmp_path: Path):
    override = tmp_path / "typo.yaml"
    override.write_text("train: {max_stepz: 6}\n")
    with pytest.raises(ConfigError, match="max_stepz"):
        run_benchmark(
            register_tiny(seg_phantom), profile="cpu", out=tmp_path / "b", config=override
        )
    assert not (tmp_path / "b").exists()


def test_an_interrupted_bench_keeps_the_rows_it_finished(
    seg_phantom: Path, tmp_path: Path, monkeypatch
):
    from medssl.engine import launch

    real_train = launch.train_run

    def train_then_die(data, method: str, *args, **kwargs):
        if method == "mean_teacher":
            raise KeyboardInterrupt  # the user stops the bench during the second method
        return real_train(data, method, *args, **kwargs)

    monkeypatch.setattr(launch, "train_run", train_then_die)
    name = register_tiny(seg_phantom)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(name, profile="cpu", methods=["supervised", "mean_teacher"], out=tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [r["method"] for r in saved["rows"]] == ["supervised"] and saved["complete"] is False


def test_seed_summary_gives_mean_and_spread():
    runs = [
        {
            "method": "bkc",
            "seed": 0,
            "labeled": 78,
            "auc": 0.8,
            "accuracy": 0.7,
            "train_s": 10.0,
            "it_per_s": 2.0,
        },
        {
            "method": "bkc",
            "seed": 1,
            "labeled": 78,
            "auc": 0.6,
            "accuracy": float("nan"),
            "train_s": 20.0,
            "it_per_s": 4.0,
        },
    ]
    row = base.seed_summary("bkc", runs, ["auc", "accuracy"])
    assert row["method"] == "bkc" and row["seed"] == "mean of 2" and row["labeled"] == 78
    assert row["auc"] == pytest.approx(0.7) and row["auc_sd"] == pytest.approx(0.1414213, rel=1e-5)
    assert row["accuracy"] == pytest.approx(0.7)  # NaN left out; one value has no spread
    assert row["accuracy_sd"] != row["accuracy_sd"]
    assert row["train_s"] == pytest.approx(15.0) and "train_s_sd" not in row


def test_a_methods_own_settings_lie_over_the_profile_only_for_it():
    bench = Benchmark(
        name="test-method-configs",
        description="test only",
        data="nowhere",
        task="classification",
        methods=["supervised", "bkc"],
        labeled=None,
        configs={"cpu": {"train": {"max_steps": 5}, "method_config": {"context_margin": 0.5}}},
        method_configs={"cpu": {"bkc": {"method_config": {"radiomics": False}}}},
    )
    own = bench.protocol("cpu", {"train": {"max_steps": 7}}, "bkc")
    assert own["method_config"] == {"context_margin": 0.5, "radiomics": False}
    assert own["train"]["max_steps"] == 7 and own["plan"] is False  # --config wins
    assert bench.protocol("cpu", None, "supervised")["method_config"] == {"context_margin": 0.5}

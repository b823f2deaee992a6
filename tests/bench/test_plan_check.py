"""``medssl bench plan-check`` end to end on its phantom, with a tiny schedule."""

from __future__ import annotations

import json

import pytest
import yaml

from medssl.bench import run_benchmark
from medssl.errors import ConfigError

TINY = {
    "train": {"max_steps": 2, "val_every": 2},
    "data": {"patch_size": [32, 32, 32], "sw_batch_size": 2},
    "net": {"channels": [8, 16, 32], "num_res_units": 0},
}


def tiny_plan_check(tmp_path, datasets: str) -> dict:
    """``bench plan-check`` of ``datasets`` with the tiny schedule over the plan, into
    ``tmp_path/out``."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    return run_benchmark(
        "plan-check", profile="cpu", out=tmp_path / "out", config=config, datasets=datasets
    )


def test_plan_check_trains_the_plan_and_scores_it(tmp_path, capsys):
    out = tmp_path / "out"
    payload = tiny_plan_check(tmp_path, "phantom-seg3d")
    (row,) = payload["rows"]
    assert row["dataset"] == "phantom-seg3d" and row["run"] == "planned"
    assert 0.0 <= row["dice"] <= 1.0 and row["val_cases"] >= 1
    assert row["plan"].startswith("3D")
    assert "patch 32x32x32 unet 8-32 x3 2 steps" in row["plan"]  # what trained: --config won
    saved = json.loads((out / "results.json").read_text())
    assert saved["complete"] and saved["rows"][0]["dice"] == row["dice"]
    plan = json.loads((out / "phantom-seg3d" / "planned" / "plan.json").read_text())
    assert plan["overridden"]["train.max_steps"] == 2  # the bench's --config over the plan
    assert "plan-check" in capsys.readouterr().out


def test_plan_check_names_unknown_datasets(tmp_path):
    with pytest.raises(ConfigError, match="not a plan-check dataset"):
        run_benchmark("plan-check", profile="cpu", out=tmp_path, datasets="nope")


def test_plan_check_fits_a_single_labelled_case_and_says_so(tmp_path):
    """BraTS has one labelled case: nothing to hold out, so the row trains on it, scores it and
    names what it scored (a fit check, not a generalisation)."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "out"
    payload = run_benchmark(
        "plan-check", profile="cpu", out=out, config=config, datasets="brats2018"
    )
    (row,) = payload["rows"]
    assert row["labeled"] == 1 and row["val_cases"] == 1
    assert row["scored"] == "its training case (no other)"
    assert 0.0 <= row["dice"] <= 1.0
    split = json.loads((tmp_path / "out" / "brats2018" / "planned" / "split.json").read_text())
    assert split["val"] == [] and split["labeled"] == ["brats18_2013_2_1"]

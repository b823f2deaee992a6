"""Planned defaults in a run: shown, written to RUN/plan.json, overridable, switchable off."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from medssl.bench.base import BENCHMARKS, load_benchmarks
from medssl.cli import app
from tests.conftest import TINY_SEG_CONFIG, train_tiny


def test_planned_keys_reach_the_run_and_config_overrides_win(seg_phantom, tmp_path, capfd):
    run = train_tiny(seg_phantom, tmp_path / "run", max_steps=1)
    plan = json.loads((run / "plan.json").read_text())
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert "plan (segmentation, profile cpu)" in capfd.readouterr().out
    # the tiny config sets the patch and the network: the run has those, the plan says so
    assert config["data"]["patch_size"] == TINY_SEG_CONFIG["data"]["patch_size"]
    assert plan["overridden"]["data.patch_size"] == [32, 32, 32]
    assert plan["overridden"]["net.channels"] == [8, 16, 32]
    # keys nobody else set come from the plan (the phantom is CT: its foreground window)
    assert config["data"]["intensity"] == plan["planned"]["data"]["intensity"] == "ct"
    assert config["data"]["ct_window"] == plan["planned"]["data"]["ct_window"]
    assert config["optim"]["lr"] == plan["planned"]["optim"]["lr"]
    assert plan["fingerprint"]["cases"] == 8


def test_plan_false_keeps_the_profile_defaults(seg_phantom, tmp_path):
    run = train_tiny(
        seg_phantom, tmp_path / "run", max_steps=1, config={**TINY_SEG_CONFIG, "plan": False}
    )
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert not (run / "plan.json").exists()
    assert config["plan"] is False
    assert list(config["data"]["ct_window"]) == [-175.0, 250.0]  # the fixed default


def test_bench_protocols_are_not_planned():
    load_benchmarks()
    for name in ("la-8", "acdc-7", "pneumonia"):
        assert BENCHMARKS.get(name).protocol("cpu")["plan"] is False


def test_data_plan_prints_fingerprint_and_plan(shared_data):
    result = CliRunner().invoke(
        app, ["data", "plan", str(shared_data / "la2018"), "--profile", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert "fingerprint of" in result.output and "left_atrium" in result.output
    assert "spacing coarsened" in result.output and "patch" in result.output
    other = CliRunner().invoke(
        app, ["data", "plan", str(shared_data / "pneumoniamnist"), "--task", "classification"]
    )
    assert other.exit_code == 0 and "plans nothing" in other.output


def test_python_api_plan(shared_data):
    import medssl

    planned = medssl.plan(shared_data / "acdc", profile="cpu")
    assert planned["dims"] == 2 and planned["planned"]["data"]["slice_size"] == [128, 128]
    assert planned["fingerprint"]["spacing_known"] is False
    assert medssl.plan(shared_data / "pneumoniamnist", task="classification") is None

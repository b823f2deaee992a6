"""The CLI contract: exit codes, one-line errors naming the file and the fix."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from medssl.cli import main


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["medssl", *map(str, args)])
    with pytest.raises(SystemExit) as done:
        main()
    captured = capsys.readouterr()
    return done.value.code or 0, captured.out, captured.err


def train_cli(monkeypatch, capsys, data: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli(monkeypatch, capsys, "train", "--data", data, "--out", out, *extra)


def test_methods_lists_supervised(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "methods")
    assert code == 0 and "supervised" in out.split()


def test_data_check_clean_and_corrupted(monkeypatch, capsys, seg_phantom: Path, tmp_path: Path):
    code, out, _ = run_cli(monkeypatch, capsys, "data", "check", seg_phantom)
    assert code == 0 and "no problems" in out
    bad = tmp_path / "bad"
    code, _, _ = run_cli(
        monkeypatch, capsys, "data", "corrupt", seg_phantom, bad, "--kinds", "truncated,nan"
    )
    assert code == 0 and (bad / "corruptions.json").is_file()
    code, out, _ = run_cli(monkeypatch, capsys, "data", "check", bad)
    lines = [line for line in out.splitlines() if ".nii.gz:" in line]
    assert code == 1 and len(lines) == 2
    assert any("NaN" in line or "nan" in line.lower() for line in lines)


def test_phantom_refuses_an_existing_folder(monkeypatch, capsys, seg_phantom: Path):
    code, _, err = run_cli(monkeypatch, capsys, "data", "phantom", seg_phantom, "--kind", "seg3d")
    assert code == 2 and str(seg_phantom) in err and err.strip().count("\n") == 0


def test_typo_in_method_gets_did_you_mean(monkeypatch, capsys, seg_phantom: Path, tmp_path: Path):
    code, _, err = train_cli(
        monkeypatch, capsys, seg_phantom, tmp_path / "r", "--method", "supervsed"
    )
    assert code == 2 and "did you mean 'supervised'" in err
    assert not (tmp_path / "r").exists()


def test_missing_data_folder_is_one_line(monkeypatch, capsys, tmp_path: Path):
    missing = tmp_path / "nowhere"
    code, _, err = train_cli(monkeypatch, capsys, missing, tmp_path / "r")
    assert code == 2 and str(missing) in err and err.strip().count("\n") == 0


def test_bad_labeled_value(monkeypatch, capsys, seg_phantom: Path, tmp_path: Path):
    code, _, err = train_cli(monkeypatch, capsys, seg_phantom, tmp_path / "r", "--labeled", "many")
    assert code == 2 and "--labeled" in err


def test_too_many_labeled_cases(monkeypatch, capsys, seg_phantom: Path, tmp_path: Path):
    code, _, err = train_cli(monkeypatch, capsys, seg_phantom, tmp_path / "r", "--labeled", "50")
    assert code == 2 and "only" in err and not (tmp_path / "r").exists()


def test_invalid_config_value_names_the_key(monkeypatch, capsys, seg_phantom: Path, tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text("optim:\n  name: rmsprop\n")
    code, _, err = train_cli(monkeypatch, capsys, seg_phantom, tmp_path / "r", "--config", config)
    assert code == 2 and "optim.name" in err


def test_slice_size_needs_two_positive_numbers(monkeypatch, capsys, seg_phantom: Path, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  slice_size: [128]\n")
    code, _, err = train_cli(monkeypatch, capsys, seg_phantom, tmp_path / "r", "--config", config)
    assert code == 2 and "data.slice_size" in err and err.strip().count("\n") == 0
    assert not (tmp_path / "r").exists()


def test_report_and_evaluate_on_a_run(
    monkeypatch, capsys, tiny_run: Path, seg_phantom: Path, tmp_path: Path
):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    code, out, _ = run_cli(
        monkeypatch,
        capsys,
        "evaluate",
        "--run",
        run,
        "--data",
        seg_phantom,
        "--out",
        tmp_path / "e.json",
    )
    assert code == 0 and "lesion" in out and (tmp_path / "e.json").is_file()
    code, out, _ = run_cli(monkeypatch, capsys, "report", run)
    assert code == 0 and (run / "report.html").is_file()
    html = (run / "report.html").read_text()
    assert "supervised" in html and "overlay" in html.lower()


def test_unknown_benchmark(monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "bench", "la-supervisd")
    assert code == 2 and "la-supervised" in err


def test_evaluate_on_the_users_held_out_data(monkeypatch, capsys, tiny_run: Path, tmp_path: Path):
    """``evaluate --run RUN --data DIR``: a test set the run never saw, in the same layout."""
    import json

    from medssl.data.layouts import load_dataset
    from medssl.data.phantom import make_phantom

    held_out = make_phantom(tmp_path / "my_test_set", "seg3d", cases=4, seed=11)
    expected = sorted(c.id for c in load_dataset(held_out).labeled)
    report = tmp_path / "test_metrics.json"
    code, out, _ = run_cli(
        monkeypatch, capsys, "evaluate", "--run", tiny_run, "--data", held_out, "--out", report
    )
    assert code == 0 and "dice" in out.lower()
    result = json.loads(report.read_text())
    assert sorted(result["per_case"]) == expected and result["data"] == str(held_out)
    assert 0.0 <= result["mean"]["dice"] <= 1.0 and result["postprocess"] == "none"
    code, out, _ = run_cli(
        monkeypatch, capsys, "evaluate", "--run", tiny_run, "--data", held_out,
        "--out", report, "--largest-component",
    )  # fmt: skip
    assert code == 0 and "largest component" in " ".join(out.split())  # a wrapped title
    assert json.loads(report.read_text())["postprocess"] == "largest_component"

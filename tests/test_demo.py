"""The demo chain (phantom -> train -> evaluate -> report) runs end to end, on a short budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medssl.demo import run_demo
from medssl.errors import ConfigError


def test_demo_compares_supervised_and_mean_teacher_in_the_report(tmp_path: Path):
    report = run_demo(tmp_path / "demo", steps=6, cases=16)
    assert report == tmp_path / "demo" / "mean_teacher" / "report.html"
    html = report.read_text()
    assert "Method comparison" in html and "comparison.png" in html
    assert "supervised" in html and "mean_teacher" in html
    splits = {}
    for method in ("supervised", "mean_teacher"):
        run = tmp_path / "demo" / method
        evaluation = json.loads((run / "evaluation.json").read_text())
        splits[method] = json.loads((run / "split.json").read_text())
        assert evaluation["method"] == method
        assert sorted(evaluation["per_case"]) == sorted(splits[method]["val"])  # held out only
        assert (run / "report.html").is_file()
    assert splits["supervised"] == splits["mean_teacher"]  # same labels, same held-out cases
    assert len(splits["mean_teacher"]["labeled"]) == 4 and splits["mean_teacher"]["unlabeled"]
    rows = json.loads((report.parent / "comparison.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["supervised", "mean_teacher"]


def test_demo_refuses_to_overwrite(tmp_path: Path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="--force"):
        run_demo(tmp_path / "demo", steps=1)
    assert (tmp_path / "demo" / "keep.txt").read_text() == "mine"

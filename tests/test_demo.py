"""The demo chain (phantom -> train -> evaluate -> report) runs end to end, on a short budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medssl.demo import run_demo
from medssl.errors import ConfigError


def test_demo_writes_a_report_from_generated_data(tmp_path: Path):
    report = run_demo(tmp_path / "demo", steps=6, cases=16)
    assert report == tmp_path / "demo" / "supervised" / "report.html"
    html = report.read_text()
    assert "supervised" in html and "plots/" in html
    evaluation = json.loads((report.parent / "evaluation.json").read_text())
    split = json.loads((report.parent / "split.json").read_text())
    assert sorted(evaluation["per_case"]) == sorted(split["val"])  # held-out phantom cases only
    assert len(split["labeled"]) == 4


def test_demo_refuses_to_overwrite(tmp_path: Path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="--force"):
        run_demo(tmp_path / "demo", steps=1)
    assert (tmp_path / "demo" / "keep.txt").read_text() == "mine"

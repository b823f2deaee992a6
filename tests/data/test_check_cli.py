"""``medssl data check`` prints one finding per line whatever the terminal width.

Scripts grep and paste these lines; a path broken across lines at the console width (rich wraps
at 80 columns when piped) names no file at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from medssl.cli import app
from medssl.data.check import check_dataset, format_report
from medssl.data.io import MedImage, write_image


def _long_dataset(tmp_path: Path) -> Path:
    """An nnU-Net set deep enough that every line is longer than the console is wide."""
    root = tmp_path / ("a_rather_long_folder_name_" * 4) / "Dataset001_LongName"
    for sub in ("imagesTr", "labelsTr"):
        (root / sub).mkdir(parents=True)
    volume = MedImage.from_array(np.ones((4, 4, 3), np.uint8), spacing=(1.0, 1.0, 1.0))
    write_image(root / "imagesTr" / "case_000_0000.nii.gz", volume)
    write_image(root / "labelsTr" / "case_000.nii.gz", volume)
    write_image(root / "imagesTr" / "case_with_a_long_name_001.nii.gz", volume)  # no _0000
    meta = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "x": 1}}
    (root / "dataset.json").write_text(json.dumps(meta | {"file_ending": ".nii.gz"}))
    return root


def test_data_check_lines_are_not_wrapped(tmp_path):
    root = _long_dataset(tmp_path)
    expected = format_report(check_dataset(root)).splitlines()
    assert len(expected) == 3 and len(expected[0]) > 120
    result = CliRunner().invoke(app, ["data", "check", str(root)], env={"COLUMNS": "40"})
    assert result.exit_code == 1
    assert result.stdout.splitlines() == expected

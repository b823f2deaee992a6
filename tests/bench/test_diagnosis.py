"""``jsrt-nodule``: the nodule view of the shared JSRT folder, built outside it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from medssl.bench.diagnosis import JSRT_NODULE, nodule_rows, write_nodule_manifest
from medssl.data.layouts import load_dataset
from medssl.data.radiomics.masks import LesionPosition, case_lesion


def test_nodule_rows_follow_the_clinical_data_and_split_per_class(shared_data: Path):
    rows = nodule_rows(shared_data / "jsrt" / "clinical.csv")
    labels = [r["label"] for r in rows]
    assert len(rows) == 116 and labels.count("malignant") == 75 and labels.count("benign") == 41
    val = [r for r in rows if r["split"] == "val"]
    assert sum(r["label"] == "malignant" for r in val) == 25
    assert sum(r["label"] == "benign" for r in val) == 13
    first = next(r for r in rows if r["id"] == "jsrt_JPCLN001")
    assert (first["x"], first["y"], first["diameter_mm"]) == ("408.625", "173.125", "15")
    assert Path(first["image"]).is_absolute() and Path(first["image"]).is_file()


def test_the_manifest_reads_as_a_classification_set_with_lesion_positions(
    shared_data: Path, tmp_path: Path
):
    folder = write_nodule_manifest(shared_data / "jsrt", tmp_path / "view")
    stamp = (folder / "manifest.csv").stat().st_mtime_ns
    assert write_nodule_manifest(shared_data / "jsrt", folder) == folder  # unchanged: kept
    assert (folder / "manifest.csv").stat().st_mtime_ns == stamp
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["pixel_spacing_mm"] == [0.7, 0.7] and meta["labels"] == {
        "benign": 0,
        "malignant": 1,
    }
    dataset = load_dataset(folder)
    case = dataset.case("jsrt_JPCLN001")
    assert case.target == 1 and case.meta["split"] == "train"
    assert case_lesion(case) == LesionPosition((408.625, 173.125), 15.0, "mm")
    with open(folder / "manifest.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 116


def test_every_method_reads_the_same_region(tmp_path: Path):
    for method in JSRT_NODULE.methods:
        assert JSRT_NODULE.protocol("cpu", None, method)["method_config"]["context_margin"] == 0.5

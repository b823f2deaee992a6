"""``jsrt-nodule``: malignant against benign JSRT lung nodules, each read in its context.

BKC-Net's own setting, a lesion in the tissue around it, on public data: the 116 nodules of the
shared JSRT folder (75 malignant, 41 benign) at the centres and sizes that JSRT's clinical data
give. Every method reads the same input, a square around the nodule widened by half its diameter
on every side (``method_config.context_margin: 0.5``), resized to the patch; ``bkc`` adds its
segmentation of the nodule disc and the nodule's radiomics.

The shared folder is a segmentation dataset; the classification view of it is a CSV manifest
(image path, malignant / benign, split, nodule centre and diameter) written to medssl's cache,
never beside the data. The split is fixed: within each class, the sorted case ids at index
``% 3 == 2`` validate (25 malignant + 13 benign), the rest train (50 + 28).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from medssl.atomic import write_text_atomic
from medssl.bench.base import SHARED_DATA, Benchmark, register
from medssl.errors import ConfigError, file_error

CLASSIFICATION_COLUMNS = ["auc", "accuracy"]
JSRT_SPACING_MM = 0.7
MANIFEST_COLUMNS = ["id", "image", "label", "split", "x", "y", "diameter_mm"]


def nodule_rows(clinical: Path) -> list[dict[str, str]]:
    """One manifest row per nodule case of JSRT's ``clinical.csv`` (no-nodule cases left out),
    images by absolute path, with the fixed per-class split."""
    images = clinical.parent / "images"
    try:
        with open(clinical, newline="", encoding="utf-8") as fh:
            cases = [r for r in csv.DictReader(fh) if r.get("has_nodule") == "1"]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise file_error(
            clinical, f"cannot be read ({err})", "check the shared JSRT folder"
        ) from None
    rows = []
    for label, value in (("benign", "0"), ("malignant", "1")):
        group = sorted(
            (r for r in cases if r.get("malignant") == value), key=lambda r: r["case_id"]
        )
        for index, case in enumerate(group):
            rows.append(
                {
                    "id": case["case_id"],
                    "image": str((images / f"{case['case_id']}.png").resolve()),
                    "label": label,
                    "split": "val" if index % 3 == 2 else "train",
                    "x": case["nodule_x"],
                    "y": case["nodule_y"],
                    "diameter_mm": case["nodule_size_mm"],
                }
            )
    if not rows:
        raise file_error(
            clinical, "lists no nodule case", "check the shared JSRT folder", ConfigError
        )
    return sorted(rows, key=lambda r: r["id"])


def nodule_dataset_json() -> dict[str, Any]:
    return {
        "name": "JSRT nodules",
        "description": "JSRT lung nodules, malignant vs benign, at their clinical positions",
        "tensorImageSize": "2D",
        "channel_names": {"0": "X-ray"},
        "labels": {"benign": 0, "malignant": 1},
        "pixel_spacing_mm": [JSRT_SPACING_MM, JSRT_SPACING_MM],
        "file_ending": ".png",
    }


def write_nodule_manifest(jsrt: Path, folder: Path) -> Path:
    """``folder/manifest.csv`` and ``folder/dataset.json`` of the nodule view of ``jsrt``
    (rewritten only when their content changes); returns ``folder``."""
    rows = nodule_rows(jsrt / "clinical.csv")
    text = io.StringIO()
    writer = csv.DictWriter(text, MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    files = {
        folder / "manifest.csv": text.getvalue(),
        folder / "dataset.json": json.dumps(nodule_dataset_json(), indent=2) + "\n",
    }
    for path, content in files.items():
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            write_text_atomic(path, content)
    return folder


class NoduleBenchmark(Benchmark):
    """A protocol on the nodule view of the shared JSRT folder (built in medssl's cache)."""

    def data_dir(self) -> Path:
        from medssl.data.fingerprint import cache_dir

        return write_nodule_manifest(SHARED_DATA / "jsrt", cache_dir() / "benchmarks" / self.name)


def bkc_settings(**method_config: Any) -> dict[str, Any]:
    """A profile's ``method_configs`` entry for bkc: its own method_config keys."""
    return {"bkc": {"method_config": method_config}}


JSRT_NODULE = register(
    NoduleBenchmark(
        name="jsrt-nodule",
        description="JSRT lung nodules, malignant (75) vs benign (41), each read as a square "
        "around the nodule at its clinical position with half a diameter of context; "
        "78 train / 38 validate, fixed per-class split",
        data="jsrt",
        task="classification",
        methods=["supervised", "bkc", "ccl"],
        labeled=None,
        configs={
            "gpu": {
                "net": {"name": "resnet18"},
                "data": {"patch_size": [96, 96], "batch_size": 32, "augment": True},
                "train": {"max_steps": 3000, "val_every": 100},
                "optim": {"name": "adam", "lr": 1e-3, "schedule": "cosine"},
                "method_config": {"context_margin": 0.5},
            },
            "cpu": {  # a stride-2 7x7 stem then max pool (MONAI's stem stride is 1): ~25x faster
                "net": {"name": "resnet10", "options": {"conv1_t_stride": 2}},
                "data": {"patch_size": [64, 64], "batch_size": 16, "augment": True},
                "train": {"max_steps": 600, "val_every": 50},
                "optim": {"name": "adam", "lr": 1e-3, "schedule": "cosine"},
                "method_config": {"context_margin": 0.5, "small_input": False},
            },
        },
        method_configs={
            profile: bkc_settings(radiomics_settings={"pre_crop": True})
            for profile in ("cpu", "gpu")
        },
        published={},
        labeled_text="all (78)",
        seeds=(0, 1),
    )
)

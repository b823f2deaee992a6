"""CSV manifests: one row per volume (``image``, optional ``mask``, ``label``, ``split``, ``id``).

Paths are relative to the csv; class strings become ints through dataset.json ``labels`` when
there is one, so the same manifest can be read with the class numbering a model was trained on.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from medssl.data.dataset import Case, Dataset
from medssl.data.layouts._common import (
    case_id_or_stem,
    dataset_from_json,
    dataset_json,
    fields_except,
    label_map,
    unique_ids,
)
from medssl.errors import file_error


def _class_index(raw: list[str], declared: dict[str, int], csv_path: Path) -> dict[str, int]:
    """Map the csv's class strings to ints: dataset.json names, integers, else sorted names."""
    values = sorted({v for v in raw if v != ""})
    if declared:
        mapping = {**{str(i): i for i in declared.values()}, **declared}
        unknown = [v for v in values if v not in mapping]
        if unknown:
            raise file_error(
                csv_path,
                f"classes {unknown} are not in dataset.json labels {declared}",
                "fix the label column or add the classes to dataset.json",
            )
        return mapping
    if all(re.fullmatch(r"-?\d+", v) for v in values):
        return {v: int(v) for v in values}
    return {v: i for i, v in enumerate(values)}


def _manifest_rows(csv_path: Path) -> list[dict[str, str]]:
    try:
        with csv_path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise file_error(csv_path, f"cannot be read as CSV ({err})", "fix the file") from err
    columns = list(rows[0]) if rows else []
    if "image" not in columns:
        raise file_error(
            csv_path,
            f"no 'image' column (columns: {', '.join(columns) or 'none'})",
            "write a header with image[,mask,label,split,id]; paths relative to the csv",
        )
    return rows


def read(root: Path) -> Dataset:
    """CSV manifest (``image``, optional ``mask``, ``label``, ``split``, ``id``) of volumes."""
    csv_path = root if root.is_file() else root / "manifest.csv"
    folder = csv_path.parent
    meta = dataset_json(folder)
    rows = _manifest_rows(csv_path)
    classes = _class_index([r.get("label") or "" for r in rows], label_map(meta), csv_path)
    cases = []
    for line, row in enumerate(rows, start=2):
        image = folder / row["image"]
        extra = {k: v for k, v in fields_except(row, ("id", "image", "mask", "label")).items() if v}
        if row.get("mask"):
            extra["mask"] = folder / row["mask"]
        label = row.get("label") or ""
        cases.append(
            Case(
                id=case_id_or_stem(row.get("id"), image),
                images=[image],
                target=classes[label] if label else None,
                meta={**extra, "row": line},
            )
        )
    labels = label_map(meta) or {str(k): v for k, v in classes.items()}
    return dataset_from_json(
        root,
        "manifest",
        unique_ids(cases, csv_path),
        meta,
        labels=labels,
        task="classification",
        extra={"manifest": csv_path},
    )

"""``landmarks.json``: named points per case and annotator, NaN where none was given."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medssl.atomic import write_text_atomic
from medssl.data.io._common import existing_path, one_line
from medssl.errors import file_error

_LANDMARK_KEYS = ("landmark_names", "pixel_spacing_mm", "image_size_wh", "cases")


@dataclass
class LandmarkSet:
    """Named 2-D (or 3-D) points per case and annotator, NaN where an annotator gave none."""

    names: list[str]
    spacing_mm: float | None = None
    image_size_wh: tuple[int, int] | None = None
    cases: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def reference(self, case_id: str) -> np.ndarray:
        """The annotation to train and score against: ``mean``, else ``default``, else the first."""
        annotations = self.cases[case_id]
        for key in ("mean", "default"):
            if key in annotations:
                return annotations[key]
        return next(iter(annotations.values()))


def read_landmarks(path: str | Path) -> LandmarkSet:
    """``landmarks.json``: per case either ``{annotator: points}`` or bare points (``default``)."""
    p = existing_path(path)
    doc = _read_json(p)
    if not isinstance(doc, dict) or not {"landmark_names", "cases"} <= doc.keys():
        raise file_error(
            p,
            "lacks 'landmark_names' or 'cases'",
            "write {landmark_names: [...], cases: {id: {annotator: [[x, y] or null, ...]}}}",
        )
    names = [str(n) for n in doc["landmark_names"]]
    size = doc.get("image_size_wh")
    spacing = doc.get("pixel_spacing_mm")
    return LandmarkSet(
        names=names,
        spacing_mm=float(spacing) if spacing is not None else None,
        image_size_wh=(int(size[0]), int(size[1])) if size is not None else None,
        cases={str(c): _case_points(p, str(c), e, len(names)) for c, e in doc["cases"].items()},
        extra={k: v for k, v in doc.items() if k not in _LANDMARK_KEYS},
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise file_error(
            path, f"is not valid JSON ({one_line(err)})", "repair or re-export it"
        ) from err


def _case_points(path: Path, case_id: str, entry: Any, n: int) -> dict[str, np.ndarray]:
    annotations = entry if isinstance(entry, dict) else {"default": entry}
    return {
        str(name): _points(path, f"case {case_id} {name}", pts, n)
        for name, pts in annotations.items()
    }


def _points(path: Path, where: str, points: Any, n: int) -> np.ndarray:
    """[[x, y] or null] * n -> (n, D) float array with NaN rows for null."""
    if not isinstance(points, list) or len(points) != n:
        got = len(points) if isinstance(points, list) else type(points).__name__
        raise file_error(path, f"{where}: {got} points for {n} landmark_names", "give one per name")
    given = [pt for pt in points if pt is not None]
    dims = len(given[0]) if given and isinstance(given[0], list) else 2
    try:
        rows = [[math.nan] * dims if pt is None else [float(v) for v in pt] for pt in points]
        array = np.array(rows, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise file_error(
            path, f"{where}: points must be [x, y] or null", "fix the malformed entries"
        ) from err
    if array.shape != (n, dims):
        raise file_error(path, f"{where}: points of mixed length", "give every point as [x, y]")
    return array


def write_landmarks(path: str | Path, landmark_set: LandmarkSet) -> None:
    """Atomic ``landmarks.json`` in the cephalometric shape (null for points with NaN)."""
    p = Path(path).expanduser()
    doc = {
        "landmark_names": list(landmark_set.names),
        "pixel_spacing_mm": landmark_set.spacing_mm,
        "image_size_wh": list(landmark_set.image_size_wh) if landmark_set.image_size_wh else None,
        **{k: v for k, v in landmark_set.extra.items() if k not in _LANDMARK_KEYS},
        "cases": {
            case_id: {name: _points_json(pts) for name, pts in annotations.items()}
            for case_id, annotations in landmark_set.cases.items()
        },
    }
    try:
        text = json.dumps(doc, indent=1, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise file_error(
            p, f"cannot be written as JSON ({err})", "keep LandmarkSet.extra to JSON types"
        ) from err
    write_text_atomic(p, text + "\n")


def _points_json(points: np.ndarray) -> list[list[float] | None]:
    return [None if np.isnan(row).any() else [float(v) for v in row] for row in np.asarray(points)]

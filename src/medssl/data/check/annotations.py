"""Checks of annotations that are not label maps: landmark points and SWC tracings.

Only the layouts that carry them (``landmarks``, ``swc``) have anything here; the points are
compared with the image sizes that :mod:`medssl.data.check.files` already read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medssl.data.check.files import FileInfo
from medssl.data.check.report import Problem, error_message
from medssl.data.dataset import Case, Dataset
from medssl.data.io import read_swc
from medssl.errors import DataError


def _annotations(case: Case) -> dict[str, np.ndarray]:
    if "annotations" in case.meta:
        return case.meta["annotations"]
    return {"reference": case.meta["landmarks"]} if "landmarks" in case.meta else {}


def check_landmarks(ds: Dataset, infos: dict[Path, FileInfo]) -> list[Problem]:
    """Every annotator's points must lie in the image, continuous coords [0, W] x [0, H]."""
    landmarks = ds.extra.get("landmarks")
    if landmarks is None:
        return []
    index = ds.root / "landmarks.json"
    problems = []
    for case in ds.cases:
        info = infos.get(case.images[0]) if case.images else None
        if info is None:
            continue
        width, height = info.shape[:2]
        for annotator, points in _annotations(case).items():
            pts = np.asarray(points, dtype=float)
            outside = (pts[:, 0] < 0) | (pts[:, 0] > width) | (pts[:, 1] < 0) | (pts[:, 1] > height)
            if outside.any():
                names = [landmarks.names[i] for i in np.flatnonzero(outside)]
                problems.append(
                    Problem(
                        index,
                        f"case {case.id} {annotator}: landmarks {', '.join(names)} lie outside "
                        f"the {width} x {height} image {info.path.name}",
                        "landmark",
                    )
                )
    return problems


def _swc_problem(path: Path, case_id: str) -> Problem | None:
    if not path.exists():
        return Problem(path, f"file not found (listed for case {case_id})", "missing")
    try:
        nodes = read_swc(path)
    except DataError as err:
        return Problem(path, error_message(err, path), "swc")
    parents = nodes["parent"]
    orphans = parents[(parents != -1) & ~np.isin(parents, nodes["id"])]
    if orphans.size:
        shown = ", ".join(str(int(p)) for p in orphans[:5])
        return Problem(
            path, f"{orphans.size} nodes have parents that are not node ids ({shown})", "swc"
        )
    return None


def check_swc(ds: Dataset) -> list[Problem]:
    """Reference and automatic tracings must parse and form trees (every parent exists)."""
    problems = []
    for case in ds.cases:
        for path in [case.meta["swc"], *case.meta.get("swc_auto", {}).values()]:
            problem = _swc_problem(Path(path), case.id)
            problems += [problem] if problem else []
    return problems

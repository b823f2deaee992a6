"""Landmark sets: ``images/`` plus a ``landmarks.json`` of reference points (cephalometric)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medssl.data.dataset import Case, Dataset
from medssl.data.io import read_landmarks
from medssl.data.layouts._common import first_ending, is_image_file, split_ending


def _images_by_stem(folder: Path) -> dict[str, Path]:
    return {split_ending(p.name)[0]: p for p in sorted(folder.iterdir()) if is_image_file(p)}


def read(root: Path) -> Dataset:
    """images/ + landmarks.json (cephalometric, phantom landmark2d): target = reference points.

    Images without landmarks are the unlabelled pool; landmarks without an image keep the
    expected path so that ``data check`` reports the missing file.
    """
    landmarks = read_landmarks(root / "landmarks.json")
    images = _images_by_stem(root / "images")
    ending = first_ending(images.values(), ".png")
    classes = landmarks.extra.get("classes") or {}
    split = landmarks.extra.get("split")
    cases = []
    for case_id in list(landmarks.cases) + [s for s in images if s not in landmarks.cases]:
        meta: dict[str, Any] = {}
        if case_id in landmarks.cases:
            meta["annotations"] = landmarks.cases[case_id]
        if case_id in classes:
            meta["class"] = int(classes[case_id])
        if isinstance(split, dict) and case_id in split:
            meta["split"] = split[case_id]
        cases.append(
            Case(
                id=case_id,
                images=[images.get(case_id, root / "images" / f"{case_id}{ending}")],
                target=landmarks.reference(case_id) if case_id in landmarks.cases else None,
                meta=meta,
            )
        )
    names = landmarks.extra.get("class_names")
    labels = {n: i for i, n in enumerate(names)} if names else {str(v): v for v in classes.values()}
    return Dataset(
        root=root,
        layout="landmarks",
        cases=cases,
        labels=dict(sorted(labels.items(), key=lambda kv: kv[1])),
        spatial_dims=2,
        file_ending=ending,
        task="landmarks",
        spacing_known=landmarks.spacing_mm is not None,
        extra={"landmarks": landmarks},
    )

"""nnU-Net v2 raw folders: ``imagesTr/`` (+ ``imagesTs/``), ``labelsTr/``, ``dataset.json``.

Cases come from scanning the image folders, so a dataset.json without a ``training`` list still
reads; entries the json does list are merged in, and an optional ``splits.json`` (acdc) fixes
each case's split.

Image-only folders (pretraining, an unlabelled pool) read too: without ``labelsTr/`` every case
is unlabelled, and a dataset.json without ``labels`` is fine. Such a folder may even leave out
dataset.json: the file ending and the channel count are then taken from ``imagesTr/`` (the
ending of the first ``*_0000.*`` file, one channel per ``_NNNN`` suffix) and
``extra["inferred"]`` says so. With ``labelsTr/`` dataset.json stays required, since only it
names the labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medssl.data.dataset import Case, Dataset
from medssl.data.layouts._common import (
    CHANNEL_SUFFIX,
    channel_files,
    channel_names,
    dataset_from_json,
    dataset_json,
    indexed_cases,
    read_json,
    split_ending,
)
from medssl.errors import file_error


def _scanned_cases(root: Path, ending: str, n_channels: int) -> dict[str, Case]:
    """Cases of imagesTr/ (labelled when labelsTr/<case><ending> exists) and imagesTs/ (test)."""
    cases: dict[str, Case] = {}
    for folder, split in (("imagesTr", None), ("imagesTs", "test")):
        directory = root / folder
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob(f"*_0000{ending}")):
            case_id = path.name[: -len(f"_0000{ending}")]
            label = root / "labelsTr" / f"{case_id}{ending}"
            cases[case_id] = Case(
                id=case_id,
                images=channel_files(directory, case_id, ending, n_channels),
                label=label if split is None and label.is_file() else None,
                meta={"split": split} if split else {},
            )
    return cases


def _apply_splits(root: Path, cases: dict[str, Case]) -> dict[str, Any]:
    """``splits.json`` (acdc): each listed case gets ``meta["split"]`` and the cases take the
    json's list order (SSL4MIS labels "the first N patients" of its train list); the json is
    returned."""
    path = root / "splits.json"
    if not path.is_file():
        return {}
    splits = read_json(path)
    listed: list[str] = []
    for split in ("train", "val", "test"):
        for case_id in splits.get(split, []) if isinstance(splits, dict) else []:
            if case_id in cases:
                cases[case_id].meta["split"] = split
                listed.append(case_id)
    ordered = {i: cases[i] for i in listed} | {i: c for i, c in cases.items() if i not in listed}
    cases.clear()
    cases.update(ordered)
    return {"splits": splits}


def _inferred_meta(root: Path) -> dict[str, Any]:
    """file_ending and channel_names of an image-only folder without dataset.json."""
    first = sorted((root / "imagesTr").glob("*_0000.*"))[0]
    ending = split_ending(first.name)[1]
    stems = (split_ending(p.name)[0] for p in (root / "imagesTr").glob(f"*{ending}"))
    found = (CHANNEL_SUFFIX.search(stem) for stem in stems)
    n_channels = 1 + max((int(m.group(1)) for m in found if m), default=0)
    return {
        "file_ending": ending,
        "channel_names": {str(k): f"channel_{k}" for k in range(n_channels)},
    }


def read(root: Path) -> Dataset:
    """nnU-Net v2 raw: imagesTr/ (+ imagesTs/), labelsTr/, dataset.json (+ splits.json)."""
    meta = dataset_json(root)
    inferred = not meta and not (root / "labelsTr").exists()
    if inferred:
        meta = _inferred_meta(root)
    if not meta:
        raise file_error(
            root / "dataset.json",
            "missing next to imagesTr/",
            "write one with channel_names, labels and file_ending (nnU-Net v2)",
        )
    ending = meta.get("file_ending", ".nii.gz")
    n_channels = max(1, len(channel_names(meta)))
    cases = _scanned_cases(root, ending, n_channels)
    for case in indexed_cases(root, meta, nnunet=True):
        known = cases.setdefault(case.id, case)
        known.label = known.label or case.label
    extra = _apply_splits(root, cases)
    if inferred:
        n = len(meta["channel_names"])
        extra["inferred"] = (
            f"file_ending {meta['file_ending']} and {n} channel{'s' * (n != 1)} taken from "
            "imagesTr/ (write a dataset.json to name them)"
        )
    ds = dataset_from_json(root, "nnunet", list(cases.values()), meta, extra=extra)
    if inferred:
        ds.extra["dataset_json"] = {}  # nothing on disk: no file names to match in data check
    return ds

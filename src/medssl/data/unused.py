"""Files under a dataset folder that no case uses, and why: what silently shrinks a dataset.

A layout reader lists only the files its naming rules match, so an nnU-Net image without its
``_0000`` suffix, a label named ``<case>_seg`` or a label without its image is simply not there
for training, and nothing said so. ``data check`` names every file it did not use. A data file
(image, label, tracing) in a folder the layout reads cases from was meant to be used: that is a
problem. Anything else (an extra folder such as oasis2d's ``labelsTr_seg4/``, a file dataset.json
names for another purpose, a domain left out by ``--domains``) is named as a note and does not
fail the check. Documentation and index files (README, LICENSE, .json, .csv, .txt, .md, ...)
and hidden files are not named at all.

Only names are compared here, no file is opened, so this costs one directory walk.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medssl.data.dataset import Dataset
from medssl.data.layouts import CHANNEL_SUFFIX, IMAGE_ENDINGS, split_ending

DATA_ENDINGS = (*IMAGE_ENDINGS, ".swc", ".npz")
METADATA_ENDINGS = (
    ".json",
    ".csv",
    ".tsv",
    ".txt",
    ".md",
    ".rst",
    ".yaml",
    ".yml",
    ".pdf",
    ".html",
    ".htm",
)
METADATA_PREFIXES = ("readme", "license", "licence", "copying", "citation", "notice", "changelog")
METADATA_NAMES = ("sha256sums", "sha1sums", "md5sums", "checksums")
# What each layout calls the index that lists its cases (named in the "not used" reasons).
INDEX = {
    "msd": "dataset.json's training/test lists",
    "multidomain": "dataset.json's training list",
    "manifest": "the manifest",
    "swc": "manifest.json",
    "landmarks": "images/",
    "files": "the folder",
}


@dataclass(frozen=True)
class Unused:
    """A file no case uses: why, and (for a problem) how to fix it."""

    path: Path
    why: str
    fix: str
    problem: bool


def _norm(path: Path) -> Path:
    """Index paths may hold ``./`` or ``..``; compare files by their normalised path."""
    return Path(os.path.normpath(path))


def _is_metadata(path: Path) -> bool:
    name = path.name.lower()
    return (
        name.endswith(METADATA_ENDINGS)
        or name.startswith(METADATA_PREFIXES)
        or name in METADATA_NAMES
    )


def _is_data(path: Path) -> bool:
    return split_ending(path.name)[1].lower() in DATA_ENDINGS


def _walk(root: Path) -> Iterator[Path]:
    """Every file under ``root`` in sorted order, hidden files and folders skipped."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(folder) / name


# ------------------------------------------------------------------------------------------
# what the dataset uses, and where it reads cases from
# ------------------------------------------------------------------------------------------


def _used_paths(ds: Dataset) -> set[Path]:
    """Every file or folder (a DICOM series) a case reads, and the MedMNIST npz."""
    used: list[Path] = []
    for case in ds.cases:
        used += case.images
        used += [case.label] if case.label is not None else []
        for key in ("mask", "swc"):
            used += [Path(case.meta[key])] if case.meta.get(key) is not None else []
        used += [Path(p) for p in (case.meta.get("swc_auto") or {}).values()]
    used += [ds.extra["npz"]] if "npz" in ds.extra else []
    return {_norm(p) for p in used}


def _is_used(path: Path, used: set[Path]) -> bool:
    """``path`` itself, or a file inside a used folder (a DICOM series)."""
    return path in used or any(parent in used for parent in path.parents)


def case_folders(ds: Dataset, used: set[Path]) -> set[Path]:
    """Folders the layout reads cases from: nnU-Net's fixed ones, else those of the case files.

    Only a data file in one of these is a problem when unused: it sits where the cases are.
    """
    if ds.layout == "nnunet":
        return {_norm(ds.root / name) for name in ("imagesTr", "labelsTr", "imagesTs")}
    if ds.layout == "medmnist":
        return set()
    return {p.parent for p in used}


def _mentions(meta: Any, key: str = "", domain: str = "") -> Iterator[tuple[str, str, str]]:
    """(path-like string, its dotted key, its entry's domain) for every string of a json.

    A string is taken up to its first space (oasis2d's ``"labelsTr_seg4 (same case names ...)"``)
    and without ``./`` or a trailing ``/``; list positions are left out of the key
    (``training.votes.cup``).
    """
    if isinstance(meta, dict):
        domain = meta["domain"] if isinstance(meta.get("domain"), str) else domain
        for k, v in meta.items():
            yield from _mentions(v, f"{key}.{k}" if key else str(k), domain)
    elif isinstance(meta, list):
        for v in meta:
            yield from _mentions(v, key, domain)
    elif isinstance(meta, str) and meta.strip():
        text = meta.split()[0].removeprefix("./").rstrip("/")
        if text:
            yield text, key, domain


def _mention_index(ds: Dataset) -> dict[str, tuple[str, str]]:
    return {text: (key, dom) for text, key, dom in _mentions(ds.extra.get("dataset_json") or {})}


def _mentioned(rel: str, index: dict[str, tuple[str, str]]) -> tuple[str, str, str] | None:
    """(what is named, key, domain) when dataset.json names the file or a folder above it."""
    parts = rel.split("/")
    for n in range(len(parts), 0, -1):
        named = "/".join(parts[:n])
        if named in index:
            return (named, *index[named])
    return None


# ------------------------------------------------------------------------------------------
# why a data file in a case folder is not used
# ------------------------------------------------------------------------------------------


def _unlabelled_match(stem: str, ds: Dataset) -> str | None:
    """The unlabelled case a misnamed label most likely belongs to (``case_004_seg``)."""
    matches = [
        c.id
        for c in ds.cases
        if not c.has_label
        and c.meta.get("split") != "test"
        and (stem.startswith(c.id) or c.id.startswith(stem))
    ]
    return max(matches, key=len) if matches else None


def _nnunet_label(ds: Dataset, stem: str, ending: str) -> tuple[str, str]:
    """A labelsTr/ file whose case is not an imagesTr/ case: missing image or wrong name."""
    case = next((c for c in ds.cases if c.id == stem), None)
    if case is not None and case.meta.get("split") == "test":
        return (
            f"label of test case {stem}, whose image is in imagesTs/ (test cases are not labelled)",
            "move the image to imagesTr/ to train on it, or the label out of labelsTr/",
        )
    why = f"label with no image imagesTr/{stem}_0000{ending}"
    if (ds.root / "imagesTr" / f"{stem}{ending}").is_file():
        return why, f"rename imagesTr/{stem}{ending} to imagesTr/{stem}_0000{ending}"
    guess = _unlabelled_match(stem, ds)
    if guess is not None:
        return why, f"rename it to labelsTr/{guess}{ending} (case {guess} has no label)"
    return why, f"add imagesTr/{stem}_0000{ending} or remove the label"


def _nnunet_reason(ds: Dataset, path: Path) -> tuple[str, str]:
    """nnU-Net reads ``imagesTr|imagesTs/<case>_<channel><file_ending>`` and ``labelsTr/<case>``."""
    ending = ds.file_ending or ".nii.gz"
    stem, found = split_ending(path.name)
    folder = path.parent.name
    if found.lower() != ending.lower():
        source = (
            "the file_ending taken from imagesTr/"
            if "inferred" in ds.extra
            else ("dataset.json's file_ending")
        )
        return (
            f"ending {found or '(none)'} is not {source} {ending}",
            f"convert it to {ending} or remove it",
        )
    if folder == "labelsTr":
        return _nnunet_label(ds, stem, ending)
    suffix = CHANNEL_SUFFIX.search(stem)
    if suffix is None:
        return (
            f"image name has no channel suffix (nnU-Net reads <case>_0000{ending})",
            f"rename it to {folder}/{stem}_0000{ending}",
        )
    case_id, channel = stem[: suffix.start()], int(suffix.group(1))
    if channel >= ds.num_channels:
        return (
            f"channel {suffix.group(1)} but dataset.json channel_names lists "
            f"{ds.num_channels} channel{'s' * (ds.num_channels != 1)}",
            f"add the channel to channel_names, or rename it to {stem}_0000{ending} if it is "
            "a case's only image",
        )
    return (
        f"case {case_id} has no channel 0 image {case_id}_0000{ending}",
        f"add or rename {folder}/{case_id}_0000{ending}",
    )


def _files_reason(ds: Dataset, path: Path) -> tuple[str, str]:
    stem, ending = split_ending(path.name)
    if stem.endswith("_label"):
        base = stem[: -len("_label")]
        return (
            f"label with no image {base}_image{ending} (or {base}{ending}) beside it",
            "add the image, or rename the pair to <name>_image / <name>_label",
        )
    return "another file of the same name (another ending) is the case", "rename or remove it"


def _listed_reason(ds: Dataset, path: Path, rel: str) -> tuple[str, str]:
    """Layouts with an index (MSD, multi-domain, manifests): the file is not in the index."""
    index = INDEX.get(ds.layout, "the index")
    guess = _unlabelled_match(split_ending(path.name)[0], ds)
    if guess is not None and ds.layout in ("msd", "multidomain"):
        return (
            f"not in {index}",
            f"set the label of case {guess} to ./{rel}, or list it as its own case",
        )
    return f"not in {index}", f"list it there or move it out of {path.parent.name}/"


def _problem_reason(ds: Dataset, path: Path, rel: str) -> tuple[str, str]:
    if ds.layout == "nnunet":
        return _nnunet_reason(ds, path)
    if ds.layout == "files":
        return _files_reason(ds, path)
    return _listed_reason(ds, path, rel)


# ------------------------------------------------------------------------------------------
# entry point
# ------------------------------------------------------------------------------------------


def _note(ds: Dataset, path: Path, rel: str, mention: tuple[str, str, str] | None) -> Unused:
    if not _is_data(path):
        return Unused(path, "not an image, label or index file of this layout", "", False)
    if mention is not None:
        named, key, _ = mention
        what = "it" if named == rel else f"its folder {named}/"
        return Unused(
            path,
            f"dataset.json names {what} ('{key}'), but no case reads it as an image or label",
            "",
            False,
        )
    return Unused(path, f"not in a folder the {ds.layout} layout reads cases from", "", False)


def unused_files(ds: Dataset) -> list[Unused]:
    """Every file under the dataset folder that no case uses, sorted by path, with why."""
    root = _norm(ds.root)
    if not root.is_dir():
        return []
    used = _used_paths(ds)
    folders = case_folders(ds, used)
    index = _mention_index(ds)
    selected = set(ds.extra.get("domains") or ())
    found = []
    for path in _walk(root):
        if _is_used(path, used) or _is_metadata(path):
            continue
        rel = path.relative_to(root).as_posix()
        mention = _mentioned(rel, index)
        if mention is not None and mention[2] and selected and mention[2] not in selected:
            found.append(Unused(path, f"domain '{mention[2]}' not selected (--domains)", "", False))
        elif path.parent in folders and _is_data(path):
            found.append(Unused(path, *_problem_reason(ds, path, rel), True))
        else:
            found.append(_note(ds, path, rel, mention))
    return found

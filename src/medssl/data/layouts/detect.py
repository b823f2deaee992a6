"""Recognise a dataset's layout from what is on disk, and hand the folder to its reader.

The layout is never configured, so detection is an ordered list of rules: the first match wins,
and the most specific index comes first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from medssl.data.dataset import Dataset
from medssl.data.layouts import files, landmarks, manifest, medmnist, msd, multidomain, nnunet, swc
from medssl.data.layouts._common import dataset_json
from medssl.errors import file_error

LOOKED_FOR = (
    "no dataset layout recognised (looked for: dataset.json with 'domains' (multi-domain), "
    "imagesTr/<case>_0000.* (nnU-Net), dataset.json with a 'training' or 'unlabelled' list "
    "(MSD), manifest.json + swc/ (SWC tracings), landmarks.json + images/ (landmarks), a .npz "
    "(MedMNIST), manifest.csv (CSV manifest), image files or DICOM series (files))"
)
# Users have the README, not the design notes: point them at its section on layouts.
SEE_README = "see the README, section 'Datasets on disk'"


def _existing(root: str | Path) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise file_error(root, "does not exist", "check the --data path")
    return root


def _is_multidomain(root: Path, meta: dict[str, Any]) -> bool:
    training = meta.get("training")
    return (
        bool(meta.get("domains"))
        and isinstance(training, list)
        and any(isinstance(e, dict) and "domain" in e for e in training)
    )


def _is_nnunet(root: Path, meta: dict[str, Any]) -> bool:
    return (root / "imagesTr").is_dir() and any((root / "imagesTr").glob("*_0000.*"))


def _is_msd(root: Path, meta: dict[str, Any]) -> bool:
    """A non-empty ``training`` list, or only an ``unlabelled`` one (an image-only index)."""
    return any(isinstance(meta.get(k), list) and bool(meta[k]) for k in ("training", "unlabelled"))


def _is_swc(root: Path, meta: dict[str, Any]) -> bool:
    return (root / "manifest.json").is_file() and (root / "swc").is_dir()


def _is_landmarks(root: Path, meta: dict[str, Any]) -> bool:
    return (root / "landmarks.json").is_file() and (root / "images").is_dir()


def _is_medmnist(root: Path, meta: dict[str, Any]) -> bool:
    return any(root.glob("*.npz"))


def _is_manifest(root: Path, meta: dict[str, Any]) -> bool:
    return (root / "manifest.csv").is_file()


def _is_files(root: Path, meta: dict[str, Any]) -> bool:
    return next(files.image_sources(root), None) is not None


DETECTORS: tuple[tuple[str, Callable[[Path, dict[str, Any]], bool]], ...] = (
    ("multidomain", _is_multidomain),
    ("nnunet", _is_nnunet),
    ("msd", _is_msd),
    ("swc", _is_swc),
    ("landmarks", _is_landmarks),
    ("medmnist", _is_medmnist),
    ("manifest", _is_manifest),
    ("files", _is_files),
)

# Multi-domain is not here: its reader also takes ``domains`` (see :func:`load_dataset`).
READERS: dict[str, Callable[[Path], Dataset]] = {
    "nnunet": nnunet.read,
    "msd": msd.read,
    "medmnist": medmnist.read,
    "landmarks": landmarks.read,
    "manifest": manifest.read,
    "swc": swc.read,
    "files": files.read,
}


def detect_layout(root: str | Path) -> str:
    """Name the layout of ``root`` (a folder, an ``.npz`` or a manifest ``.csv``).

    The first matching rule wins; the order puts the most specific index first (jsrt has
    ``landmarks.json`` but its ``dataset.json`` training list makes it ``msd``).
    """
    root = _existing(root)
    if root.is_file():
        ending = root.suffix.lower()
        if ending in (".npz", ".csv"):
            return "medmnist" if ending == ".npz" else "manifest"
        raise file_error(root, "is a file, not a dataset (folder, .npz or .csv)", SEE_README)
    meta = dataset_json(root)
    for name, matches in DETECTORS:
        if matches(root, meta):
            return name
    raise file_error(root, LOOKED_FOR, SEE_README)


def load_dataset(
    root: str | Path, domains: Sequence[str] | None = None, *, strict: bool = True
) -> Dataset:
    """Detect the layout of ``root`` and read it; ``domains`` selects multi-domain centres.

    ``strict=False`` (``data check``) reads a loose-files folder whose label names cannot be
    derived instead of refusing it, so that the check can list that with everything else.
    """
    root = _existing(root)
    layout = detect_layout(root)
    if layout == "multidomain":
        return multidomain.read(root, domains)
    if domains:
        raise file_error(
            root, f"--domains given but this {layout} dataset has no domains", "drop --domains"
        )
    if layout == "files":
        return files.read(root, strict=strict)
    return READERS[layout](root)


def load_images_only(root: str | Path, domains: Sequence[str] | None = None) -> Dataset:
    """The dataset at ``root`` as pretraining reads it: images only, labels ignored.

    :meth:`Dataset.images_only` of :func:`load_dataset` read with ``strict=False``, so that
    label files whose names cannot be derived (a loose folder of 0/255 masks) do not stop a
    set from serving its images.
    """
    return load_dataset(root, domains, strict=False).images_only()

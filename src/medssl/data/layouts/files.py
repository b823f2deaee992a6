"""Loose files: any folder of images or DICOM series, the layout of last resort.

Also what detection uses to decide that a folder holds images at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from medssl.data.dataset import Case, Dataset
from medssl.data.layouts._common import is_image_file, split_ending


def _is_dicom(path: Path) -> bool:
    """``.dcm``, or an extension-less file with the DICOM preamble (common for series)."""
    if path.suffix.lower() == ".dcm":
        return True
    if path.suffix:
        return False
    with path.open("rb") as f:
        return f.read(132)[128:] == b"DICM"


def image_sources(root: Path) -> Iterator[Path]:
    """Image files and DICOM series folders under ``root``, recursively, hidden ones skipped."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(folder)
        paths = [here / f for f in sorted(files) if not f.startswith(".")]
        if any(_is_dicom(p) for p in paths):
            yield here
        yield from (p for p in paths if is_image_file(p) and p.suffix.lower() != ".dcm")


def read(root: Path) -> Dataset:
    """Any folder of images: one case per file or DICOM series; ``X_label`` labels ``X_image``.

    Ids are paths relative to ``root`` without ending (``clara_spleen8/spleen_8``), so files
    of the same name in different folders stay distinct cases.
    """
    sources = {
        p.parent / split_ending(p.name)[0] if p.is_file() else p: p for p in image_sources(root)
    }
    cases = []
    for key, path in sources.items():
        if key.name.endswith("_label") and key.with_name(key.name[:-6] + "_image") in sources:
            continue
        base = key.with_name(key.name[:-6]) if key.name.endswith("_image") else key
        rel = base.relative_to(root).as_posix() if base != root else root.name
        cases.append(Case(id=rel, images=[path], label=sources.get(Path(f"{base}_label"))))
    return Dataset(root=root, layout="files", cases=cases)

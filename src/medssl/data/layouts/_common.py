"""What the layout readers share: file endings, JSON indexes, index entries, the Dataset builder.

Kept in one place so that every reader names cases, resolves paths and reports a bad index the
same way; a helper lives here only once two or more readers use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from medssl.data.dataset import Case, Dataset
from medssl.errors import file_error

IMAGE_ENDINGS = (
    ".nii.gz",
    ".nii",
    ".nrrd",
    ".nhdr",
    ".mha",
    ".mhd",
    ".png",
    ".jpg",
    ".jpeg",
    ".tif",
    ".tiff",
    ".bmp",
    ".dcm",
)
CHANNEL_SUFFIX = re.compile(r"_(\d{4})$")


# ------------------------------------------------------------------------------------------
# file names
# ------------------------------------------------------------------------------------------


def split_ending(name: str) -> tuple[str, str]:
    """``"a_0000.nii.gz"`` -> ``("a_0000", ".nii.gz")``: double endings are one ending."""
    lower = name.lower()
    for ending in IMAGE_ENDINGS:
        if lower.endswith(ending):
            return name[: -len(ending)], name[-len(ending) :]
    stem, dot, ext = name.rpartition(".")
    return (stem, dot + ext) if dot and stem else (name, "")


def is_image_file(path: Path) -> bool:
    return path.is_file() and split_ending(path.name)[1].lower() in IMAGE_ENDINGS


def first_ending(images: Iterable[Path], default: str) -> str:
    """The dataset's file ending, taken from its first image (``default`` when it has none)."""
    first = next(iter(images), None)
    return split_ending(first.name)[1] if first is not None else default


def case_id_or_stem(given: Any, image: Path) -> str:
    """An index's own id for a case, else the image's name without ending."""
    return str(given or split_ending(image.name)[0])


def resolve(root: Path, ref: str) -> Path:
    """A path from an index file, relative to the index's folder (``./`` prefix optional)."""
    return root / ref


def resolve_optional(root: Path, ref: str | None) -> Path | None:
    """:func:`resolve` for an optional field (a label or mask an entry may leave out)."""
    return resolve(root, ref) if ref else None


def channel_files(folder: Path, case_id: str, ending: str, n_channels: int) -> list[Path]:
    return [folder / f"{case_id}_{k:04d}{ending}" for k in range(n_channels)]


# ------------------------------------------------------------------------------------------
# JSON indexes and their entries
# ------------------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    """Parse a JSON index, turning a syntax error into a one-line message naming the file."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise file_error(path, f"not valid JSON ({err.msg}, line {err.lineno})", "fix it") from err
    except (OSError, UnicodeDecodeError) as err:
        raise file_error(path, f"cannot be read ({err})", "check the file") from err


def dataset_json(root: Path) -> dict[str, Any]:
    """The folder's ``dataset.json``, or ``{}`` when there is none (it is optional for some)."""
    path = root / "dataset.json"
    if not path.is_file():
        return {}
    meta = read_json(path)
    if not isinstance(meta, dict):
        raise file_error(path, "is not a JSON object", "write dataset.json as {key: value}")
    return meta


def index_entry(entry: Any, index: Path) -> dict[str, Any]:
    """An index entry as a dict with an ``image``; a bare string is the image path."""
    entry = entry if isinstance(entry, dict) else {"image": entry}
    if not isinstance(entry.get("image"), str):
        raise file_error(index, f"entry {entry} has no 'image' path", "give every entry an image")
    return entry


def fields_except(entry: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """An entry's fields other than ``known`` ones (paths, id): they go into ``Case.meta``."""
    skip = set(known)
    return {k: v for k, v in entry.items() if k not in skip}


def unique_ids(cases: list[Case], index: Path) -> list[Case]:
    """Case ids name runs, splits and predictions, so two cases may never share one."""
    seen: dict[str, Case] = {}
    for case in cases:
        if case.id in seen:
            raise file_error(
                index, f"two entries have the case id '{case.id}'", "give every entry its own id"
            )
        seen[case.id] = case
    return cases


def _entry_images(
    root: Path, ref: str, ending: str, n_channels: int, channel_suffix: bool
) -> tuple[str, list[Path]]:
    """Case id and image files of an index entry: a case prefix, a channel file or one file.

    A prefix without ending (``./imagesTr/x``, brats2018) expands to every channel, and so does
    ``x_0000.nii.gz`` in nnU-Net (``channel_suffix``); otherwise a path with an ending (jsrt's
    ``./images/x.png``, an MSD 4D ``.nii.gz``) is the case's only file.
    """
    path = resolve(root, ref)
    stem, found = split_ending(path.name)
    prefix = CHANNEL_SUFFIX.sub("", stem) if channel_suffix else stem
    if found.lower() in IMAGE_ENDINGS and prefix == stem:
        return stem, [path]
    return prefix, channel_files(path.parent, prefix, ending or found, n_channels)


def indexed_cases(root: Path, meta: dict[str, Any], nnunet: bool) -> list[Case]:
    """Cases listed in dataset.json: ``training`` (labelled), ``unlabelled`` and ``test``.

    nnU-Net and MSD share this index format; ``nnunet`` reads ``x_0000.*`` as a channel file.
    """
    ending = meta.get("file_ending", "")
    n_channels = max(1, len(channel_names(meta)))
    cases = []
    for key in ("training", "unlabelled", "test"):
        for raw in meta.get(key) or []:
            entry = index_entry(raw, root / "dataset.json")
            case_id, images = _entry_images(root, entry["image"], ending, n_channels, nnunet)
            label = entry.get("label") if key == "training" else None
            cases.append(
                Case(
                    id=case_id,
                    images=images,
                    label=resolve_optional(root, label),
                    meta={"split": "test"} if key == "test" else {},
                )
            )
    return cases


# ------------------------------------------------------------------------------------------
# dataset.json fields and the Dataset built from them
# ------------------------------------------------------------------------------------------


def label_map(meta: dict[str, Any]) -> dict[str, int]:
    """``labels`` as name -> int, accepting nnU-Net (name -> int) and MSD (``"0"`` -> name)."""
    labels = meta.get("labels") or {}
    if labels and all(str(k).isdigit() and isinstance(v, str) for k, v in labels.items()):
        return {v: int(k) for k, v in labels.items()}
    return {k: v for k, v in labels.items() if isinstance(v, int)}


def _regions(meta: dict[str, Any]) -> dict[str, list[int]]:
    """nnU-Net region labels (name -> [ints]); their members are valid label values too."""
    return {k: list(v) for k, v in (meta.get("labels") or {}).items() if isinstance(v, list)}


def channel_names(meta: dict[str, Any]) -> dict[str, str]:
    return dict(meta.get("channel_names") or meta.get("modality") or {})


def _spatial_dims(meta: dict[str, Any]) -> int | None:
    return {"2D": 2, "3D": 3}.get(str(meta.get("tensorImageSize", "")).upper())


def dataset_from_json(
    root: Path,
    layout: str,
    cases: list[Case],
    meta: dict[str, Any],
    *,
    labels: dict[str, int] | None = None,
    file_ending: str | None = None,
    task: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Dataset:
    """A Dataset whose labels, channels, dims, ending and spacing flag come from dataset.json."""
    extra = {"dataset_json": meta, **(extra or {})}
    if _regions(meta):
        extra["regions"] = _regions(meta)
    return Dataset(
        root=root,
        layout=layout,
        cases=cases,
        labels=labels or label_map(meta),
        channel_names=channel_names(meta),
        spatial_dims=_spatial_dims(meta),
        file_ending=file_ending if file_ending is not None else meta.get("file_ending", ""),
        task=task or meta.get("task"),
        spacing_known=bool(meta.get("spacing_known", True)),
        extra=extra,
    )

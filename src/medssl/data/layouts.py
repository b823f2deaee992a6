"""Detect a dataset's on-disk layout and read it into the :class:`Dataset` model.

The layout is never configured: :func:`detect_layout` recognises it from what is on disk (see
DESIGN.md "Datasets on disk"), so ``--data DIR`` works on any supported folder as it is. Readers
only list files and parse the small JSON/CSV indexes; they do not read voxels (``data check`` and
the loaders do), except for MedMNIST, whose cases live inside the npz. Files an index refers to
are listed even when missing, so that ``data check`` can name every one of them.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medssl.data.dataset import Case, Dataset
from medssl.data.io import read_landmarks, read_npz
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
LOOKED_FOR = (
    "no dataset layout recognised (looked for: dataset.json with 'domains' (multi-domain), "
    "imagesTr/<case>_0000.* (nnU-Net), dataset.json with a 'training' list (MSD), manifest.json "
    "+ swc/ (SWC tracings), landmarks.json + images/ (landmarks), a .npz (MedMNIST), "
    "manifest.csv (CSV manifest), image files or DICOM series (files))"
)
SEE_DESIGN = "see DESIGN.md 'Datasets on disk'"


# ------------------------------------------------------------------------------------------
# small helpers
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


def read_json(path: Path) -> Any:
    """Parse a JSON index, turning a syntax error into a one-line message naming the file."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise file_error(path, f"not valid JSON ({err.msg}, line {err.lineno})", "fix it") from err
    except (OSError, UnicodeDecodeError) as err:
        raise file_error(path, f"cannot be read ({err})", "check the file") from err


def _dataset_json(root: Path) -> dict[str, Any]:
    """The folder's ``dataset.json``, or ``{}`` when there is none (it is optional for some)."""
    path = root / "dataset.json"
    if not path.is_file():
        return {}
    meta = read_json(path)
    if not isinstance(meta, dict):
        raise file_error(path, "is not a JSON object", "write dataset.json as {key: value}")
    return meta


def _existing(root: str | Path) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise file_error(root, "does not exist", "check the --data path")
    return root


def _resolve(root: Path, ref: str) -> Path:
    """A path from an index file, relative to the index's folder (``./`` prefix optional)."""
    return root / ref


def _label_map(meta: dict[str, Any]) -> dict[str, int]:
    """``labels`` as name -> int, accepting nnU-Net (name -> int) and MSD (``"0"`` -> name)."""
    labels = meta.get("labels") or {}
    if labels and all(str(k).isdigit() and isinstance(v, str) for k, v in labels.items()):
        return {v: int(k) for k, v in labels.items()}
    return {k: v for k, v in labels.items() if isinstance(v, int)}


def _regions(meta: dict[str, Any]) -> dict[str, list[int]]:
    """nnU-Net region labels (name -> [ints]); their members are valid label values too."""
    return {k: list(v) for k, v in (meta.get("labels") or {}).items() if isinstance(v, list)}


def _channel_names(meta: dict[str, Any]) -> dict[str, str]:
    return dict(meta.get("channel_names") or meta.get("modality") or {})


def _spatial_dims(meta: dict[str, Any]) -> int | None:
    return {"2D": 2, "3D": 3}.get(str(meta.get("tensorImageSize", "")).upper())


def _dataset(
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
        labels=labels or _label_map(meta),
        channel_names=_channel_names(meta),
        spatial_dims=_spatial_dims(meta),
        file_ending=file_ending if file_ending is not None else meta.get("file_ending", ""),
        task=task or meta.get("task"),
        spacing_known=bool(meta.get("spacing_known", True)),
        extra=extra,
    )


def _unique_ids(cases: list[Case], index: Path) -> list[Case]:
    """Case ids name runs, splits and predictions, so two cases may never share one."""
    seen: dict[str, Case] = {}
    for case in cases:
        if case.id in seen:
            raise file_error(
                index, f"two entries have the case id '{case.id}'", "give every entry its own id"
            )
        seen[case.id] = case
    return cases


# ------------------------------------------------------------------------------------------
# detection
# ------------------------------------------------------------------------------------------


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
    return isinstance(meta.get("training"), list) and bool(meta["training"])


def _is_swc(root: Path, meta: dict[str, Any]) -> bool:
    return (root / "manifest.json").is_file() and (root / "swc").is_dir()


def _is_landmarks(root: Path, meta: dict[str, Any]) -> bool:
    return (root / "landmarks.json").is_file() and (root / "images").is_dir()


def _is_medmnist(root: Path, meta: dict[str, Any]) -> bool:
    return any(root.glob("*.npz"))


def _is_manifest(root: Path, meta: dict[str, Any]) -> bool:
    return (root / "manifest.csv").is_file()


def _is_files(root: Path, meta: dict[str, Any]) -> bool:
    return next(_image_sources(root), None) is not None


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
        raise file_error(root, "is a file, not a dataset (folder, .npz or .csv)", SEE_DESIGN)
    meta = _dataset_json(root)
    for name, matches in DETECTORS:
        if matches(root, meta):
            return name
    raise file_error(root, LOOKED_FOR, SEE_DESIGN)


def load_dataset(root: str | Path, domains: Sequence[str] | None = None) -> Dataset:
    """Detect the layout of ``root`` and read it; ``domains`` selects multi-domain centres."""
    root = _existing(root)
    layout = detect_layout(root)
    if layout == "multidomain":
        return _read_multidomain(root, domains)
    if domains:
        raise file_error(
            root, f"--domains given but this {layout} dataset has no domains", "drop --domains"
        )
    return READERS[layout](root)


# ------------------------------------------------------------------------------------------
# nnU-Net and MSD
# ------------------------------------------------------------------------------------------


def _channel_files(folder: Path, case_id: str, ending: str, n_channels: int) -> list[Path]:
    return [folder / f"{case_id}_{k:04d}{ending}" for k in range(n_channels)]


def _entry(entry: Any, index: Path) -> dict[str, Any]:
    """An index entry as a dict with an ``image``; a bare string is the image path."""
    entry = entry if isinstance(entry, dict) else {"image": entry}
    if not isinstance(entry.get("image"), str):
        raise file_error(index, f"entry {entry} has no 'image' path", "give every entry an image")
    return entry


def _entry_images(
    root: Path, ref: str, ending: str, n_channels: int, channel_suffix: bool
) -> tuple[str, list[Path]]:
    """Case id and image files of an index entry: a case prefix, a channel file or one file.

    A prefix without ending (``./imagesTr/x``, brats2018) expands to every channel, and so does
    ``x_0000.nii.gz`` in nnU-Net (``channel_suffix``); otherwise a path with an ending (jsrt's
    ``./images/x.png``, an MSD 4D ``.nii.gz``) is the case's only file.
    """
    path = _resolve(root, ref)
    stem, found = split_ending(path.name)
    prefix = CHANNEL_SUFFIX.sub("", stem) if channel_suffix else stem
    if found.lower() in IMAGE_ENDINGS and prefix == stem:
        return stem, [path]
    return prefix, _channel_files(path.parent, prefix, ending or found, n_channels)


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
                images=_channel_files(directory, case_id, ending, n_channels),
                label=label if split is None and label.is_file() else None,
                meta={"split": split} if split else {},
            )
    return cases


def _indexed_cases(root: Path, meta: dict[str, Any], nnunet: bool) -> list[Case]:
    """Cases listed in dataset.json: ``training`` (labelled), ``unlabelled`` and ``test``."""
    ending = meta.get("file_ending", "")
    n_channels = max(1, len(_channel_names(meta)))
    cases = []
    for key in ("training", "unlabelled", "test"):
        for raw in meta.get(key) or []:
            entry = _entry(raw, root / "dataset.json")
            case_id, images = _entry_images(root, entry["image"], ending, n_channels, nnunet)
            label = entry.get("label") if key == "training" else None
            cases.append(
                Case(
                    id=case_id,
                    images=images,
                    label=_resolve(root, label) if label else None,
                    meta={"split": "test"} if key == "test" else {},
                )
            )
    return cases


def _apply_splits(root: Path, cases: dict[str, Case]) -> dict[str, Any]:
    """``splits.json`` (acdc): each listed case gets ``meta["split"]``; the json is returned."""
    path = root / "splits.json"
    if not path.is_file():
        return {}
    splits = read_json(path)
    for split in ("train", "val", "test"):
        for case_id in splits.get(split, []) if isinstance(splits, dict) else []:
            if case_id in cases:
                cases[case_id].meta["split"] = split
    return {"splits": splits}


def _read_nnunet(root: Path) -> Dataset:
    """nnU-Net v2 raw: imagesTr/ (+ imagesTs/), labelsTr/, dataset.json (+ splits.json)."""
    meta = _dataset_json(root)
    if not meta:
        raise file_error(
            root / "dataset.json",
            "missing next to imagesTr/",
            "write one with channel_names, labels and file_ending (nnU-Net v2)",
        )
    ending = meta.get("file_ending", ".nii.gz")
    n_channels = max(1, len(_channel_names(meta)))
    cases = _scanned_cases(root, ending, n_channels)
    for case in _indexed_cases(root, meta, nnunet=True):
        known = cases.setdefault(case.id, case)
        known.label = known.label or case.label
    extra = _apply_splits(root, cases)
    return _dataset(root, "nnunet", list(cases.values()), meta, extra=extra)


def _attach_landmarks(root: Path, cases: list[Case]) -> dict[str, Any]:
    """A ``landmarks.json`` beside an MSD index (jsrt): reference points on each case."""
    path = root / "landmarks.json"
    if not path.is_file():
        return {}
    landmarks = read_landmarks(path)
    for case in cases:
        if case.id in landmarks.cases:
            case.meta["landmarks"] = landmarks.reference(case.id)
    return {"landmarks": landmarks}


def _read_msd(root: Path) -> Dataset:
    """MSD-style dataset.json ``training`` list of {image, label} (MSD, jsrt)."""
    meta = _dataset_json(root)
    cases = _unique_ids(_indexed_cases(root, meta, nnunet=False), root / "dataset.json")
    extra = _attach_landmarks(root, cases)
    return _dataset(root, "msd", cases, meta, extra=extra)


# ------------------------------------------------------------------------------------------
# MedMNIST
# ------------------------------------------------------------------------------------------


def npz_path(root: Path) -> Path:
    """The MedMNIST file of ``root``: the path itself or the folder's only ``.npz``."""
    if root.is_file():
        return root
    found = sorted(root.glob("*.npz"))
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise file_error(root, f"holds several .npz files ({names})", "pass the one to use")
    return found[0]


def _class_of(labels: np.ndarray | None, index: int) -> int | np.ndarray | None:
    """MedMNIST labels are (N, 1) for one class per image, (N, K) for multi-label sets."""
    if labels is None:
        return None
    row = np.asarray(labels[index]).reshape(-1)
    return int(row[0]) if row.size == 1 else row


def _medmnist_labels(splits: dict[str, Any]) -> dict[str, int]:
    """The README's class names are not in the npz: name classes by their values (or columns)."""
    labels = [np.asarray(y) for _, y in splits.values() if y is not None]
    if not labels:
        return {}
    if labels[0].ndim == 2 and labels[0].shape[1] > 1:
        return {str(k): k for k in range(labels[0].shape[1])}
    values = np.unique(np.concatenate([y.reshape(-1) for y in labels]))
    return {str(int(v)): int(v) for v in values}


def _read_medmnist(root: Path) -> Dataset:
    """MedMNIST ``.npz``: in-memory cases ``<split>_<index>``; arrays kept once in ``extra``.

    ``Case.array`` is a view into the split's array (no copy), so 4000 cases cost nothing.
    """
    npz = npz_path(root)
    splits = read_npz(npz)
    cases = []
    spatial_dims = 2
    for split, (images, labels) in splits.items():
        spatial_dims = 3 if images.ndim == 4 and images.shape[-1] > 4 else 2
        cases += [
            Case(
                id=f"{split}_{i:05d}",
                array=images[i],
                target=_class_of(labels, i),
                meta={"split": split, "index": i},
            )
            for i in range(len(images))
        ]
    return Dataset(
        root=root,
        layout="medmnist",
        cases=cases,
        labels=_medmnist_labels(splits),
        spatial_dims=spatial_dims,
        file_ending=".npz",
        task="classification",
        extra={"arrays": splits, "npz": npz},
    )


# ------------------------------------------------------------------------------------------
# landmarks
# ------------------------------------------------------------------------------------------


def _images_by_stem(folder: Path) -> dict[str, Path]:
    return {split_ending(p.name)[0]: p for p in sorted(folder.iterdir()) if is_image_file(p)}


def _read_landmarks(root: Path) -> Dataset:
    """images/ + landmarks.json (cephalometric, phantom landmark2d): target = reference points.

    Images without landmarks are the unlabelled pool; landmarks without an image keep the
    expected path so that ``data check`` reports the missing file.
    """
    landmarks = read_landmarks(root / "landmarks.json")
    images = _images_by_stem(root / "images")
    ending = split_ending(next(iter(images.values())).name)[1] if images else ".png"
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


# ------------------------------------------------------------------------------------------
# CSV manifest
# ------------------------------------------------------------------------------------------


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


def _read_manifest(root: Path) -> Dataset:
    """CSV manifest (``image``, optional ``mask``, ``label``, ``split``, ``id``) of volumes."""
    csv_path = root if root.is_file() else root / "manifest.csv"
    folder = csv_path.parent
    meta = _dataset_json(folder)
    rows = _manifest_rows(csv_path)
    classes = _class_index([r.get("label") or "" for r in rows], _label_map(meta), csv_path)
    cases = []
    for line, row in enumerate(rows, start=2):
        image = folder / row["image"]
        extra = {k: v for k, v in row.items() if k not in ("id", "image", "mask", "label") and v}
        if row.get("mask"):
            extra["mask"] = folder / row["mask"]
        label = row.get("label") or ""
        cases.append(
            Case(
                id=row.get("id") or split_ending(image.name)[0],
                images=[image],
                target=classes[label] if label else None,
                meta={**extra, "row": line},
            )
        )
    labels = _label_map(meta) or {str(k): v for k, v in classes.items()}
    return _dataset(
        root,
        "manifest",
        _unique_ids(cases, csv_path),
        meta,
        labels=labels,
        task="classification",
        extra={"manifest": csv_path},
    )


# ------------------------------------------------------------------------------------------
# multi-domain 2D
# ------------------------------------------------------------------------------------------


def _select_domains(index: Path, known: list[str], domains: Sequence[str] | None) -> list[str]:
    if not domains:
        return known
    unknown = [d for d in domains if d not in known]
    if unknown:
        raise file_error(
            index,
            f"unknown domain(s) {', '.join(unknown)}; known: {', '.join(known)}",
            "choose --domains from the known ones",
        )
    return list(domains)


def _domain_case(root: Path, entry: dict[str, Any]) -> Case:
    """One entry of the training list; every field but the paths and id goes into meta."""
    image = _resolve(root, entry["image"])
    label = entry.get("label") or entry.get("mask")
    meta = {k: v for k, v in entry.items() if k not in ("image", "label", "mask", "id")}
    return Case(
        id=str(entry.get("id") or split_ending(image.name)[0]),
        images=[image],
        label=_resolve(root, label) if label else None,
        meta=meta,
    )


def _read_multidomain(root: Path, domains: Sequence[str] | None) -> Dataset:
    """``<domain>/images|masks`` indexed by dataset.json ``domains`` + ``training`` entries."""
    meta = _dataset_json(root)
    selected = _select_domains(root / "dataset.json", list(meta["domains"]), domains)
    index = root / "dataset.json"
    entries = [_entry(e, index) for e in meta["training"]]
    entries = [e for e in entries if e.get("domain") in selected]
    cases = _unique_ids([_domain_case(root, e) for e in entries], index)
    extra: dict[str, Any] = {"domains": selected}
    if (root / "sequences.json").is_file():
        extra["sequences"] = read_json(root / "sequences.json")
    ending = split_ending(cases[0].images[0].name)[1] if cases else ""
    return _dataset(root, "multidomain", cases, meta, file_ending=ending, extra=extra)


# ------------------------------------------------------------------------------------------
# SWC tracings
# ------------------------------------------------------------------------------------------


def _read_swc(root: Path) -> Dataset:
    """bigneuron: manifest.json items -> image + reference SWC + automatic SWCs per algorithm."""
    index = root / "manifest.json"
    manifest = read_json(index)
    items = manifest.get("items") if isinstance(manifest, dict) else None
    if not isinstance(items, list):
        raise file_error(index, "has no 'items' list", "list one {id, image, swc} per image")
    cases = []
    for item in items:
        meta = {k: v for k, v in item.items() if k not in ("id", "image", "swc", "swc_auto")}
        meta["swc"] = root / item["swc"]
        meta["swc_auto"] = {alg: root / p for alg, p in (item.get("swc_auto") or {}).items()}
        cases.append(Case(id=item["id"], images=[root / item["image"]], meta=meta))
    return Dataset(
        root=root,
        layout="swc",
        cases=_unique_ids(cases, index),
        task="tracing-qc",
        extra={"manifest": {k: v for k, v in manifest.items() if k != "items"}},
    )


# ------------------------------------------------------------------------------------------
# plain files
# ------------------------------------------------------------------------------------------


def _is_dicom(path: Path) -> bool:
    """``.dcm``, or an extension-less file with the DICOM preamble (common for series)."""
    if path.suffix.lower() == ".dcm":
        return True
    if path.suffix:
        return False
    with path.open("rb") as f:
        return f.read(132)[128:] == b"DICM"


def _image_sources(root: Path) -> Iterator[Path]:
    """Image files and DICOM series folders under ``root``, recursively, hidden ones skipped."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(folder)
        paths = [here / f for f in sorted(files) if not f.startswith(".")]
        if any(_is_dicom(p) for p in paths):
            yield here
        yield from (p for p in paths if is_image_file(p) and p.suffix.lower() != ".dcm")


def _read_files(root: Path) -> Dataset:
    """Any folder of images: one case per file or DICOM series; ``X_label`` labels ``X_image``.

    Ids are paths relative to ``root`` without ending (``clara_spleen8/spleen_8``), so files
    of the same name in different folders stay distinct cases.
    """
    sources = {
        p.parent / split_ending(p.name)[0] if p.is_file() else p: p for p in _image_sources(root)
    }
    cases = []
    for key, path in sources.items():
        if key.name.endswith("_label") and key.with_name(key.name[:-6] + "_image") in sources:
            continue
        base = key.with_name(key.name[:-6]) if key.name.endswith("_image") else key
        rel = base.relative_to(root).as_posix() if base != root else root.name
        cases.append(Case(id=rel, images=[path], label=sources.get(Path(f"{base}_label"))))
    return Dataset(root=root, layout="files", cases=cases)


READERS: dict[str, Callable[[Path], Dataset]] = {
    "nnunet": _read_nnunet,
    "msd": _read_msd,
    "medmnist": _read_medmnist,
    "landmarks": _read_landmarks,
    "manifest": _read_manifest,
    "swc": _read_swc,
    "files": _read_files,
}

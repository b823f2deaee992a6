"""A dataset's fingerprint: what the planned defaults are computed from (as nnU-Net's).

Spacing and shape of every case (headers only), and from the voxels of up to
:data:`MAX_CASES_READ` labelled cases (evenly spread over the list): intensity statistics per
channel over the foreground (CT windows come from them), how many cases hold each class, how
large each class is and the extent of the foreground's bounding box in millimetres (the field of
view a patch must cover). Computed once and cached in medssl's own cache folder, keyed by every
file's path, size and modification time, so that a changed dataset is fingerprinted again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medssl.data.dataset import Case, Dataset
from medssl.data.io import read_header, read_image

VERSION = 1
MAX_CASES_READ = 40  # labelled cases whose voxels are read (nnU-Net reads all; this bounds time)
SAMPLES_PER_CASE = 10_000  # foreground intensities kept per case and channel (nnU-Net: 10 000)
CACHE_ENV = "MEDSSL_CACHE_DIR"


@dataclass
class AxisStats:
    """Median, 10th and 90th percentile, minimum and maximum per spatial axis."""

    median: list[float]
    p10: list[float]
    p90: list[float]
    min: list[float]
    max: list[float]

    @classmethod
    def of(cls, rows: list[tuple[float, ...]]) -> AxisStats:
        values = np.asarray(rows, dtype=np.float64)
        return cls(
            median=_round(np.median(values, axis=0)),
            p10=_round(np.percentile(values, 10, axis=0)),
            p90=_round(np.percentile(values, 90, axis=0)),
            min=_round(values.min(axis=0)),
            max=_round(values.max(axis=0)),
        )


@dataclass
class ChannelStats:
    """Intensities of one channel over the foreground (every voxel where there is no label)."""

    name: str
    mean: float
    std: float
    median: float
    p00_5: float
    p99_5: float
    min: float
    max: float


@dataclass
class ClassStats:
    """One label: in how many read cases it occurs, its median share of the voxels of a case,
    and the median extent (mm per axis) of its bounding box where it occurs."""

    index: int
    cases: int
    fraction: float
    bbox_mm: list[float]


@dataclass
class Fingerprint:
    root: str
    layout: str
    modality: dict[str, str]  # channel index -> name from dataset.json ("CT", "T2", "R" ...)
    file_dims: int  # dimensions of the arrays on disk (a 160x192x1 NIfTI counts as 3)
    spacing_known: bool
    cases: int
    labeled: int
    read: int  # labelled cases whose voxels were read
    spacing: AxisStats
    shape: AxisStats
    intensity: list[ChannelStats] = field(default_factory=list)
    classes: dict[str, ClassStats] = field(default_factory=dict)
    foreground_bbox_mm: list[float] | None = None  # median over read cases
    version: int = VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Fingerprint:
        values = dict(values)
        values["spacing"] = AxisStats(**values["spacing"])
        values["shape"] = AxisStats(**values["shape"])
        values["intensity"] = [ChannelStats(**c) for c in values.get("intensity", [])]
        values["classes"] = {k: ClassStats(**v) for k, v in values.get("classes", {}).items()}
        return cls(**values)

    @property
    def anisotropy(self) -> float:
        """Largest over smallest median spacing (nnU-Net treats > 3 as anisotropic)."""
        spacing = self.spacing.median
        return max(spacing) / min(spacing) if spacing and min(spacing) > 0 else 1.0

    @property
    def is_ct(self) -> bool:
        return any(name.strip().lower() == "ct" for name in self.modality.values())


def fingerprint(dataset: Dataset, use_cache: bool = True) -> Fingerprint:
    """The fingerprint of ``dataset``, from the cache when no file changed since."""
    cases = [c for c in dataset.cases if c.images or c.array is not None]
    key = cache_key(dataset, cases)
    cached = _read_cache(key) if use_cache else None
    if cached is not None:
        return cached
    result = compute_fingerprint(dataset, cases)
    if use_cache:
        _write_cache(key, result)
    return result


def compute_fingerprint(dataset: Dataset, cases: list[Case]) -> Fingerprint:
    if not cases:
        raise ValueError(f"{dataset.root}: no cases with images to fingerprint")
    spacings, shapes = [], []
    for case in cases:
        spacing, shape = _geometry(case)
        spacings.append(spacing)
        shapes.append(shape)
    labeled = [c for c in cases if c.label is not None]
    read = _spread(labeled or cases, MAX_CASES_READ)
    rng = np.random.default_rng(0)
    channel_samples: dict[int, list[np.ndarray]] = {}
    per_class: dict[int, list[tuple[float, list[float]]]] = {}
    boxes: list[list[float]] = []
    for case in read:
        channels, spacing = _channels(case)
        label = _label(case)
        foreground = label > 0 if label is not None else np.ones(channels[0].shape, bool)
        if not foreground.any():
            foreground = np.ones(channels[0].shape, bool)
        for i, channel in enumerate(channels):
            values = channel[foreground].astype(np.float64)
            if values.size > SAMPLES_PER_CASE:
                values = rng.choice(values, SAMPLES_PER_CASE, replace=False)
            channel_samples.setdefault(i, []).append(values)
        if label is None:
            continue
        if (label > 0).any():
            boxes.append(_bbox_mm(label > 0, spacing))
        for index in np.unique(label):
            if index == 0:
                continue
            mask = label == index
            per_class.setdefault(int(index), []).append(
                (float(mask.mean()), _bbox_mm(mask, spacing))
            )
    names = {v: k for k, v in dataset.labels.items()}
    return Fingerprint(
        root=str(dataset.root),
        layout=dataset.layout,
        modality=dict(dataset.channel_names),
        file_dims=len(shapes[0]),
        spacing_known=dataset.spacing_known,
        cases=len(cases),
        labeled=len(labeled),
        read=len(read),
        spacing=AxisStats.of(spacings),
        shape=AxisStats.of(shapes),
        intensity=[
            _channel_stats(_channel_name(dataset, i), np.concatenate(samples))
            for i, samples in sorted(channel_samples.items())
        ],
        classes={
            names.get(index, str(index)): ClassStats(
                index=index,
                cases=len(rows),
                fraction=float(np.median([f for f, _ in rows])),
                bbox_mm=_round(np.median([b for _, b in rows], axis=0)),
            )
            for index, rows in sorted(per_class.items())
        },
        foreground_bbox_mm=_round(np.median(boxes, axis=0)) if boxes else None,
    )


# -- reading -----------------------------------------------------------------------------------
def _geometry(case: Case) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if case.array is not None:
        shape = tuple(float(n) for n in np.asarray(case.array).shape[:2])
        return (1.0,) * len(shape), shape
    header = read_header(case.images[0])
    return tuple(header.spacing), tuple(float(n) for n in header.spatial_shape)


def _channels(case: Case) -> tuple[list[np.ndarray], tuple[float, ...]]:
    """Each channel as a spatial array (files, then components of a multi-component image)."""
    if case.array is not None:
        array = np.asarray(case.array, dtype=np.float32)
        if array.ndim == 3:  # (H, W, C) colour
            return [array[..., c] for c in range(array.shape[-1])], (1.0, 1.0)
        return [array], (1.0,) * array.ndim
    channels: list[np.ndarray] = []
    spacing: tuple[float, ...] = ()
    for path in case.images:
        image = read_image(path)
        spacing = image.spacing
        array = image.array
        if array.ndim > image.spatial_dims:  # trailing component axis
            channels.extend(array[..., c] for c in range(array.shape[-1]))
        else:
            channels.append(array)
    return channels, spacing


def _label(case: Case) -> np.ndarray | None:
    if case.label is None:
        return None
    array = read_image(case.label).array
    return np.rint(array).astype(np.int64) if array.dtype.kind == "f" else array.astype(np.int64)


def _bbox_mm(mask: np.ndarray, spacing: tuple[float, ...]) -> list[float]:
    extent = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        size = float(hits[-1] - hits[0] + 1)
        extent.append(size * (spacing[axis] if axis < len(spacing) else 1.0))
    return extent


def _channel_stats(name: str, values: np.ndarray) -> ChannelStats:
    p = np.percentile(values, [0.5, 50, 99.5])
    return ChannelStats(
        name=name,
        mean=round(float(values.mean()), 4),
        std=round(float(values.std()), 4),
        median=round(float(p[1]), 4),
        p00_5=round(float(p[0]), 4),
        p99_5=round(float(p[2]), 4),
        min=round(float(values.min()), 4),
        max=round(float(values.max()), 4),
    )


def _channel_name(dataset: Dataset, index: int) -> str:
    return dataset.channel_names.get(str(index), str(index))


def _spread(cases: list[Case], n: int) -> list[Case]:
    """At most ``n`` cases, evenly spread over the list (first and last included)."""
    if len(cases) <= n:
        return list(cases)
    picks = np.linspace(0, len(cases) - 1, n).round().astype(int)
    return [cases[i] for i in sorted(set(picks.tolist()))]


def _round(values: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in np.atleast_1d(values)]


# -- cache -------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$MEDSSL_CACHE_DIR``, else ``$XDG_CACHE_HOME/medssl`` (``~/.cache/medssl``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "medssl"


def cache_key(dataset: Dataset, cases: list[Case]) -> str:
    """Changes when any image or label file changes (path, size, modification time)."""
    digest = hashlib.sha256(f"{VERSION}|{Path(dataset.root).resolve()}".encode())
    for case in cases:
        for path in [*case.images, *([case.label] if case.label else [])]:
            try:
                stat = Path(path).stat()
                digest.update(f"|{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
            except OSError:
                digest.update(f"|{path}|missing".encode())
        if case.array is not None:
            digest.update(f"|{case.id}|{np.asarray(case.array).shape}".encode())
    return digest.hexdigest()[:32]


def _cache_path(key: str) -> Path:
    return cache_dir() / "fingerprints" / f"{key}.json"


def _read_cache(key: str) -> Fingerprint | None:
    try:
        values = json.loads(_cache_path(key).read_text())
        return Fingerprint.from_dict(values) if values.get("version") == VERSION else None
    except (OSError, ValueError, TypeError, KeyError):
        return None  # no cache, or one this version cannot read: compute again


def _write_cache(key: str, result: Fingerprint) -> None:
    """Best effort: a read-only home only costs the next run the same computation."""
    from medssl.atomic import write_json_atomic

    path = _cache_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, result.to_dict())
    except Exception:  # noqa: BLE001 - any failure to cache is not the user's problem
        return

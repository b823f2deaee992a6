"""The dataset model every layout reader returns: cases, labelled or not, with their files.

Layout readers (``medssl.data.layouts``) turn a folder on disk into a :class:`Dataset`; the
engine, ``data check`` and the benchmarks only ever see this model, never a layout.

Self-supervised pretraining reads images only: :meth:`Dataset.images_only` is the unlabelled
view of any dataset (labels ignored even where the set has them), and :func:`pool_datasets`
combines several datasets (``--data A --data B``) into one unlabelled dataset.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from medssl.errors import ConfigError, file_error

# ``Case.meta`` keys that hold ground truth rather than input: :meth:`Dataset.images_only` drops
# them with ``label`` and ``target`` (a manifest's mask, landmark annotations and their class,
# SWC tracings).
ANNOTATION_KEYS = ("annotations", "class", "landmarks", "mask", "swc", "swc_auto")
# ``Dataset.extra`` keys that describe the labels; the unlabelled view leaves them out.
LABEL_EXTRAS = ("labels_derived", "labels_error", "landmarks", "regions")


@dataclass
class Case:
    """One sample: an image (one file per channel, or one multi-component file) and its targets.

    ``label`` is a segmentation label map on disk; ``target`` is any other ground truth (a class
    index for classification, an (L, 2|3) float array of landmark coordinates, ...). ``array``
    holds in-memory samples (MedMNIST) instead of files. ``meta`` carries layout extras
    (``domain``, ``sequence``, ``frame_index``, ``split``, source notes).
    """

    id: str
    images: list[Path] = field(default_factory=list)
    label: Path | None = None
    target: Any = None
    array: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def has_label(self) -> bool:
        return self.label is not None or self.target is not None


@dataclass
class Dataset:
    """A detected dataset.

    ``layout`` names the on-disk layout (``nnunet``, ``msd``, ``medmnist``, ``landmarks``,
    ``manifest``, ``multidomain``, ``swc``, ``files``; ``pooled`` for :func:`pool_datasets`).
    ``labels`` maps label or class names to integers as ``dataset.json`` declares them.
    ``spatial_dims`` is 2 or 3 as declared (``tensorImageSize``) or inferred, ``None`` when
    unknown (:func:`image_dims` then reads the first header).
    """

    root: Path
    layout: str
    cases: list[Case]
    labels: dict[str, int] = field(default_factory=dict)
    channel_names: dict[str, str] = field(default_factory=dict)
    spatial_dims: int | None = None
    file_ending: str = ""
    task: str | None = None
    spacing_known: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def labeled(self) -> list[Case]:
        return [c for c in self.cases if c.has_label]

    @property
    def unlabeled(self) -> list[Case]:
        return [c for c in self.cases if not c.has_label]

    @property
    def num_channels(self) -> int:
        return max(1, len(self.channel_names))

    @property
    def num_classes(self) -> int:
        """Output classes: labels with background (segmentation) or classes (classification)."""
        return len(self.labels) if self.labels else 0

    def case(self, case_id: str) -> Case:
        for c in self.cases:
            if c.id == case_id:
                return c
        raise KeyError(case_id)

    def subset(self, ids: list[str]) -> Dataset:
        keep = set(ids)
        return Dataset(
            root=self.root,
            layout=self.layout,
            cases=[c for c in self.cases if c.id in keep],
            labels=self.labels,
            channel_names=self.channel_names,
            spatial_dims=self.spatial_dims,
            file_ending=self.file_ending,
            task=self.task,
            spacing_known=self.spacing_known,
            extra=self.extra,
        )

    def images_only(self) -> Dataset:
        """The unlabelled view of this dataset, what self-supervised pretraining reads.

        Every case keeps its id, images (or MedMNIST array) and ``meta`` but loses its
        ``label``, ``target`` and the annotations in ``meta`` (:data:`ANNOTATION_KEYS`); the
        dataset loses its label names (``labels == {}``, ``num_classes == 0``), and a MedMNIST
        set's in-memory label arrays (``extra["arrays"]`` keeps the images only). Test cases
        stay (``meta["split"] == "test"``); :func:`medssl.data.splits.make_pretrain_split`
        leaves them out. ``extra["images_only"]`` is ``True``. Nothing is read or copied.
        """
        cases = [
            replace(
                c,
                label=None,
                target=None,
                meta={k: v for k, v in c.meta.items() if k not in ANNOTATION_KEYS},
            )
            for c in self.cases
        ]
        extra = {k: v for k, v in self.extra.items() if k not in LABEL_EXTRAS}
        if "arrays" in extra:
            extra["arrays"] = {split: (x, None) for split, (x, _) in extra["arrays"].items()}
        return replace(self, cases=cases, labels={}, extra={**extra, "images_only": True})


# ------------------------------------------------------------------------------------------
# what the images hold, for datasets that do not declare it
# ------------------------------------------------------------------------------------------


def _first_input(dataset: Dataset) -> Case | None:
    return next((c for c in dataset.cases if c.array is not None or c.images), None)


def image_dims(dataset: Dataset) -> int | None:
    """Spatial dimensions of the images: as declared, else from the first case's header.

    A volume of one slice (a 160 x 192 x 1 NIfTI) counts as 2D; ``None`` when the dataset has
    no case. Reads one header at most; an unreadable first file raises its one-line DataError.
    """
    if dataset.spatial_dims is not None:
        return dataset.spatial_dims
    first = _first_input(dataset)
    if first is None:
        return None
    if first.array is not None:
        return 3 if first.array.ndim == 3 and first.array.shape[-1] > 4 else 2
    from medssl.data.io import read_header  # io pulls in SimpleITK and pydicom: only when asked

    header = read_header(first.images[0])
    flat = header.spatial_dims == 3 and header.spatial_shape[2] == 1
    return 2 if flat else header.spatial_dims


def image_channels(dataset: Dataset) -> int:
    """Input channels: ``channel_names`` when declared, else the first case's files.

    Undeclared, a case of several files has one channel per file, a single file as many as its
    components (an RGB PNG: 3), a MedMNIST array a trailing axis of 3 (RGB) or none (grey).
    """
    if dataset.channel_names:
        return len(dataset.channel_names)
    first = _first_input(dataset)
    if first is None:
        return 1
    if first.array is not None:
        dims = image_dims(dataset) or 2
        return int(first.array.shape[-1]) if first.array.ndim == dims + 1 else 1
    if len(first.images) > 1:
        return len(first.images)
    from medssl.data.io import read_header

    return read_header(first.images[0]).components


# ------------------------------------------------------------------------------------------
# pooling datasets for pretraining
# ------------------------------------------------------------------------------------------


def _source_names(roots: list[Path]) -> list[str]:
    """Each root's folder name (an npz's stem), with parent folders added until all differ."""
    parts = [(r.with_suffix("") if r.is_file() else r).parts for r in roots]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return ["/".join(p) for p in parts]  # unreachable: distinct roots have distinct paths


# What datasets must share to be pooled: how to measure it, how to say they differ, the fix.
_MUST_AGREE = (
    (
        image_dims,
        "holds {b}D images but {first} holds {a}D",
        "pool only 2D sets or only 3D sets; pretrain on each apart otherwise",
    ),
    (
        image_channels,
        "has {b} image channel(s) but {first} has {a}",
        "pool only datasets whose images have the same channels",
    ),
)


def _agreed(views: list[Dataset]) -> tuple[int | None, int]:
    """The spatial dims and channels all ``views`` share; a one-line DataError where not."""
    first = views[0]
    agreed = []
    for measure, problem, fix in _MUST_AGREE:
        a = measure(first)
        for ds in views[1:]:
            b = measure(ds)
            if b != a:
                raise file_error(ds.root, problem.format(a=a, b=b, first=first.root), fix)
        agreed.append(a)
    dims, channels = agreed
    return dims, int(channels or 1)


def pool_datasets(datasets: Sequence[Dataset]) -> Dataset:
    """Several datasets as one unlabelled dataset for pretraining (``--data A --data B``).

    Each dataset is taken as :meth:`Dataset.images_only` (labels of different sets do not
    share a meaning). Case ids become ``<folder>/<id>`` (``la2018/la_001``): the dataset
    folder's name, or an npz file's stem, with parent folders added when two names are the
    same; ``meta["source"]`` keeps that prefix and ``meta["source_id"]`` the case's own id. One
    dataset alone is returned as its unlabelled view with its ids unchanged.

    The pool has ``layout == "pooled"``, ``root`` the folders' common parent, the agreed
    ``spatial_dims``, the first declared ``channel_names`` (or ``channel_<k>`` names when the
    channels are not declared but several), and ``extra["sources"]`` ({prefix: unlabelled
    view}) and ``extra["roots"]`` ({prefix: root}). Raises a one-line :class:`DataError` naming
    both folders when two datasets differ in input channels or spatial dimensions (read from
    one header each where undeclared, :func:`image_channels`, :func:`image_dims`), or a
    dataset has no case; :class:`ConfigError` when no dataset or one folder twice is given.
    """
    if not datasets:
        raise ConfigError("no dataset to pool; give at least one --data")
    views = [ds.images_only() for ds in datasets]
    roots = [Path(os.path.abspath(ds.root)) for ds in views]
    twice = next((r for i, r in enumerate(roots) if r in roots[:i]), None)
    if twice is not None:
        raise file_error(twice, "is given twice", "give each dataset once", ConfigError)
    for ds in views:
        if not ds.cases:
            raise file_error(ds.root, "has no case to pool", "drop it or add images")
    if len(views) == 1:
        return views[0]
    dims, channels = _agreed(views)
    names = _source_names(roots)
    cases = [
        replace(c, id=f"{name}/{c.id}", meta={**c.meta, "source": name, "source_id": c.id})
        for name, ds in zip(names, views, strict=True)
        for c in ds.cases
    ]
    declared = next((ds.channel_names for ds in views if ds.channel_names), {})
    if not declared and channels > 1:
        declared = {str(k): f"channel_{k}" for k in range(channels)}
    endings = {ds.file_ending for ds in views}
    return Dataset(
        root=Path(os.path.commonpath(roots)),
        layout="pooled",
        cases=cases,
        channel_names=dict(declared),
        spatial_dims=dims,
        file_ending=endings.pop() if len(endings) == 1 else "",
        spacing_known=all(ds.spacing_known for ds in views),
        extra={
            "images_only": True,
            "sources": dict(zip(names, views, strict=True)),
            "roots": dict(zip(names, roots, strict=True)),
        },
    )

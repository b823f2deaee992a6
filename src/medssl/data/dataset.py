"""The dataset model every layout reader returns: cases, labelled or not, with their files.

Layout readers (``medssl.data.layouts``) turn a folder on disk into a :class:`Dataset`; the
engine, ``data check`` and the benchmarks only ever see this model, never a layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


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
    ``manifest``, ``multidomain``, ``swc``, ``files``). ``labels`` maps label or class names to
    integers as ``dataset.json`` declares them. ``spatial_dims`` is 2 or 3 as declared
    (``tensorImageSize``) or inferred, ``None`` when unknown.
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

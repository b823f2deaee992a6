"""Where the lesion is: a mask file, a label map, a lesion position, or the volume itself.

Radiomics needs a region of interest. A segmentation dataset has label maps; a set that gives
only the lesion's centre and size (JSRT's nodules in ``clinical.csv``) gets a disc (a sphere in
3-D) of that diameter; a set of binary shape volumes (AdrenalMNIST3D) is its own mask.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medssl.errors import ConfigError, DataError, file_error

SELF_MASK = "self"  # ``mask=`` value: the (binary) image is its own mask

# Column names of a positions CSV, tried in order: JSRT's clinical.csv, then a generic form.
_ID_COLUMNS = ("case_id", "case", "id")
_CENTRE_COLUMNS = (("nodule_x", "nodule_y"), ("x", "y", "z"), ("x", "y"))
_DIAMETER_COLUMNS = (("nodule_size_mm", "mm"), ("diameter_mm", "mm"), ("diameter_px", "px"))


@dataclass(frozen=True)
class LesionPosition:
    """A lesion given by its centre and diameter, as JSRT gives its nodules.

    ``centre`` is in continuous pixel (voxel) coordinates in (x, y[, z]) order, i.e. (column,
    row[, slice]), where pixel ``i`` spans ``[i, i + 1)`` and has its centre at ``i + 0.5``
    (JSRT's ``clinical.csv`` convention: ``(x2048 + 0.5) / 4``). ``diameter`` is in mm
    (``unit="mm"``, converted with the image's pixel spacing) or in pixels (``unit="px"``).
    """

    centre: tuple[float, ...]
    diameter: float
    unit: str = "mm"

    def __post_init__(self) -> None:
        object.__setattr__(self, "centre", tuple(float(c) for c in self.centre))
        object.__setattr__(self, "diameter", float(self.diameter))
        if self.unit not in ("mm", "px"):
            raise ConfigError(f"lesion position: unit {self.unit!r}; use 'mm' or 'px'")
        if len(self.centre) not in (2, 3) or not all(map(math.isfinite, self.centre)):
            raise ConfigError(
                f"lesion position: centre {self.centre}; give 2 or 3 finite coordinates (x, y[, z])"
            )
        if not (math.isfinite(self.diameter) and self.diameter > 0):
            raise ConfigError(f"lesion position: diameter {self.diameter}; give a size > 0")

    def describe(self) -> str:
        """A stable text for the cache key."""
        return f"position:{self.centre}:{self.diameter}{self.unit}"

    def mask(self, shape: Sequence[int], spacing: Sequence[float], where: str = "") -> np.ndarray:
        """The disc (sphere) as a boolean array of ``shape`` in (x, y[, z]) order: every pixel
        whose centre lies within half the diameter of ``centre``; never empty (at least the
        pixel holding the centre)."""
        where = where or "lesion position"
        if len(shape) != len(self.centre):
            raise file_error(
                where,
                f"a {len(self.centre)}-D lesion centre for a {len(shape)}-D image",
                "give one coordinate per image axis (x, y[, z])",
                ConfigError,
            )
        if any(not 0 <= c < n for c, n in zip(self.centre, shape, strict=True)):
            raise file_error(
                where,
                f"lesion centre {self.centre} lies outside the image ({tuple(shape)} pixels)",
                "check the coordinates (continuous pixels, x = column, origin top left)",
                DataError,
            )
        scale = spacing if self.unit == "mm" else (1.0,) * len(shape)
        radius = self.diameter / 2.0
        axes = [  # squared distance (mm or px) of each pixel centre along each axis
            ((np.arange(n) + 0.5 - c) * s) ** 2
            for n, c, s in zip(shape, self.centre, scale, strict=True)
        ]
        mask = np.asarray(sum(np.ix_(*axes)) <= radius**2)  # broadcast to ``shape``
        mask[tuple(int(c) for c in self.centre)] = True
        return mask


def is_binary_volume(array: np.ndarray) -> bool:
    """True for a shape mask stored as an image: background 0 and one other value (0/255)."""
    array = np.asarray(array)
    foreground = array[array != 0]
    if not 0 < foreground.size < array.size:
        return False
    value = foreground.flat[0]
    return bool(value > 0 and (foreground == value).all())


def label_mask(labels: np.ndarray, label: int | None) -> np.ndarray:
    """The lesion in a label map: ``labels == label``, or every label > 0 when ``None``."""
    labels = np.asarray(labels)
    if labels.dtype.kind == "f":
        labels = np.rint(labels)
    return labels > 0 if label is None else labels == label


def positions_from_csv(path: str | Path) -> dict[str, LesionPosition]:
    """Lesion positions by case id from a CSV; rows without a centre (no lesion) are left out.

    Columns: the case id (``case_id``, ``case`` or ``id``), the centre (JSRT's ``nodule_x``,
    ``nodule_y``, or ``x``, ``y`` [, ``z``]) in continuous pixels and the diameter
    (``nodule_size_mm`` or ``diameter_mm`` in mm, ``diameter_px`` in pixels).
    """
    path = Path(path).expanduser()
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
            header = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise file_error(path, f"cannot be read ({err})", "check the --positions path") from None
    id_col = next((c for c in _ID_COLUMNS if c in header), None)
    centre_cols = next((cs for cs in _CENTRE_COLUMNS if all(c in header for c in cs)), None)
    diameter = next(((c, u) for c, u in _DIAMETER_COLUMNS if c in header), None)
    if id_col is None or centre_cols is None or diameter is None:
        raise file_error(
            path,
            "has no case id, centre or diameter columns",
            "name them case_id, x, y[, z] (continuous pixels) and diameter_mm or diameter_px "
            "(JSRT's clinical.csv form works as it is)",
            ConfigError,
        )
    positions: dict[str, LesionPosition] = {}
    for line, row in enumerate(rows, start=2):
        values = [(row.get(c) or "").strip() for c in (*centre_cols, diameter[0])]
        if not all(values):
            continue  # no lesion in this case
        try:
            numbers = [float(v) for v in values]
            positions[row[id_col].strip()] = LesionPosition(
                tuple(numbers[:-1]), numbers[-1], diameter[1]
            )
        except (ValueError, ConfigError) as err:
            raise file_error(
                path, f"line {line}: {err}", "fix the centre or diameter", ConfigError
            ) from None
    return positions

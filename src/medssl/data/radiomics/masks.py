"""Where the lesion is: a mask file, a label map, a lesion position, or the volume itself.

Radiomics needs a region of interest. A segmentation dataset has label maps; a set that gives
only the lesion's centre and size (JSRT's nodules in ``clinical.csv``) gets a disc (a sphere in
3-D) of that diameter; a set of binary shape volumes (AdrenalMNIST3D) is its own mask.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medssl.errors import ConfigError, DataError, file_error

if TYPE_CHECKING:
    from medssl.data.dataset import Case

SELF_MASK = "self"  # ``mask=`` value: the (binary) image is its own mask
WHOLE_IMAGE = "image"  # ``mask=`` value: every pixel (a diffuse finding; no lesion to outline)

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
    centre_cols, diameter = _position_columns(header)
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
        try:
            position = _position_in(row, centre_cols, diameter)
        except (ValueError, ConfigError) as err:
            raise file_error(
                path, f"line {line}: {err}", "fix the centre or diameter", ConfigError
            ) from None
        if position is not None:
            positions[row[id_col].strip()] = position
    return positions


def _position_columns(
    names: Iterable[str],
) -> tuple[tuple[str, ...] | None, tuple[str, str] | None]:
    """The centre columns and the (diameter column, unit) that ``names`` hold, or ``None``."""
    names = set(names)
    centre = next((cs for cs in _CENTRE_COLUMNS if all(c in names for c in cs)), None)
    diameter = next(((c, u) for c, u in _DIAMETER_COLUMNS if c in names), None)
    return centre, diameter


def _position_in(
    row: Mapping[str, Any], centre: Sequence[str], diameter: tuple[str, str]
) -> LesionPosition | None:
    """The lesion of one row; ``None`` when its centre or diameter is blank (no lesion)."""
    values = [str(row.get(c) or "").strip() for c in (*centre, diameter[0])]
    if not all(values):
        return None
    numbers = [float(v) for v in values]
    return LesionPosition(tuple(numbers[:-1]), numbers[-1], diameter[1])


def case_lesion(case: Case, positions: Mapping[str, LesionPosition] | None = None) -> Any:
    """Where ``case``'s lesion is, as :func:`~medssl.data.radiomics.extract.extract_case` takes
    it, or ``None``: with ``positions`` only its entry there; else a position in the case's own
    columns (a manifest's ``x``, ``y``[, ``z``] and ``diameter_mm``, or JSRT's ``nodule_x``,
    ``nodule_y``, ``nodule_size_mm``), its label map, a manifest's ``mask``, or ``"self"`` for a
    binary shape volume."""
    if positions is not None:
        return positions.get(case.id)
    centre, diameter = _position_columns(case.meta)
    if centre is not None and diameter is not None:
        try:
            position = _position_in(case.meta, centre, diameter)
        except (ValueError, ConfigError) as err:
            where = f"{case.id} (row {case.meta.get('row', '?')})"
            raise ConfigError(f"{where}: {err}; fix the lesion centre or diameter") from None
        if position is not None:
            return position
    if case.label is not None:
        return case.label
    if case.meta.get("mask"):
        return Path(case.meta["mask"])
    if case.array is not None and is_binary_volume(case.array):
        return SELF_MASK
    return None

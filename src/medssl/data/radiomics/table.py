"""A dataset's radiomics table: one row per case, standardised on the training cases only.

:func:`dataset_table` extracts every case that has a lesion mask (its label map, a lesion
position, or itself when it is a binary shape volume); :func:`standardise` z-scores the columns
with the mean and standard deviation of the training rows, so that no statistic of a test case
leaks into what a classifier learns; :func:`export_table` is ``medssl data radiomics``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medssl.data.dataset import Case, Dataset
from medssl.data.radiomics.extract import extract_case
from medssl.data.radiomics.masks import WHOLE_IMAGE, LesionPosition, case_lesion
from medssl.data.radiomics.settings import FEATURE_CLASSES, RadiomicsSettings
from medssl.errors import ConfigError, file_error

ID_COLUMN = "case"
CASE_COLUMNS = ("split", "target")  # per-case columns written before the features
FEATURE_NAME = re.compile(rf"^[A-Za-z0-9-]+_({'|'.join(FEATURE_CLASSES)})_[A-Za-z0-9]+$")


@dataclass
class RadiomicsTable:
    """Features by case: ``values[i, j]`` is feature ``columns[j]`` of case ``ids[i]`` (NaN
    where pyradiomics gave none); ``case_columns`` holds ``split``/``target`` where known;
    ``meta`` says which image types, feature classes and settings made it."""

    ids: list[str]
    columns: list[str]
    values: np.ndarray
    case_columns: dict[str, list[Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def row(self, case_id: str) -> dict[str, float]:
        i = self.ids.index(case_id)
        return dict(zip(self.columns, self.values[i].tolist(), strict=True))

    def to_csv(self) -> str:
        """``case``, the case columns, then one column per feature; missing values empty."""
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow([ID_COLUMN, *self.case_columns, *self.columns])
        for i, case_id in enumerate(self.ids):
            extra = ["" if c[i] is None else c[i] for c in self.case_columns.values()]
            numbers = ["" if not math.isfinite(v) else repr(v) for v in self.values[i].tolist()]
            writer.writerow([case_id, *extra, *numbers])
        return text.getvalue()


def describe_columns(columns: Iterable[str]) -> dict[str, list[str]]:
    """The image types (``original``, ``log-sigma-1-0-mm-3D``, ``wavelet-LLH``, ...) and
    feature classes that feature names come from, in first-seen order."""
    types: dict[str, None] = {}
    classes: dict[str, None] = {}
    for name in columns:
        image_type, feature_class, _ = name.split("_", 2)
        types[image_type] = None
        classes[feature_class] = None
    return {"image_types": list(types), "feature_classes": list(classes)}


# -- a dataset's table -------------------------------------------------------------------------
def dataset_table(
    data: str | Path | Dataset,
    settings: RadiomicsSettings | None = None,
    *,
    cache_dir: str | Path | None = None,
    label: int | None = None,
    positions: dict[str, LesionPosition] | None = None,
    channel: int = 0,
    on_case: Callable[[int, int], None] | None = None,
    whole_image: bool = False,
) -> RadiomicsTable:
    """Features of every case with a lesion mask (cases without one are listed in
    ``meta["skipped"]``). With ``positions``, a case's lesion is the disc (sphere) at its
    position and cases without a position are skipped; else its label map (``label > 0``, or
    ``== label``), a manifest's ``mask``, or the volume itself when it is a binary shape volume.
    ``on_case(done, total)`` reports progress. ``whole_image``: a case without a lesion is
    read whole, every pixel its region (a diffuse finding, such as pneumonia), not skipped.
    """
    from medssl.data.layouts import load_dataset

    settings = settings or RadiomicsSettings()
    dataset = data if isinstance(data, Dataset) else load_dataset(data)
    spacing = raster_spacing(dataset)
    fallback = WHOLE_IMAGE if whole_image else None
    jobs = [(c, m) for c in dataset.cases if (m := case_lesion(c, positions) or fallback)]
    kept = {case.id for case, _ in jobs}
    skipped = [c.id for c in dataset.cases if c.id not in kept]
    if not jobs:
        fix = (
            "no case id of --positions matches a case of the dataset"
            if positions
            else "give --positions CSV with lesion centres and sizes, or label the cases"
        )
        problem = f"no case has a lesion mask ({len(dataset.cases)} cases)"
        raise file_error(dataset.root, problem, fix, ConfigError)
    results = []
    for done, (case, mask) in enumerate(jobs, start=1):
        image = case.array if case.array is not None else _channel(case, channel)
        raster = spacing if spacing and _is_raster(image) else None
        results.append(
            extract_case(
                image,
                mask,
                settings,
                case_id=case.id,
                label=label,
                spacing=raster,
                cache_dir=cache_dir,
            )
        )
        if on_case is not None:
            on_case(done, len(jobs))
    columns = list(dict.fromkeys(name for r in results for name in r.features))
    values = np.array(
        [[r.features.get(c, math.nan) for c in columns] for r in results], dtype=np.float64
    ).reshape(len(results), len(columns))
    cases = [case for case, _ in jobs]
    meta = {
        **describe_columns(columns),
        "notes": list(dict.fromkeys(n for r in results for n in r.notes)),
        "settings": settings.model_dump(mode="json"),
        "cached": sum(r.cached for r in results),
        "computed": sum(not r.cached for r in results),
        "skipped": skipped,
    }
    return RadiomicsTable([c.id for c in cases], columns, values, _case_columns(cases), meta)


def _channel(case: Case, channel: int) -> Path:
    if not 0 <= channel < len(case.images):
        raise ConfigError(
            f"{case.id}: --channel {channel} but the case has {len(case.images)} channel(s); "
            f"give 0 to {len(case.images) - 1}"
        )
    return case.images[channel]


def raster_spacing(dataset: Dataset) -> tuple[float, ...] | None:
    """PNG/JPEG carry no spacing: a dataset.json ``pixel_spacing_mm`` (JSRT: 0.7) gives it."""
    declared = (dataset.extra.get("dataset_json") or {}).get("pixel_spacing_mm")
    if isinstance(declared, (int, float)):
        declared = [declared, declared]
    try:
        return tuple(float(s) for s in declared) if declared else None
    except (TypeError, ValueError):
        return None


def _is_raster(image: Any) -> bool:
    from medssl.data.io import RASTER_SUFFIXES

    return isinstance(image, Path) and image.suffix.lower() in RASTER_SUFFIXES


def _case_columns(cases: list[Case]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {}
    splits = [c.meta.get("split") for c in cases]
    if any(s is not None for s in splits):
        columns["split"] = splits
    targets = [c.target if isinstance(c.target, (int, np.integer)) else None for c in cases]
    if any(t is not None for t in targets):
        columns["target"] = [None if t is None else int(t) for t in targets]
    return columns


# -- standardisation ---------------------------------------------------------------------------
@dataclass
class Standardisation:
    """Mean and standard deviation (ddof 0) of every column over the training rows."""

    columns: list[str]
    mean: np.ndarray
    sd: np.ndarray
    train_ids: list[str]

    @property
    def constant(self) -> np.ndarray:
        """Columns without spread in the training rows: standardised to 0."""
        scale = np.maximum(1.0, np.abs(np.nan_to_num(self.mean)))
        return ~np.isfinite(self.sd) | (self.sd <= 1e-10 * scale)

    def apply(self, table: RadiomicsTable) -> RadiomicsTable:
        """``table`` z-scored with these statistics (constant and missing values -> 0)."""
        if table.columns != self.columns:
            raise ConfigError(
                "radiomics: the table's features differ from those standardised on the training "
                "cases; extract both with the same settings"
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (table.values - self.mean) / np.where(self.constant, 1.0, self.sd)
        z[:, self.constant] = 0.0
        z[~np.isfinite(z)] = 0.0
        meta = {**table.meta, "standardised_on": list(self.train_ids)}
        return RadiomicsTable(table.ids, table.columns, z, dict(table.case_columns), meta)

    def to_dict(self) -> dict[str, Any]:
        return {
            "train_ids": list(self.train_ids),
            "mean": dict(zip(self.columns, _finite(self.mean), strict=True)),
            "sd": dict(zip(self.columns, _finite(self.sd), strict=True)),
        }


def standardise(
    table: RadiomicsTable, train_ids: Iterable[str]
) -> tuple[RadiomicsTable, Standardisation]:
    """The table z-scored with the mean and standard deviation of the ``train_ids`` rows only.

    A feature constant over the training rows becomes 0 everywhere, a missing value (NaN) the
    training mean, i.e. 0: the result never holds NaN.
    """
    train_ids = list(train_ids)
    unknown = [i for i in train_ids if i not in table.ids]
    if unknown or not train_ids:
        raise ConfigError(
            f"radiomics: training case {unknown[0]!r} is not in the table; standardise on cases "
            "that were extracted"
            if unknown
            else "radiomics: no training case to standardise on; give at least one"
        )
    rows = table.values[[table.ids.index(i) for i in train_ids]]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: "Mean of empty slice"
        mean, sd = np.nanmean(rows, axis=0), np.nanstd(rows, axis=0)
    stats = Standardisation(list(table.columns), mean, sd, train_ids)
    return stats.apply(table), stats


def _finite(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values.tolist()]


# -- medssl data radiomics ---------------------------------------------------------------------
def default_cache_dir(root: str | Path) -> Path:
    """``<medssl cache>/radiomics/<hash of the dataset folder>``: reruns reuse it."""
    from medssl.data.fingerprint import cache_dir

    digest = hashlib.sha256(str(Path(root).expanduser().resolve()).encode()).hexdigest()[:16]
    return cache_dir() / "radiomics" / digest


def is_radiomics_table(path: Path) -> bool:
    """True for a CSV that ``medssl data radiomics`` wrote (judged by its header)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(io.StringIO(fh.readline(1 << 22))), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    names = header[1:]
    return (
        bool(header)
        and header[0] == ID_COLUMN
        and any(FEATURE_NAME.match(n) for n in names)
        and all(n in CASE_COLUMNS or FEATURE_NAME.match(n) for n in names)
    )


def check_table_target(path: str | Path) -> None:
    """``--out FILE`` may replace an earlier radiomics table, never another file."""
    path = Path(path).expanduser()
    if path.exists() and not (path.is_file() and is_radiomics_table(path)):
        raise file_error(
            path,
            "exists and is not a medssl radiomics table",
            "choose another --out file; medssl replaces only its own tables",
            ConfigError,
        )


def export_table(
    data: str | Path,
    out: str | Path,
    settings: RadiomicsSettings | None = None,
    *,
    cache_dir: str | Path | None = None,
    label: int | None = None,
    positions: str | Path | None = None,
    channel: int = 0,
    on_case: Callable[[int, int], None] | None = None,
) -> RadiomicsTable:
    """``medssl data radiomics``: the dataset's table written to ``out`` as CSV (atomically;
    the target is checked before anything is computed)."""
    from medssl.atomic import check_outside, write_text_atomic
    from medssl.data.radiomics.masks import positions_from_csv

    check_outside(out, data, "DIR", "--out")
    check_table_target(out)
    if cache_dir is not None:
        check_outside(cache_dir, data, "DIR", "--cache")
    lesions = positions_from_csv(positions) if positions is not None else None
    table = dataset_table(
        data,
        settings,
        cache_dir=cache_dir if cache_dir is not None else default_cache_dir(data),
        label=label,
        positions=lesions,
        channel=channel,
        on_case=on_case,
    )
    write_text_atomic(out, table.to_csv())
    return table


def format_summary(table: RadiomicsTable, out: str | Path) -> str:
    """What ``medssl data radiomics`` prints: rows, features, cache use, what was computed."""
    meta = table.meta
    skipped = meta.get("skipped", [])
    lines = [
        f"wrote {out}: {len(table.ids)} cases x {len(table.columns)} features "
        f"({meta.get('computed', 0)} computed, {meta.get('cached', 0)} from the cache"
        + (f"; {len(skipped)} cases without a lesion mask skipped" if skipped else "")
        + ")",
        f"image types: {', '.join(meta.get('image_types', []))}",
        f"feature classes: {', '.join(meta.get('feature_classes', []))}",
        *(f"note: {note}" for note in meta.get("notes", [])),
    ]
    return "\n".join(lines)

"""Landmark-detection metrics: mean radial error (MRE) and successful detection rates (SDR).

The radial error of one landmark is the Euclidean distance between predicted and true
coordinates after scaling each axis by the spacing, so it is in mm when ``spacing`` is given.
Without spacing it is in pixels, and the SDR keys keep their names (``sdr_2mm`` ...) but the
thresholds then apply in pixels; record which with :func:`landmark_unit`.

Policies:

* success: a landmark is detected successfully when its radial error is ``<= threshold``
  (the boundary counts as a success).
* missing ground truth (any coordinate of the target is NaN): the landmark is excluded from
  everything, MRE, SD and the SDR denominators; ``radial_errors`` gives NaN there.
* missed prediction (any coordinate of the prediction non-finite while the target is present):
  ``radial_errors`` gives ``inf``; it counts as a failure at every SDR threshold (it stays in the
  denominator), is excluded from MRE and SD (which would otherwise be infinite), and is counted
  in the ``missed`` key so the exclusion is visible.

Keys of :func:`landmark_metrics`: ``mre`` and ``sd`` (mean and standard deviation of the finite
radial errors), ``sdr_2mm``, ``sdr_2.5mm``, ``sdr_3mm``, ``sdr_4mm`` (fractions in 0..1),
``missed`` (count of missed predictions) and ``n`` (count of landmarks with ground truth, the
SDR denominator). Means are ``nan`` when nothing is left to average.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "SDR_THRESHOLDS_MM",
    "landmark_metrics",
    "landmark_unit",
    "per_landmark_metrics",
    "radial_errors",
    "sdr_key",
]

SDR_THRESHOLDS_MM = (2.0, 2.5, 3.0, 4.0)

ArrayLike = np.ndarray | torch.Tensor | Sequence
SpacingLike = float | Sequence[float] | np.ndarray | None


def landmark_unit(spacing: SpacingLike) -> str:
    """Unit of radial errors and SDR thresholds: ``"mm"`` with spacing, ``"pixel"`` without."""
    return "pixel" if spacing is None else "mm"


def sdr_key(threshold: float) -> str:
    """``2.0 -> "sdr_2mm"``, ``2.5 -> "sdr_2.5mm"`` (the name is kept for pixel thresholds)."""
    return f"sdr_{threshold:g}mm"


def radial_errors(pred: ArrayLike, target: ArrayLike, spacing: SpacingLike = None) -> np.ndarray:
    """(N, L) radial errors: NaN where the target is missing, ``inf`` where the prediction is.

    ``pred``/``target`` are (N, L, D) or (L, D) coordinates in pixel units (one case is returned
    as N = 1). ``spacing`` is one number, one per axis (D,), or one row per case (N, D).
    """
    p, t = _as_cases(pred, "pred"), _as_cases(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred shape {p.shape} != target shape {t.shape}")
    scale = _scale(spacing, p.shape[0], p.shape[2])
    with np.errstate(invalid="ignore"):  # inf - inf in missed predictions; overwritten below
        err = np.linalg.norm((p - t) * scale, axis=2)
    target_missing = np.isnan(t).any(axis=2)
    pred_missing = ~np.isfinite(p).all(axis=2)
    err[pred_missing] = np.inf
    err[target_missing] = np.nan
    return err


def landmark_metrics(
    pred: ArrayLike, target: ArrayLike, spacing: SpacingLike = None
) -> dict[str, float]:
    """MRE, SD, SDR at :data:`SDR_THRESHOLDS_MM`, ``missed`` and ``n`` over all landmarks."""
    return _summarise(radial_errors(pred, target, spacing).ravel())


def per_landmark_metrics(
    pred: ArrayLike,
    target: ArrayLike,
    names: Sequence[str] | None = None,
    spacing: SpacingLike = None,
) -> dict[str, dict[str, float]]:
    """The :func:`landmark_metrics` keys for each landmark over cases (names default "1".."L")."""
    err = radial_errors(pred, target, spacing)
    n_landmarks = err.shape[1]
    if names is None:
        names = [str(i + 1) for i in range(n_landmarks)]
    if len(names) != n_landmarks:
        raise ValueError(f"names has {len(names)} entries for {n_landmarks} landmarks")
    return {str(name): _summarise(err[:, i]) for i, name in enumerate(names)}


def _summarise(err: np.ndarray) -> dict[str, float]:
    """Metrics of a flat array of radial errors following the module's NaN/inf policy."""
    present = err[~np.isnan(err)]
    finite = present[np.isfinite(present)]
    n = present.size
    out = {
        "mre": float(finite.mean()) if finite.size else float("nan"),
        "sd": float(finite.std()) if finite.size else float("nan"),
    }
    for thr in SDR_THRESHOLDS_MM:
        out[sdr_key(thr)] = float(np.count_nonzero(present <= thr) / n) if n else float("nan")
    out["missed"] = float(n - finite.size)
    out["n"] = float(n)
    return out


def _as_cases(x: ArrayLike, what: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    arr = arr.astype(np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"{what} must be (N, L, D) or (L, D), got shape {arr.shape}")
    return arr


def _scale(spacing: SpacingLike, n_cases: int, dims: int) -> np.ndarray:
    """Spacing broadcast to (N, 1, D) so it multiplies (N, L, D) coordinate differences."""
    if spacing is None:
        return np.ones((1, 1, dims))
    if isinstance(spacing, numbers.Real):
        sp = np.full((1, 1, dims), float(spacing))
    else:
        arr = np.asarray(spacing, dtype=np.float64)
        if arr.shape == (dims,):
            sp = arr[None, None, :]
        elif arr.shape == (n_cases, dims):
            sp = arr[:, None, :]
        else:
            raise ValueError(
                f"spacing shape {arr.shape} fits neither ({dims},) nor ({n_cases}, {dims})"
            )
    if not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise ValueError(f"spacing must be positive and finite, got {spacing}")
    return sp

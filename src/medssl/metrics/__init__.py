"""Evaluation metrics for segmentation, classification and landmark detection.

Each module documents its policy for undefined cases (empty masks, missing classes, missing
landmarks) so that reports can quote it instead of silently dropping cases.
"""

from medssl.metrics.classification import classification_metrics, per_class_metrics
from medssl.metrics.landmarks import (
    SDR_THRESHOLDS_MM,
    landmark_metrics,
    landmark_unit,
    per_landmark_metrics,
    radial_errors,
    sdr_key,
)
from medssl.metrics.segmentation import (
    EMPTY_POLICY,
    METRIC_KEYS,
    distance_unit,
    image_diagonal,
    mean_over_classes,
    segmentation_metrics,
)

__all__ = [
    "EMPTY_POLICY",
    "METRIC_KEYS",
    "SDR_THRESHOLDS_MM",
    "classification_metrics",
    "distance_unit",
    "image_diagonal",
    "landmark_metrics",
    "landmark_unit",
    "mean_over_classes",
    "per_class_metrics",
    "per_landmark_metrics",
    "radial_errors",
    "sdr_key",
    "segmentation_metrics",
]

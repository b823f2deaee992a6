"""Evaluation metrics for segmentation, classification and landmark detection.

Each module documents its policy for undefined cases (empty masks, missing classes, missing
landmarks) so that reports can quote it instead of silently dropping cases. ``direction`` says
whether higher or lower is better for each metric; ``postprocess`` holds the largest-component
clean-up of predicted label maps.
"""

from medssl.metrics.classification import classification_metrics, per_class_metrics
from medssl.metrics.direction import (
    HIGHER_IS_BETTER,
    UnknownMetricError,
    best_first,
    has_direction,
    higher_is_better,
    worst_first,
)
from medssl.metrics.landmarks import (
    SDR_THRESHOLDS_MM,
    landmark_metrics,
    landmark_unit,
    per_landmark_metrics,
    radial_errors,
    sdr_key,
)
from medssl.metrics.postprocess import keep_largest_components
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
    "HIGHER_IS_BETTER",
    "METRIC_KEYS",
    "SDR_THRESHOLDS_MM",
    "UnknownMetricError",
    "best_first",
    "classification_metrics",
    "distance_unit",
    "has_direction",
    "higher_is_better",
    "image_diagonal",
    "keep_largest_components",
    "landmark_metrics",
    "landmark_unit",
    "mean_over_classes",
    "per_class_metrics",
    "per_landmark_metrics",
    "radial_errors",
    "sdr_key",
    "segmentation_metrics",
    "worst_first",
]

"""Run reports: ``medssl report RUN`` turns a run folder into one readable HTML page.

The page collects the config, case split, learning curves, evaluation tables, slice overlays
and an optional method comparison, and says which of them the run has not produced yet.
"""

from __future__ import annotations

from medssl.report.build import build_report
from medssl.report.overlays import plot_overlay
from medssl.report.plots import plot_learning_curves, plot_per_case

__all__ = ["build_report", "plot_learning_curves", "plot_overlay", "plot_per_case"]

"""Named benchmark protocols (``medssl bench NAME``): real data in, one table and JSON out."""

from medssl.bench.base import BENCHMARKS, run_benchmark

__all__ = ["BENCHMARKS", "run_benchmark"]

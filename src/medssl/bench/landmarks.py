"""``ceph`` and ``jsrt-landmarks``: the heatmap baseline against CCF-Net at the same budget.

Both train every method with one schedule (the landmarks task's profiles, fixed here so that a
change of the task's defaults does not change a published table) and score it on the run's own
validation part (20 % of the developer set, seeded: neither folder declares a validation split;
the held-out folders are not shared). Where the cases carry two annotators (cephalograms) the
table ends with the annotators' own disagreement on the same cases, the human reference row: a
model "within reach of the annotators" is near it.

``gpu`` is CCF-Net's published scale (512-pixel inputs, Adam 3e-4 with weight decay 5e-4, batch
16, bf16); ``cpu`` reads 256-pixel inputs, batch 4, 800 steps, a run of about 10-20 minutes per
method on two cores (the UNet is the slower of the two).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from medssl.atomic import write_json_atomic
from medssl.bench.base import Benchmark, register, run_protocol

LANDMARK_COLUMNS = ["mre", "sdr_2mm"]
METHODS = ["heatmap", "ccf"]
ADAM = {"name": "adam", "lr": 3e-4, "weight_decay": 5e-4, "schedule": "cosine"}

CONFIGS: dict[str, dict[str, Any]] = {
    "gpu": {
        "data": {"input_side": 512, "batch_size": 16, "num_workers": 4, "augment": True},
        "train": {"max_steps": 4000, "val_every": 250, "precision": "bf16-mixed"},
        "optim": ADAM,
    },
    "cpu": {
        "data": {"input_side": 256, "batch_size": 4, "augment": True},
        "train": {"max_steps": 800, "val_every": 200, "precision": "32"},
        "optim": {**ADAM, "lr": 1e-3},
    },
}


def human_reference(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The table row of the annotators' disagreement, from the first run's evaluation (the
    same validation cases every method is scored on); None without two annotators."""
    rows = [r for r in payload.get("rows", []) if r.get("run")]
    if not rows:
        return None
    path = Path(rows[0]["run"]) / "evaluation.json"
    try:
        inter = json.loads(path.read_text()).get("inter_annotator")
    except (OSError, ValueError):
        return None
    if not isinstance(inter, dict):
        return None
    first, second = inter["between"]
    columns = [c for c in rows[0] if c in inter["mean"]]
    return {
        "method": f"{second} vs {first} (human reference)",
        "labeled": "-",
        **{c: inter["mean"][c] for c in columns},
        "val_cases": inter["cases"],
    }


class LandmarkBenchmark(Benchmark):
    """A protocol whose table ends with the human reference row where there is one."""

    def run(
        self,
        profile: str,
        methods: list[str],
        out: Path,
        config: str | Path | None = None,
        largest_component: bool = False,
    ) -> dict[str, Any]:
        payload = run_protocol(self, profile, methods, out, config, largest_component)
        row = human_reference(payload)
        if row is not None:
            payload["rows"].append(row)
            write_json_atomic(out / "results.json", payload)
            scores = ", ".join(f"{k} {row[k]:.4g}" for k in row if k in LANDMARK_COLUMNS)
            Console().print(f"{row['method']}: {scores} ({payload['units'].get('mre', '')})")
        return payload


CEPH = register(
    LandmarkBenchmark(
        name="ceph",
        description="cephalograms (Hamedan, 100 developer cases, 19 landmarks, 0.288 mm nominal "
        "pixels at half resolution): train on the mean of the two annotators, validate on a "
        "seeded 20 %; heatmap (UNet) vs CCF-Net (ResNet-18-MSC)",
        data="cephalometric",
        task="landmarks",
        methods=METHODS,
        labeled=None,
        configs=CONFIGS,
        published={
            "columns": LANDMARK_COLUMNS,
            "split": "source repository: 15 test images at full resolution, misses excluded",
            "YOLOv5s vs annotator 1 (source repository)": [1.41, 0.80],
            "YOLOv5s vs annotator 2 (source repository)": [1.82, None],
            "best on ISBI 2015 (other images, for context)": [1.2, 0.87],
            "source": "BENCHMARKS.md",
        },
        labeled_text="all (80)",
    )
)

JSRT_LANDMARKS = register(
    LandmarkBenchmark(
        name="jsrt-landmarks",
        description="JSRT chest radiographs (185 developer cases with contours, 166 landmarks "
        "of lungs, heart and clavicles, 0.7 mm pixels): validate on a seeded 20 %; heatmap "
        "(UNet) vs CCF-Net (ResNet-18-MSC)",
        data="jsrt",
        task="landmarks",
        methods=METHODS,
        labeled=None,
        configs=CONFIGS,
        published={
            "columns": LANDMARK_COLUMNS,
            "note": "HybridGNet reports an MSE of 294.6 px^2 per coordinate at 1024 px (about "
            "8.5 mm RMS), not an MRE; no published MRE on this split",
            "source": "BENCHMARKS.md",
        },
        labeled_text="all (148)",
    )
)

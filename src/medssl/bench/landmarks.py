"""``ceph`` and ``jsrt-landmarks``: the heatmap baseline against CCF-Net at the same budget.

Both train every method with one schedule (the landmarks task's profiles; each run's
``config.yaml`` records it) and score it on the run's own validation part (20 % of the
developer set, seeded: neither folder declares a validation split; the held-out folders are not
shared). Where the cases carry two annotators (cephalograms) the
table ends with the annotators' own disagreement on the same cases, the human reference row: a
model "within reach of the annotators" is near it.

``gpu`` is CCF-Net's published scale (512-pixel inputs, Adam 3e-4 with weight decay 5e-4, batch
16, bf16, 4000 steps); ``cpu`` reads 256-pixel inputs, batch 4, 800 steps: 30-60 GFLOP a step
(CCF-Net's ResNet-18 the heavier), about 10-20 minutes per method on two cores (estimated from
the operation count, not measured end to end).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from medssl.atomic import write_json_atomic
from medssl.bench.base import Benchmark, register, run_protocol
from medssl.tasks.landmarks.config import LANDMARK_PROFILES

LANDMARK_COLUMNS = ["mre", "sdr_2mm"]
#: the cephalograms' table: localisation, then the skeletal class (data.class_rule anb) from the
#: network's class head (``accuracy``, CCF-Net only) and from its predicted points
CEPH_METRICS = (
    "mre",
    "sdr_2mm",
    "sdr_2.5mm",
    "sdr_3mm",
    "sdr_4mm",
    "accuracy",
    "class_accuracy_from_landmarks",
    "anb_error_deg",
)
METHODS = ["heatmap", "ccf"]
#: the task's own profiles: CCF-Net's scale on ``gpu``, tens of minutes on ``cpu``
CONFIGS: dict[str, dict[str, Any]] = copy.deepcopy(LANDMARK_PROFILES)
#: the cephalograms' configs also class each case by its ANB angle (skeletal class I / II / III)
CEPH_CONFIGS = {
    profile: {**config, "data": {**config["data"], "class_rule": "anb"}}
    for profile, config in CONFIGS.items()
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
        "seeded 20 %; heatmap (UNet) vs CCF-Net (ResNet-18-MSC); skeletal class I / II / III "
        "from ANB, by CCF-Net's class head and from each method's points",
        data="cephalometric",
        task="landmarks",
        methods=METHODS,
        labeled=None,
        configs=CEPH_CONFIGS,
        metrics=CEPH_METRICS,
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

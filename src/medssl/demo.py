"""``medssl demo``: the whole chain on data it generates, in a few minutes on a laptop CPU.

phantom (seg3d, CT-like, with an unlabelled pool) -> supervised training with few labels ->
evaluate on held-out phantom cases -> HTML report. Later milestones add pretraining and
semi-supervised learning to the same chain.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.console import Console

from medssl.errors import ConfigError

DEMO_LABELED = 4
DEMO_STEPS = 1000
DEMO_CONFIG = {
    "data": {"patch_size": [48, 48, 32], "batch_size": 2, "val_cases": 4},
    "net": {"channels": [16, 32, 64, 128], "num_res_units": 1},
    "train": {"val_every": 250, "sw_batch_size": 4},
}


def run_demo(
    out: str | Path = "demo_out", force: bool = False, steps: int = DEMO_STEPS, cases: int = 24
) -> Path:
    """Run the demo into ``out``; returns the report path."""
    from medssl import api
    from medssl.data.phantom import make_phantom
    from medssl.report import build_report
    from medssl.report.tables import evaluation_table

    console = Console()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ConfigError(
                f"{out}: demo folder exists; pass --force to replace it or choose --out"
            )
        shutil.rmtree(out)
    start = time.perf_counter()
    data = make_phantom(out / "phantom_seg3d", "seg3d", cases=cases, seed=0)
    console.print(f"[1/4] phantom dataset: {data}")
    run = api.train(
        data,
        method="supervised",
        out=out / "supervised",
        labeled=DEMO_LABELED,
        profile="cpu",
        max_steps=steps,
        config=DEMO_CONFIG,
        seed=0,
    )
    console.print(f"[2/4] trained supervised with {DEMO_LABELED} labelled cases: {run}")
    result = api.evaluate(run, data, only="val")
    console.print("[3/4] evaluated on the held-out phantom cases")
    console.print(evaluation_table(result))
    report = build_report(run)
    console.print(f"[4/4] report: {report}  ({time.perf_counter() - start:.0f} s in all)")
    return report

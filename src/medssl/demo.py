"""``medssl demo``: the whole chain on data it generates, in a few minutes on a laptop CPU.

phantom (seg3d, CT-like, with an unlabelled pool) -> supervised and mean-teacher training on the
same few labels (mean teacher also learns from the unlabelled pool) -> evaluate both on the same
held-out phantom cases -> HTML report of the mean-teacher run with the side-by-side comparison.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.console import Console

from medssl.atomic import write_json_atomic
from medssl.engine.run import is_run_dir
from medssl.errors import ConfigError, file_error

DEMO_METHODS = ("supervised", "mean_teacher")
DEMO_LABELED = 4
DEMO_STEPS = 1000
DEMO_CONFIG = {
    "plan": False,  # the demo's settings are fixed, chosen for a 5-minute run on the phantom
    "data": {"patch_size": [48, 48, 32], "batch_size": 2, "val_cases": 4},
    "net": {"channels": [16, 32, 64, 128], "num_res_units": 1},
    "train": {"val_every": 250},
}


def remove_demo(out: Path) -> None:
    """``demo --force``: delete an earlier demo folder, and refuse any other folder."""
    known = {"phantom_seg3d", *DEMO_METHODS}
    foreign = sorted(p.name for p in out.iterdir() if p.name not in known)
    runs_ok = all(is_run_dir(out / m) for m in DEMO_METHODS if (out / m).exists())
    if foreign or not runs_ok:
        what = ", ".join(foreign[:3]) or "folders that are not medssl runs"
        raise file_error(
            out,
            f"not a medssl demo folder (holds {what}); --force only replaces an earlier demo",
            "choose another --out",
            ConfigError,
        )
    shutil.rmtree(out)


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
        remove_demo(out)
    start = time.perf_counter()
    data = make_phantom(out / "phantom_seg3d", "seg3d", cases=cases, seed=0)
    console.print(f"[1/4] phantom dataset: {data}")
    rows, runs = [], {}
    for method in DEMO_METHODS:
        run = api.train(
            data,
            method=method,
            out=out / method,
            labeled=DEMO_LABELED,
            profile="cpu",
            max_steps=steps,
            config=DEMO_CONFIG,
            seed=0,
        )
        result = api.evaluate(run, data, only="val")
        runs[method] = run
        rows.append(
            {"method": method, "run": str(run), "labeled": DEMO_LABELED}
            | {k: result["mean"][k] for k in ("dice", "jaccard", "hd95", "asd")}
        )
        console.print(f"[2/4] {method} with {DEMO_LABELED} labelled cases, on held-out cases:")
        console.print(evaluation_table(result))
    comparison = {"metrics": ["dice", "jaccard", "hd95", "asd"], "rows": rows}
    for run in runs.values():  # each run's report shows the same comparison
        write_json_atomic(run / "comparison.json", comparison)
    console.print("[3/4] same labels, same budget, same held-out cases:")
    for row in rows:
        console.print(f"      {row['method']:<14} Dice {row['dice']:.3f}  HD95 {row['hd95']:.1f}")
    for run in runs.values():
        report = build_report(run)
    console.print(f"[4/4] report: {report}  ({time.perf_counter() - start:.0f} s in all)")
    return report

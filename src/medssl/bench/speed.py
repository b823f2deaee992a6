"""``medssl bench speed-la``: seconds per training step of each semi-supervised method at the
published LA setting, its peak memory, and the share of the step spent waiting for data.

The setting is the LA2018 protocol of UA-MT / MC-Net+ / BCP: the SSL4MIS V-Net (3x3x3 convolutions,
batch norm, 9.45 M parameters), 112x112x80 patches, 2 labelled + 2 unlabelled patches per step,
UA-MT's T = 8 teacher passes (its default); fp32 on CPU, bf16-mixed on GPU. ``--config F`` is
merged over it (a smaller patch, another network); the schedule is the bench's own.

Each method trains ``warmup + steps`` steps with the engine's own loop (``train_run``, no
validation) in a process of its own, so that one method's peak memory does not leak into the
next. The step times and data-wait shares are the ones the engine logs (``perf/it_per_s`` and
``perf/data_wait`` of the ``DataWaitMonitor`` in ``RUN/metrics.csv``), read for the steps after
the warm-up; peak memory is the training process's peak RSS (with the cached training data, as
in any run; DataLoader workers not counted) and, on a GPU, ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Console

from medssl import errors
from medssl.atomic import write_json_atomic
from medssl.bench.base import Benchmark, print_results, register, results_payload
from medssl.bench.protocols import SEMI_SUPERVISED
from medssl.engine.config import deep_update, read_yaml
from medssl.errors import ConfigError, MedsslError, TrainingError

#: the published LA setting; the precision differs per profile, nothing else
LA_SETTING: dict[str, Any] = {
    # the widths set, or the profile's (cpu 16-128, gpu 32-320) would reach the V-Net
    "net": {"name": "ssl4mis_vnet", "channels": [16, 32, 64, 128, 256], "strides": None},
    "data": {
        "patch_size": [112, 112, 80],
        "target_spacing": None,  # the grid of the UA-MT crops
        "batch_size": 2,
        "unlabeled_batch_size": 2,
        "val_cases": 0,  # every case in training: no validation part, no validation run
        "labeled_order": "first",
    },
    "optim": {"name": "sgd", "lr": 0.01},
}

#: columns of the terminal table (the JSON rows have more: precision, patch, net, run, ...)
COLUMNS = ["method", "s_per_it", "s_per_it_min", "data_wait", "peak_rss_mb", "timed_steps"]


@dataclass
class SpeedBenchmark(Benchmark):
    """A benchmark that times training steps instead of training to the end and evaluating."""

    warmup: int = 2  # steps before the timed ones (first-step set-up, cudnn autotuning)
    steps: dict[str, int] = field(default_factory=lambda: {"cpu": 5, "gpu": 20})  # timed
    options: ClassVar[tuple[str, ...]] = ("warmup", "steps")

    def schedule(self, warmup: int, steps: int) -> dict[str, Any]:
        """The ``train`` values of a timed run: no validation, every step logged."""
        total = warmup + steps
        return {"train": {"max_steps": total, "val_every": total + 1, "log_every": 1}}

    def run(
        self,
        profile: str,
        methods: list[str],
        out: Path,
        config: str | Path | None = None,
        warmup: int | None = None,
        steps: int | None = None,
    ) -> dict[str, Any]:
        """Time each method in its own process; print the table and write ``OUT/results.json``
        after every method (an interrupted bench keeps the rows it finished)."""
        from medssl.data.layouts import load_dataset

        methods = list(dict.fromkeys(methods))  # one run folder, one row per method
        warmup = self.warmup if warmup is None else warmup
        steps = self.steps[profile] if steps is None else steps
        if warmup < 0 or steps < 1:
            raise ConfigError(f"--warmup {warmup} --steps {steps}: give warmup >= 0, steps >= 1")
        overrides = read_yaml(config) if config is not None else {}
        timed = deep_update(overrides, self.schedule(warmup, steps))  # the schedule is ours
        dataset = load_dataset(self.data_dir())
        for method in methods:  # a wrong name or key fails before any training
            self.run_config(dataset, profile, method, timed)
        payload = results_payload(self, profile, overrides, warmup_steps=warmup, steps=steps)
        rows: list[dict[str, Any]] = payload["rows"]
        notice = Console(stderr=True)
        with tempfile.TemporaryDirectory(prefix="medssl-speed-") as scratch:
            for i, method in enumerate(methods, 1):
                notice.print(f"{self.name}: timing {method} ({i}/{len(methods)})")
                spec = {
                    "data": str(self.data_dir()),
                    "method": method,
                    "out": str(out / method),
                    "task": self.task,
                    "labeled": self.labeled,
                    "profile": profile,
                    "config": self.protocol(profile, timed),
                    "result": str(Path(scratch) / f"{method}.json"),
                }
                rows.append({"method": method, **measure(spec, warmup)})
                payload["complete"] = len(rows) == len(methods)
                write_json_atomic(out / "results.json", payload)
        print_results(self.title(payload, config), rows, self.columns(rows), out)
        return payload

    def title(self, payload: dict[str, Any], config: str | Path | None) -> str:
        first = payload["rows"][0] if payload["rows"] else {}
        setting = ", ".join(
            [
                payload["profile"],
                f"precision {first.get('precision', '?')}",
                f"net {first.get('net', '?')} ({first.get('net_params_m', '?')} M parameters)",
                "patch " + "x".join(str(n) for n in first.get("patch_size", [])),
                f"{payload['warmup_steps']} warm-up + {payload['steps']} timed steps",
            ]
        )
        overridden = f", overridden by {config}" if config else ""
        return f"{self.name} ({setting}{overridden}; {payload['code']}, {payload['machine']})"

    @staticmethod
    def columns(rows: list[dict[str, Any]]) -> list[str]:
        gpu = any(r.get("peak_cuda_mb") is not None for r in rows)
        return [*COLUMNS[:-1], *(["peak_cuda_mb"] if gpu else []), COLUMNS[-1]]


def measure(spec: dict[str, Any], warmup: int) -> dict[str, Any]:
    """Train ``spec`` in a child process (:func:`child_main`) and read its timings; the row."""
    from medssl.engine.run import read_run

    start = time.perf_counter()
    command = [sys.executable, "-c", CHILD, json.dumps(spec)]
    with subprocess.Popen(command, stdin=subprocess.DEVNULL) as child:
        code = child.wait()
    seconds = time.perf_counter() - start
    result_file = Path(spec["result"])
    result = json.loads(result_file.read_text()) if result_file.is_file() else {}
    if "error" in result:  # the child's one-line error, as the class it raised
        cls = getattr(errors, result.get("kind", ""), None)
        if not (isinstance(cls, type) and issubclass(cls, MedsslError)):
            cls = MedsslError
        raise cls(result["error"])
    if code != 0 or "run" not in result:
        why = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        raise TrainingError(
            f"{spec['out']}: timing {spec['method']} failed ({why}; its output is above); "
            "a killed run is often out of memory: try a smaller data.patch_size in --config"
        )
    run = Path(result["run"])
    cfg, _ = read_run(run)
    return {
        **step_times(run / "metrics.csv", warmup),
        "peak_rss_mb": result["peak_rss_mb"],
        "peak_cuda_mb": result["peak_cuda_mb"],
        "device": result["device"],
        "precision": str(cfg["train"]["precision"]),
        "net": cfg["net"]["name"],
        "net_params_m": network_params(cfg["net"], cfg["data"]["spatial_dims"]),
        "patch_size": cfg["data"]["patch_size"],
        "batch": batch(cfg),
        "wall_s": seconds,  # the whole child: start-up, data caching, every step, checkpoint
        "run": str(run),
    }


def batch(cfg: dict[str, Any]) -> dict[str, int]:
    """Patches per step by stream: a method that reads no unlabelled data loads none."""
    from medssl.engine.module import get_method

    streams = get_method(cfg["task"], cfg["method"]).streams
    sizes = {"labeled": cfg["data"]["batch_size"]}
    if "unlabeled" in streams:
        sizes["unlabeled"] = cfg["data"]["unlabeled_batch_size"]
    return sizes


def network_params(net: dict[str, Any], spatial_dims: int) -> float:
    """Millions of parameters of the run's network at one input channel and two classes (the
    single network: a method's teacher or second network is not counted)."""
    from medssl.engine.config import NetConfig
    from medssl.nets.factory import net_from_config

    model = net_from_config(NetConfig.model_validate(net), spatial_dims, 1, 2)
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 2)


def step_times(metrics_csv: Path, warmup: int) -> dict[str, Any]:
    """Seconds per step (mean and min) and data-wait share of the steps after ``warmup``.

    The engine's ``DataWaitMonitor`` logs one mean over a window of steps, windows back to back
    from the first step, at each window's last step (``step`` counts from 0); Lightning repeats
    the value on the rows in between. The first row with a value ends the first window and so
    gives the window length. Windows that start within the warm-up are left out: runs of fewer
    than 8 steps log every step, longer ones (22 steps: windows of 5) give window means, and the
    min is then the fastest window's mean.
    """
    values: dict[int, tuple[float, float]] = {}
    with open(metrics_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("perf/it_per_s") and row.get("step"):
                step = int(float(row["step"]))
                values[step] = (float(row["perf/it_per_s"]), float(row["perf/data_wait"]))
    window = min(values) + 1 if values else 0
    timed = [  # (steps, seconds, seconds waiting) of the windows after the warm-up
        (window, window / rate, window / rate * wait)
        for step, (rate, wait) in sorted(values.items())
        if (step + 1) % window == 0 and step + 1 - window >= warmup
    ]
    if not timed:
        raise TrainingError(
            f"{metrics_csv}: no timing window after the {warmup} warm-up steps was logged; "
            "time more steps (--steps)"
        )
    steps = sum(n for n, _, _ in timed)
    total = sum(s for _, s, _ in timed)
    return {
        "s_per_it": total / steps,
        "s_per_it_min": min(s / n for n, s, _ in timed),
        "data_wait": sum(w for _, _, w in timed) / total,
        "timed_steps": steps,
        "steps_per_window": window,
    }


CHILD = "import sys; from medssl.bench.speed import child_main; sys.exit(child_main(sys.argv[1]))"


def child_main(spec_json: str) -> int:
    """The timed run, in the child process: train, then write the run and the peak memory (or
    the one-line error) to ``spec["result"]``. Its output goes to stderr, so that the parent's
    stdout carries only the table."""
    from medssl.engine.launch import train_run
    from medssl.guard import quiet_warnings
    from medssl.logs import quiet_third_party

    os.dup2(2, 1)
    quiet_third_party()
    quiet_warnings()
    spec = json.loads(spec_json)
    try:
        run = train_run(
            spec["data"],
            spec["method"],
            spec["out"],
            spec["task"],
            labeled=spec["labeled"],
            profile=spec["profile"],
            config=spec["config"],
            force=True,  # OUT/<method> belongs to the bench
        )
    except MedsslError as err:
        write_json_atomic(spec["result"], {"error": str(err), "kind": type(err).__name__})
        return err.exit_code
    write_json_atomic(spec["result"], {"run": str(run), **peak_memory()})
    return 0


def peak_memory() -> dict[str, Any]:
    """This process's peak RSS and, when it used a GPU, the peak of allocated GPU memory (MiB)."""
    import torch

    try:
        import resource
    except ImportError:  # Windows
        rss = None
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; bytes on macOS
        rss = round(peak / 2**20 if sys.platform == "darwin" else peak / 1024, 1)
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    return {
        "peak_rss_mb": rss,
        "peak_cuda_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
    }


SPEED_LA = register(
    SpeedBenchmark(
        name="speed-la",
        description="seconds per training step, peak memory and data-wait share of the "
        "semi-supervised methods at the published LA2018 setting (SSL4MIS V-Net, 112x112x80, "
        "2 labelled + 2 unlabelled, UA-MT T = 8; fp32 on CPU, bf16-mixed on GPU)",
        data="la2018",
        task="segmentation",
        methods=SEMI_SUPERVISED,
        labeled=8,
        configs={
            "cpu": deep_update(LA_SETTING, {"train": {"precision": "32"}}),
            "gpu": deep_update(LA_SETTING, {"train": {"precision": "bf16-mixed"}}),
        },
    )
)

"""Benchmark protocols: a registry of named, fixed settings that train, evaluate and tabulate.

A protocol fixes the data, the labelled budget, the network and the schedule per profile, so that
every method gets the same budget. Each method's run directory is kept (``OUT/<method>``) and is
usable with ``medssl evaluate --run``; the table goes to the terminal and ``OUT/results.json``.

Every registered benchmark runs through its own ``run`` method: a :class:`Benchmark` trains and
evaluates (:func:`run_protocol`); a subclass measures something else over the same setting
(``medssl.bench.speed``: seconds per training step). ``run_benchmark`` is the one entry point.
"""

from __future__ import annotations

import csv
import math
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from rich.console import Console

import medssl
from medssl.atomic import write_json_atomic
from medssl.engine.config import RunConfig, deep_update, read_yaml
from medssl.engine.profiles import resolve_config, resolve_profile
from medssl.errors import ConfigError
from medssl.registry import Registry

if TYPE_CHECKING:
    from medssl.data.dataset import Dataset

BENCHMARKS: Registry = Registry("benchmark")
SHARED_DATA = Path(os.environ.get("MEDSSL_SHARED_DATA", Path.cwd().parent / "shared" / "data"))


@dataclass
class Benchmark:
    name: str
    description: str
    data: str  # folder name under the shared data root
    task: str
    methods: list[str]
    labeled: int | float | None
    configs: dict[str, dict[str, Any]]  # profile -> config overrides
    published: dict[str, Any] = field(default_factory=dict)
    units: str = "auto"  # distance units of the evaluation ("voxel" for the LA protocol)
    labeled_text: str | None = None  # how the table states the budget ("7 patients")
    #: train every method once per seed (``OUT/<method>/seed<N>``) and add a mean +- sd row;
    #: empty: one run per method with the config's seed (``OUT/<method>``)
    seeds: tuple[int, ...] = ()
    #: profile -> method -> that method's own settings over the profile's (keys only it has,
    #: such as bkc's radiomics); what every method reads (data, network, schedule) stays in
    #: ``configs``
    method_configs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: the table's metric columns; empty: the task's ``bench_metrics`` (a method that does not
    #: give one of them gets an empty cell)
    metrics: tuple[str, ...] = ()
    #: the keyword options ``run`` takes besides profile, methods, out and config (CLI flags)
    options: ClassVar[tuple[str, ...]] = ("largest_component",)

    def run(
        self,
        profile: str,
        methods: list[str],
        out: Path,
        config: str | Path | None = None,
        largest_component: bool = False,
    ) -> dict[str, Any]:
        """Train and evaluate each method (:func:`run_protocol`)."""
        return run_protocol(self, profile, methods, out, config, largest_component)

    def data_dir(self) -> Path:
        return SHARED_DATA / self.data

    def protocol(
        self, profile: str, overrides: dict[str, Any] | None = None, method: str | None = None
    ) -> dict[str, Any]:
        """The profile's settings, ``method``'s own over them, then ``overrides`` (the bench's
        ``--config``); a protocol's settings are fixed, not planned from the data
        (``plan: false``)."""
        settings = deep_update(
            {"plan": False, **self.configs[profile]},
            self.method_configs.get(profile, {}).get(method, {}),
        )
        return deep_update(settings, overrides or {})

    def run_config(
        self,
        dataset: Dataset,
        profile: str,
        method: str,
        overrides: dict[str, Any] | None = None,
    ) -> RunConfig:
        """The resolved config that ``run_benchmark`` trains ``method`` with: the profile's
        protocol, then ``overrides``, then ``train``'s flags."""
        from medssl.engine.launch import flag_values
        from medssl.engine.module import get_method

        return resolve_config(
            task=self.task,
            method_cls=get_method(self.task, method),
            dataset=dataset,
            profile=profile,
            file_values=self.protocol(profile, overrides, method),
            flag_values=flag_values(method, self.data_dir(), self.task, labeled=self.labeled),
        )


def register(bench: Benchmark) -> Benchmark:
    BENCHMARKS.register(bench.name)(bench)
    return bench


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    threads = torch.get_num_threads()
    torch_version = f"torch {torch.__version__} ({threads} threads)"
    return f"{platform.machine()} {os.cpu_count()} CPUs, {torch_version}, {gpu}"


def code_version() -> str:
    """``medssl 0.1.0`` plus the git commit when run from a checkout (``+dirty`` with local
    changes), so a results table names the code that produced it."""
    version = f"medssl {medssl.__version__}"
    source = Path(medssl.__file__).resolve().parent
    try:
        git = ["git", "-C", str(source)]
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):  # an installed wheel: no repository
        return version
    return f"{version} at {commit}{'+dirty' if changed else ''}"


def results_payload(
    bench: Benchmark, profile: str, overrides: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """The head of a bench's ``results.json``: what ran, where, on which code, with which
    overrides; ``rows`` (filled as methods finish) and ``complete`` follow ``extra``."""
    return {
        "benchmark": bench.name,
        "profile": profile,
        "description": bench.description,
        "machine": machine(),
        "code": code_version(),
        "overrides": overrides,
        **extra,
        "rows": [],
        "complete": False,
    }


@dataclass
class Trained:
    """One bench run: its folder, config and split, training seconds, and the evaluation of
    its validation part (None when the split has none)."""

    run: Path
    config: dict[str, Any]
    split: dict[str, Any]
    seconds: float
    result: dict[str, Any] | None


def train_and_evaluate(
    data: Path,
    method: str,
    out: Path,
    task: str,
    *,
    profile: str,
    config: dict[str, Any],
    labeled: Any = None,
    init: str | None = None,
    seed: int | None = None,
    units: str = "auto",
    largest_component: bool = False,
    score: str = "val",
) -> Trained:
    """Train ``method`` into ``out`` (replacing an earlier bench run there), time it, and
    evaluate the run on its own ``score`` part of the split (the validation part; ``labeled``
    for a dataset with nothing to hold out): what every train-and-score bench does."""
    from medssl.engine.launch import evaluate_run, train_run
    from medssl.engine.run import read_run

    start = time.perf_counter()
    run = train_run(
        data, method, out, task, labeled=labeled, profile=profile, config=config, init=init,
        seed=seed, force=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    run_config, split = read_run(run)
    result = None
    if split.get(score):
        result = evaluate_run(
            run, data, only=score, units=units, largest_component=largest_component
        )
    return Trained(run, run_config, split, seconds, result)


def print_results(
    title: str, rows: list[dict[str, Any]], columns: list[str], out: Path, width: int = 140
) -> None:
    """The bench's table, at least ``width`` wide (a log file must not cut it), and where its
    JSON is."""
    from medssl.report.tables import rows_table

    console = Console(width=max(width, Console().width))
    console.print(rows_table(title, rows, columns))
    console.print(f"results: {out / 'results.json'}")


def benchmark_names() -> list[tuple[str, str]]:
    """``(name, description)`` of every registered benchmark, by name."""
    load_benchmarks()
    return [(name, BENCHMARKS.get(name).description) for name in BENCHMARKS.names()]


def load_benchmarks() -> None:
    import medssl.bench.diagnosis  # noqa: F401  (registers jsrt-nodule)
    import medssl.bench.landmarks  # noqa: F401  (registers ceph, jsrt-landmarks)
    import medssl.bench.plan_check  # noqa: F401  (registers plan-check)
    import medssl.bench.pretraining  # noqa: F401  (registers pretrain-la, pretrain-pneumonia)
    import medssl.bench.protocols  # noqa: F401  (registers the protocols)
    import medssl.bench.speed  # noqa: F401  (registers the speed benchmarks)


def run_benchmark(
    name: str,
    profile: str = "auto",
    methods: list[str] | None = None,
    out: str | Path | None = None,
    config: str | Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Run the registered benchmark ``name``; print and return its table.

    ``config`` (YAML) is merged over the profile for every method alike, e.g. a longer schedule;
    it is recorded in ``results.json`` so that a table never passes for the stock protocol.
    ``options`` are the benchmark's own (``Benchmark.options``): ``largest_component`` for the
    train-and-evaluate protocols, ``warmup`` and ``steps`` for the speed benchmarks; one that
    the benchmark does not take is an error when set (not None, not False).
    """
    load_benchmarks()
    bench: Benchmark = BENCHMARKS.get(name)
    given = {k: v for k, v in options.items() if v is not None and v is not False}
    foreign = sorted(set(given) - set(bench.options))
    if foreign:
        takes = ", ".join(f"--{o.replace('_', '-')}" for o in bench.options) or "none"
        raise ConfigError(
            f"--{foreign[0].replace('_', '-')} does not apply to benchmark {name!r} "
            f"(its own options: {takes}); drop it"
        )
    profile = resolve_profile(profile)
    if profile not in bench.configs:
        raise ConfigError(
            f"--profile {profile!r}: benchmark {name!r} has the profiles "
            f"{', '.join(sorted(bench.configs))}; choose one"
        )
    out = Path(out or f"bench_out/{name}-{profile}")
    return bench.run(profile, methods or bench.methods, out, config, **given)


def run_protocol(
    bench: Benchmark,
    profile: str,
    methods: list[str],
    out: Path,
    config: str | Path | None = None,
    largest_component: bool = False,
) -> dict[str, Any]:
    """Train and evaluate each method of the protocol; print and return the table.

    ``largest_component`` post-processes every method's prediction alike (off by default).
    """
    from medssl.data.layouts import load_dataset
    from medssl.engine.task import get_task
    from medssl.tasks.segmentation.inference import postprocess_name

    name = bench.name
    overrides = read_yaml(config) if config is not None else {}
    dataset = load_dataset(bench.data_dir())
    for method in methods:  # a wrong name or key fails before the first hour of training
        bench.run_config(dataset, profile, method, overrides)
    metrics = list(bench.metrics or get_task(bench.task).bench_metrics)
    payload = results_payload(
        bench,
        profile,
        overrides,
        postprocess=postprocess_name(largest_component),
        units={},
        published=bench.published,
    )
    rows: list[dict[str, Any]] = payload["rows"]
    seeds: tuple[int | None, ...] = bench.seeds or (None,)
    for method in methods:
        runs = []
        for seed in seeds:
            trained = train_and_evaluate(
                bench.data_dir(),
                method,
                out / method if seed is None else out / method / f"seed{seed}",
                bench.task,
                profile=profile,
                config=bench.protocol(profile, overrides, method),
                labeled=bench.labeled,
                seed=seed,
                units=bench.units,
                largest_component=largest_component,
            )
            if trained.result is None:
                raise ConfigError(f"{name}: {trained.run} has no validation cases to score")
            metrics = metrics or list(trained.result["mean"])  # a task naming no columns: all
            runs.append(protocol_row(bench, method, trained, metrics, seed))
            payload["units"] = trained.result["units"]
            rows.append(runs[-1])
            payload["complete"] = False
            # after every run: an interrupted bench keeps the rows it finished
            write_json_atomic(out / "results.json", payload)
        if len(runs) > 1:
            rows.append(seed_summary(method, runs, metrics))
        payload["complete"] = method == methods[-1]
        write_json_atomic(out / "results.json", payload)
    spread = [f"{m}_sd" for m in metrics] if len(seeds) > 1 else []
    columns = ["method", *(["seed"] if bench.seeds else []), "labeled", *metrics, *spread]
    columns += ["train_s", "it_per_s", "train_it_per_s", "data_wait"]
    title = f"{name} ({profile}{', overridden by ' + str(config) if config else ''}; "
    title += "largest component; " if largest_component else ""
    print_results(f"{title}{payload['code']}, {payload['machine']})", rows, columns, out)
    return payload


def protocol_row(
    bench: Benchmark, method: str, trained: Trained, metrics: list[str], seed: int | None
) -> dict[str, Any]:
    """One run's row of a protocol's table: its validation metrics, timing and folder."""
    run, seconds, result = trained.run, trained.seconds, trained.result or {}
    steps = trained.config["train"]["max_steps"]
    return {
        "method": method,
        **({"seed": seed} if seed is not None else {}),
        "labeled": bench.labeled_text or len(trained.split["labeled"]),
        **{k: result["mean"].get(k) for k in metrics},
        "train_s": seconds,
        "it_per_s": steps / seconds,
        **training_throughput(run / "metrics.csv"),
        "val_cases": result["cases"],
        "run": str(run),
    }


def seed_summary(method: str, runs: list[dict[str, Any]], metrics: list[str]) -> dict[str, Any]:
    """Mean and sample standard deviation over one method's seeds (NaN values left out)."""
    row: dict[str, Any] = {
        "method": method,
        "seed": f"mean of {len(runs)}",
        "labeled": runs[0]["labeled"],
    }
    for key in [*metrics, "train_s", "it_per_s"]:
        values = [float(r[key]) for r in runs if r.get(key) is not None and math.isfinite(r[key])]
        row[key] = statistics.fmean(values) if values else float("nan")
        if key in metrics:
            row[f"{key}_sd"] = statistics.stdev(values) if len(values) > 1 else float("nan")
    return row


def training_throughput(metrics_csv: Path) -> dict[str, float]:
    """Mean training it/s (no caching, no validation) and data-wait share from metrics.csv."""
    columns: dict[str, list[float]] = {"perf/it_per_s": [], "perf/data_wait": []}
    with open(metrics_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            for key, values in columns.items():
                if row.get(key):
                    values.append(float(row[key]))
    mean = {k: sum(v) / len(v) if v else float("nan") for k, v in columns.items()}
    return {"train_it_per_s": mean["perf/it_per_s"], "data_wait": mean["perf/data_wait"]}

"""The ``medssl`` command line: a thin typer face over :mod:`medssl.api`.

Every user error ends in one line on stderr naming the file and the fix, and a non-zero exit;
heavy imports happen inside the commands so that ``medssl --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="medssl: label-efficient medical image analysis (data, train, evaluate, predict, report).",
)
data_app = typer.Typer(
    no_args_is_help=True, help="Check, plan, generate and corrupt datasets; export radiomics."
)
app.add_typer(data_app, name="data")
err = Console(stderr=True)
out = Console()


LargestComponent = Annotated[
    bool, typer.Option(help="keep only each class's largest connected component")
]


def _domains(value: str | None) -> list[str] | None:
    return [d.strip() for d in value.split(",") if d.strip()] if value else None


@data_app.command("check")
def data_check(
    directory: Path,
    domains: Annotated[str | None, typer.Option(help="a,b: only these domains")] = None,
):
    """Verify a dataset before anyone trains on it; one line per problem, non-zero exit if any."""
    from medssl.data.check import check_dataset, format_report

    problems = check_dataset(directory, domains=_domains(domains))
    out.print(format_report(problems), markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1 if problems else 0)


@data_app.command("plan")
def data_plan(
    directory: Path,
    profile: Annotated[str, typer.Option(help="auto | cpu | gpu")] = "auto",
    task: str = "segmentation",
    dims: Annotated[int | None, typer.Option(help="2 or 3: plan for these network dims")] = None,
):
    """Print the dataset's fingerprint and the defaults train would plan from it."""
    from medssl.engine.plan import format_fingerprint, format_plan, plan_for

    plan = plan_for(directory, task, profile, dims)  # medssl.plan(...) in Python
    if plan is None:
        out.print(f"the {task} task plans nothing: its --profile defaults apply", markup=False)
        return
    text = f"{format_fingerprint(plan.fingerprint)}\n{format_plan(plan)}"
    out.print(text, markup=False, highlight=False, soft_wrap=True)


@data_app.command("phantom")
def data_phantom(
    directory: Path,
    kind: Annotated[str, typer.Option(help="seg3d | cls3d | landmark2d")] = "seg3d",
    cases: int | None = None,
    seed: int = 0,
):
    """Write a synthetic dataset in a standard layout (deterministic by seed)."""
    from medssl.data.phantom import make_phantom

    path = make_phantom(directory, kind, cases=cases, seed=seed)
    out.print(f"wrote {kind} phantom to {path}")


@data_app.command("corrupt")
def data_corrupt(
    directory: Path,
    target: Path,
    fraction: float = 0.2,
    kinds: Annotated[str | None, typer.Option(help="comma-separated kinds; default all")] = None,
    seed: int = 0,
):
    """Copy a dataset and plant known problems in a fraction of its cases (to test data check)."""
    from medssl.data.corrupt import corrupt_dataset

    planted = corrupt_dataset(
        directory, target, fraction=fraction, kinds=_domains(kinds), seed=seed
    )
    out.print(f"planted {len(planted)} problems in {target} (listed in corruptions.json)")


@data_app.command("radiomics")
def data_radiomics(
    directory: Path,
    out_file: Annotated[Path, typer.Option("--out", help="CSV file to write")],
    settings: Annotated[
        Path | None,
        typer.Option(help="YAML: image_types, feature_classes, bin_width, resampled_spacing, ..."),
    ] = None,
    cache: Annotated[
        Path | None, typer.Option(help="per-case cache folder (default: medssl's cache)")
    ] = None,
    label: Annotated[
        int | None, typer.Option(help="the lesion's label value (default: every label > 0)")
    ] = None,
    positions: Annotated[
        Path | None,
        typer.Option(help="CSV of lesion centres and diameters (JSRT's clinical.csv form)"),
    ] = None,
    channel: Annotated[int, typer.Option(help="which image channel (file) to read")] = 0,
):
    """Radiomics features (pyradiomics) of every case with a lesion mask, as one CSV."""
    from rich.progress import Progress

    from medssl.data.radiomics import export_table, read_settings
    from medssl.data.radiomics.table import format_summary

    chosen = read_settings(settings) if settings is not None else None
    with Progress(console=err, transient=True, disable=not err.is_terminal) as progress:
        bar = progress.add_task("radiomics", total=None)
        table = export_table(
            directory,
            out_file,
            chosen,
            cache_dir=cache,
            label=label,
            positions=positions,
            channel=channel,
            on_case=lambda done, total: progress.update(bar, completed=done, total=total),
        )
    out.print(format_summary(table, out_file), markup=False, highlight=False, soft_wrap=True)


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", help="dataset folder (layout detected)")],
    out_dir: Annotated[Path, typer.Option("--out", help="run directory to create")],
    method: Annotated[
        str | None, typer.Option(help="method name (medssl methods); default supervised")
    ] = None,
    task: str = "segmentation",
    labeled: Annotated[str | None, typer.Option(help="N cases or a FRACTION")] = None,
    init: Annotated[str | None, typer.Option(help="run or weights to start from")] = None,
    profile: Annotated[str, typer.Option(help="auto | cpu | gpu")] = "auto",
    max_steps: int | None = None,
    config: Annotated[Path | None, typer.Option(help="YAML overriding the defaults")] = None,
    devices: int | None = None,
    nodes: Annotated[
        int | None, typer.Option(help="machines (Lightning num_nodes; torchrun or SLURM)")
    ] = None,
    precision: Annotated[str | None, typer.Option(help="32 | bf16-mixed | 16-mixed")] = None,
    seed: int | None = None,
    resume: bool = False,
    force: bool = False,
    domains: str | None = None,
):
    """Train a method; writes config.yaml, split.json, checkpoints and metrics.csv into --out."""
    from medssl import api

    run = api.train(
        data,
        method=method,
        out=out_dir,
        task=task,
        labeled=labeled,
        init=init,
        profile=profile,
        max_steps=max_steps,
        config=config,
        devices=devices,
        nodes=nodes,
        precision=precision,
        seed=seed,
        resume=resume,
        force=force,
        domains=_domains(domains),
    )
    from medssl.engine.run import is_worker_process

    if not is_worker_process():  # DDP workers run the same command
        out.print(f"run written to {run}")


@app.command()
def evaluate(
    run: Annotated[Path, typer.Option("--run")],
    data: Annotated[Path, typer.Option("--data")],
    out_file: Annotated[Path | None, typer.Option("--out", help="write the JSON here")] = None,
    domains: str | None = None,
    only: Annotated[str | None, typer.Option(help="val: only the run's held-out cases")] = None,
    units: Annotated[str, typer.Option(help="auto (mm when spacing is known) | voxel")] = "auto",
    largest_component: LargestComponent = False,
):
    """Evaluate a run on every labelled case of DIR and print a table."""
    from medssl import api
    from medssl.report.tables import evaluation_table

    result = api.evaluate(
        run,
        data,
        out=out_file,
        domains=_domains(domains),
        only=only,
        units=units,
        largest_component=largest_component,
    )
    out.print(evaluation_table(result))


@app.command()
def predict(
    inputs: Annotated[list[Path], typer.Argument(help="image files or DICOM folders")],
    run: Annotated[Path, typer.Option("--run")],
    out_dir: Annotated[Path, typer.Option("--out")],
    largest_component: LargestComponent = False,
):
    """Write a NIfTI mask per input with the input's geometry."""
    from medssl import api

    for path in api.predict(run, inputs, out_dir, largest_component=largest_component):
        out.print(f"wrote {path}")


@app.command()
def report(run: Path):
    """Write RUN/report.html with learning curves, metrics and slice overlays."""
    from medssl.report import build_report

    out.print(f"report: {build_report(run)}")


@app.command()
def demo(out_dir: Annotated[Path, typer.Option("--out")] = Path("demo_out"), force: bool = False):
    """Generated data -> few-label training -> evaluate -> report, in a few minutes on a CPU."""
    from medssl.demo import run_demo

    run_demo(out_dir, force=force)


@app.command()
def pretrain(
    data: Annotated[
        list[Path],
        typer.Option("--data", help="images (labels, if any, are ignored); repeat to pool sets"),
    ],
    method: Annotated[str, typer.Option(help="pretext method (medssl methods --task pretrain)")],
    out_dir: Annotated[Path, typer.Option("--out", help="run directory to create")],
    profile: Annotated[str, typer.Option(help="auto | cpu | gpu")] = "auto",
    max_steps: int | None = None,
    config: Annotated[Path | None, typer.Option(help="YAML overriding the defaults")] = None,
    devices: int | None = None,
    nodes: int | None = None,
    precision: Annotated[str | None, typer.Option(help="32 | bf16-mixed | 16-mixed")] = None,
    seed: int | None = None,
    resume: bool = False,
    force: bool = False,
    domains: str | None = None,
):
    """Self-supervised pretraining; writes the run and RUN/encoder.safetensors for --init."""
    from medssl import api
    from medssl.engine.run import is_worker_process

    run = api.train(
        data,
        method=method,
        out=out_dir,
        task="pretrain",
        profile=profile,
        max_steps=max_steps,
        config=config,
        devices=devices,
        nodes=nodes,
        precision=precision,
        seed=seed,
        resume=resume,
        force=force,
        domains=_domains(domains),
    )
    if not is_worker_process():
        out.print(f"run written to {run}; its encoder: {run / 'encoder.safetensors'}")


@app.command()
def bench(
    name: Annotated[str | None, typer.Argument(help="benchmark name (--list shows them)")] = None,
    profile: str = "auto",
    methods: str | None = None,
    out_dir: Annotated[Path | None, typer.Option("--out")] = None,
    config: Path | None = None,
    largest_component: LargestComponent = False,
    warmup: Annotated[
        int | None, typer.Option(help="speed benchmarks: untimed steps first (default 2)")
    ] = None,
    steps: Annotated[
        int | None, typer.Option(help="speed benchmarks: timed steps (default 5 cpu, 20 gpu)")
    ] = None,
    datasets: Annotated[
        str | None, typer.Option(help="plan-check: only these datasets (a,b)")
    ] = None,
    no_reference: Annotated[
        bool, typer.Option("--no-reference", help="plan-check: skip the hand-tuned rows")
    ] = False,
    list_: Annotated[bool, typer.Option("--list", help="list the benchmarks and exit")] = False,
):
    """Run a named benchmark; prints a table and writes JSON.

    --config YAML is merged over the profile for every method (e.g. a longer schedule, or a
    smaller patch for speed-la).
    """
    if list_:
        from medssl.bench.base import benchmark_names

        for known, description in benchmark_names():
            out.print(f"{known}: {description}", markup=False, highlight=False, soft_wrap=True)
        return
    if name is None:
        from medssl.errors import ConfigError

        raise ConfigError("medssl bench: give a benchmark NAME (medssl bench --list shows them)")
    from medssl.bench import run_benchmark

    run_benchmark(
        name,
        profile=profile,
        methods=_domains(methods),
        out=out_dir,
        config=config,
        largest_component=largest_component,
        warmup=warmup,
        steps=steps,
        datasets=datasets,
        no_reference=no_reference,
    )


@app.command("methods")
def list_methods(task: str = "segmentation"):
    """List the registered methods of a task."""
    from medssl import api

    for name in api.methods(task):
        out.print(name)


def main() -> None:
    from medssl.errors import Interrupted
    from medssl.guard import guarded, quiet_warnings
    from medssl.logs import quiet_third_party

    quiet_third_party()
    quiet_warnings()
    code = guarded(lambda: app(standalone_mode=False), sys.argv[1:])
    if code == Interrupted.exit_code:
        # Ctrl-C may land while native worker threads (MONAI's cache fill) still run; a normal
        # interpreter shutdown can then abort. Every file medssl wrote is complete and flushed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()

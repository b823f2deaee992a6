"""Start a run from what a user gives (flags, a config file, a data path), or evaluate one.

The API and the bench both come here: flags over a ``--config`` file over the method's and the
task's defaults, a resume checked against the saved run, the dataset read as the task reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medssl.engine import inference
from medssl.engine.config import read_yaml
from medssl.engine.module import get_method
from medssl.engine.plan import make_plan, note_overrides, wants_plan
from medssl.engine.profiles import resolve_config, resolve_profile
from medssl.engine.resume import resumed_values
from medssl.engine.run import data_dir_of, read_run
from medssl.engine.task import get_task
from medssl.engine.train import train as fit
from medssl.errors import CheckpointError, ConfigError, file_error


def parse_labeled(value: str | int | float | None) -> int | float | None:
    """``--labeled 8`` -> 8 cases; ``--labeled 0.1`` -> 10 % of the training cases."""
    if value is None or isinstance(value, int | float):
        return value
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"--labeled {value!r}: give a count (8) or a fraction (0.1)") from None
    return int(number) if number.is_integer() and "." not in str(value) else number


def flag_values(
    method: str,
    data: str | Path,
    task: str,
    labeled: str | int | float | None = None,
    init: str | Path | None = None,
    domains: list[str] | None = None,
    **train_options: Any,
) -> dict[str, Any]:
    """The run-config values that ``train``'s flags set (they override the profile and any
    ``--config`` file); ``train_options`` go under ``train`` (max_steps, devices, precision,
    seed) when not None."""
    flags: dict[str, Any] = {"method": method, "data_dir": str(data), "task": task}
    if domains:
        flags["domains"] = domains
    if labeled is not None:
        flags["labeled"] = parse_labeled(labeled)
    if init is not None:
        flags["init"] = str(init)
    chosen = {k: v for k, v in train_options.items() if v is not None}
    if chosen:
        flags["train"] = chosen
    return flags


def train_run(
    data: str | Path | Sequence[str | Path],
    method: str | None,
    out: str | Path,
    task: str,
    labeled: str | int | float | None = None,
    init: str | None = None,
    profile: str = "auto",
    max_steps: int | None = None,
    config: str | Path | dict[str, Any] | None = None,
    devices: int | None = None,
    precision: str | None = None,
    seed: int | None = None,
    resume: bool = False,
    force: bool = False,
    domains: list[str] | None = None,
    nodes: int | None = None,
) -> Path:
    """Resolve the run's config and train it (``medssl.train`` documents the arguments)."""
    data = data_dir_of(data)
    file_values = read_yaml(config) if isinstance(config, str | Path) else dict(config or {})
    if resume:
        if not (Path(out) / "config.yaml").is_file():
            raise file_error(
                out,
                "nothing to resume (no run here)",
                "drop --resume to start a new run",
                CheckpointError,
            )
        saved, _ = read_run(out)
        if method is not None and method != saved["method"]:
            raise file_error(
                out,
                f"was trained with method {saved['method']!r}, not {method!r}",
                "drop --method or start a new run",
                ConfigError,
            )
        profile, task, method = saved.get("profile", profile), saved["task"], saved["method"]
    method = method or "supervised"
    get_task(task)  # an unknown task is named as such, before its methods are looked up
    method_cls = get_method(task, method)
    flags = flag_values(
        method,
        data,
        task,
        labeled=labeled,
        init=init,
        domains=domains,
        max_steps=max_steps,
        devices=devices,
        nodes=nodes,
        precision=precision,
        seed=seed,
    )
    if resume:  # the saved run, changed only where a checkpoint can continue from
        file_values = resumed_values(Path(out), file_values, flags)
    dataset = get_task(task).load_dataset(data, domains=domains)
    plan = None
    if not resume and wants_plan(file_values, flags):  # a resumed run keeps its saved values
        requested = (file_values.get("data") or {}).get("spatial_dims")
        plan = make_plan(task, dataset, resolve_profile(profile), requested)
    cfg = resolve_config(
        task=task,
        method_cls=method_cls,
        dataset=dataset,
        profile=profile,
        file_values=file_values,
        flag_values=flags,
        plan=plan,
    )
    if plan is not None:
        note_overrides(plan, cfg.to_dict())
    return fit(cfg, dataset, out, force=force, resume=resume, plan=plan)


def evaluate_run(
    run: str | Path,
    data: str | Path,
    out: str | Path | None = None,
    domains: list[str] | None = None,
    only: str | None = None,
    units: str = "auto",
    largest_component: bool = False,
) -> dict:
    """Metrics of a trained run on every labelled case of ``data``.

    ``only="val"`` (or ``"labeled"``, ``"unlabeled"``) restricts them to that part of the run's
    own ``split.json``: the held-out cases of the data the run was trained on.
    """
    from medssl.data.layouts import load_dataset

    dataset = load_dataset(data, domains=domains)
    if only is not None:
        _, split = read_run(run)
        if only not in split:
            raise ConfigError(f"--only {only!r}: the run's split.json has {sorted(split)}")
        dataset = dataset.subset(split[only])
    options: dict[str, Any] = {}  # only what was asked: other tasks have no such options
    if units != "auto":
        options["units"] = units
    if largest_component:
        options["largest_component"] = True
    return inference.evaluate(run, dataset, out=out, **options)

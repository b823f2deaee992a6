"""The Python API: the same functions the CLI calls, usable from a notebook.

import medssl
run = medssl.train("data/la2018", method="supervised", out="runs/sup", labeled=8)
medssl.evaluate(run, "data/my_test_set")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medssl.engine import inference
from medssl.engine.launch import evaluate_run, parse_labeled, train_run
from medssl.engine.module import method_names

__all__ = ["evaluate", "methods", "parse_labeled", "plan", "predict", "train"]


def train(
    data: str | Path | list[str | Path],
    method: str | None = None,
    out: str | Path = "runs/run",
    task: str = "segmentation",
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
    """Train a method (default ``supervised``); returns the run directory.

    ``resume=True`` continues ``out`` with its saved config (task and method included); flags
    such as ``max_steps`` may still change it. ``data`` may list several folders for
    ``task="pretrain"``: their images are pooled.
    """
    return train_run(
        data,
        method,
        out,
        task,
        labeled=labeled,
        init=init,
        profile=profile,
        max_steps=max_steps,
        config=config,
        devices=devices,
        precision=precision,
        seed=seed,
        resume=resume,
        force=force,
        domains=domains,
        nodes=nodes,
    )


def evaluate(
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
    return evaluate_run(run, data, out, domains, only, units, largest_component)


def predict(
    run: str | Path, inputs: list[str | Path], out: str | Path, largest_component: bool = False
) -> list[Path]:
    options = {"largest_component": True} if largest_component else {}
    return inference.predict(run, inputs, out, **options)


def plan(
    data: str | Path, task: str = "segmentation", profile: str = "auto", dims: int | None = None
) -> dict[str, Any] | None:
    """The dataset's fingerprint and the defaults ``train`` would plan from it (the content of
    ``RUN/plan.json`` before overrides); None for a task that plans nothing."""
    from medssl.engine.plan import plan_for

    planned = plan_for(data, task, profile, dims)
    return planned.to_dict() if planned else None


def methods(task: str = "segmentation") -> list[str]:
    return method_names(task)

"""Planned defaults: config values computed from the dataset's fingerprint, per task and profile.

A task that can plan (segmentation) turns the fingerprint (:mod:`medssl.data.fingerprint`) into
run-config values with one reason per decision; they sit between the profile's fixed defaults and
the method's own, so a method's paper setting, ``--config`` and the flags all override any planned
key. ``plan: false`` in a config (the bench protocols set it) keeps the profile's fixed defaults.
A new run writes ``RUN/plan.json``: the fingerprint, the plan, and the planned keys something
else overrode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medssl.data.dataset import Dataset
from medssl.data.fingerprint import Fingerprint, fingerprint
from medssl.engine.task import get_task

PLAN = "plan.json"


@dataclass
class Plan:
    """What a task planned: the network's dimensions, config values, and why."""

    task: str
    profile: str
    dims: int
    config: dict[str, Any]
    reasons: list[str]
    fingerprint: Fingerprint
    overridden: dict[str, Any] = field(default_factory=dict)  # key -> the value that won

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "profile": self.profile,
            "dims": self.dims,
            "planned": self.config,
            "reasons": self.reasons,
            "overridden": self.overridden,
            "fingerprint": self.fingerprint.to_dict(),
        }


def make_plan(
    task: str, dataset: Dataset, profile: str, requested_dims: int | None = None
) -> Plan | None:
    """The task's plan for ``dataset`` at ``profile``, or None for a task that does not plan."""
    plugin = get_task(task)
    if not plugin.plans:
        return None
    fp = fingerprint(dataset)
    dims, config, reasons = plugin.plan(fp, dataset, profile, requested_dims)
    return Plan(task, profile, dims, config, reasons, fp)


def plan_for(data: str | Path, task: str, profile: str, dims: int | None = None) -> Plan | None:
    """:func:`make_plan` for the dataset at ``data`` (``data plan`` and ``medssl.plan``)."""
    from medssl.engine.profiles import resolve_profile

    return make_plan(task, get_task(task).load_dataset(data), resolve_profile(profile), dims)


def wants_plan(*layers: dict[str, Any]) -> bool:
    """False when any of the user's layers sets ``plan: false``."""
    return all(layer.get("plan", True) is not False for layer in layers)


def note_overrides(plan: Plan, resolved: dict[str, Any]) -> Plan:
    """Record the planned keys whose resolved value differs (a method default, --config, a
    flag, or the task's fitting of the patch to the images won)."""
    from medssl.engine.resume import flatten

    final = flatten(resolved)
    plan.overridden = {
        key: final.get(key)
        for key, value in flatten(plan.config).items()
        if key in final and final[key] != value
    }
    return plan


def format_plan(plan: Plan) -> str:
    """The plan as a few lines for the terminal (``data plan`` and before training)."""
    fp = plan.fingerprint
    lines = [
        f"plan ({plan.task}, profile {plan.profile}) from the fingerprint of {fp.cases} cases "
        f"({fp.read} read):",
        *(f"  - {reason}" for reason in plan.reasons),
    ]
    if plan.overridden:
        changed = ", ".join(f"{k}={v}" for k, v in plan.overridden.items())
        lines.append(f"  overridden by the method, --config or the flags: {changed}")
    return "\n".join(lines)


def format_fingerprint(fp: Fingerprint) -> str:
    def axes(values: list[float]) -> str:
        return " x ".join(f"{v:g}" for v in values)

    unit = "mm" if fp.spacing_known else "(no spacing: voxels)"
    lines = [
        f"fingerprint of {fp.root} ({fp.layout}, {fp.cases} cases, {fp.labeled} labelled, "
        f"voxels of {fp.read} read):",
        f"  modality: {', '.join(fp.modality.values()) or 'not declared'}",
        f"  spacing {unit}: median {axes(fp.spacing.median)} "
        f"(10-90 %: {axes(fp.spacing.p10)} .. {axes(fp.spacing.p90)})",
        f"  shape: median {axes(fp.shape.median)} (min {axes(fp.shape.min)}, "
        f"max {axes(fp.shape.max)})",
    ]
    if fp.foreground_bbox_mm:
        lines.append(f"  foreground bounding box: median {axes(fp.foreground_bbox_mm)} {unit}")
    for c in fp.intensity:
        lines.append(
            f"  intensity {c.name} (foreground): mean {c.mean:g}, sd {c.std:g}, "
            f"0.5-99.5 % {c.p00_5:g} .. {c.p99_5:g}"
        )
    for name, c in fp.classes.items():
        lines.append(
            f"  class {name} ({c.index}): in {c.cases}/{fp.read} cases, median "
            f"{100 * c.fraction:.2f} % of a case, box {axes(c.bbox_mm)}"
        )
    return "\n".join(lines)


def write_plan(run_dir: Path, plan: Plan) -> None:
    from medssl.atomic import write_json_atomic

    write_json_atomic(run_dir / PLAN, plan.to_dict())

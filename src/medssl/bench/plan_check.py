"""``medssl bench plan-check``: supervised training with the planned defaults on every shared
dataset that has labels, beside the hand-tuned protocol's supervised row where one exists.

Each dataset trains ``supervised`` with nothing but its plan (``medssl data plan``) and the
split: where a protocol exists (``la-8``, ``acdc-7``) the plan trains on that protocol's
labelled cases and is scored on its validation cases, and the protocol's own supervised row runs
beside it, on the same code and machine; elsewhere every labelled case but a validation part
(``data.val_cases``, 20 %) is labelled. A dataset with a single labelled case (BraTS here)
has nothing to hold out: it trains on that case and is scored on it, which checks that the plan
runs in the budget and fits, not that it generalises; its row says so in ``scored``. Printed per
dataset: the plan's key values, its Dice (per case, in the images' own grid), training time, and
the hand-tuned row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from medssl.atomic import write_json_atomic
from medssl.bench.base import (
    BENCHMARKS,
    SHARED_DATA,
    Benchmark,
    print_results,
    register,
    results_payload,
    train_and_evaluate,
)
from medssl.engine.config import deep_update, read_yaml
from medssl.errors import ConfigError

#: the split keys a protocol fixes; the plan-check of its dataset takes them and nothing else
SPLIT_KEYS = ("val_cases", "val_order", "labeled_order", "labeled_ids")


@dataclass(frozen=True)
class PlanTarget:
    """One dataset of the check: a folder under the shared data, or a generated phantom."""

    name: str
    data: str  # folder under ../shared/data, or "phantom:KIND"
    reference: str | None = None  # the protocol whose supervised row is the hand-tuned one
    held_out: bool = True  # False: one labelled case, trained on and scored on (a fit check)


TARGETS = [
    PlanTarget("la2018", "la2018", "la-8"),
    PlanTarget("acdc", "acdc", "acdc-7"),
    PlanTarget("brats2018", "brats2018", held_out=False),
    PlanTarget("jsrt", "jsrt"),
    PlanTarget("oasis2d", "oasis2d"),
    PlanTarget("colonoscopy", "colonoscopy"),
    PlanTarget("fundus", "fundus"),
    PlanTarget("phantom-seg3d", "phantom:seg3d"),
]

COLUMNS = ["dataset", "run", "labeled", "scored", "dice", "hd95", "train_s", "plan"]


@dataclass
class PlanCheckBenchmark(Benchmark):
    targets: list[PlanTarget] = field(default_factory=lambda: list(TARGETS))
    options: ClassVar[tuple[str, ...]] = ("datasets", "no_reference")

    def run(
        self,
        profile: str,
        methods: list[str],
        out: Path,
        config: str | Path | None = None,
        datasets: str | None = None,
        no_reference: bool = False,
    ) -> dict[str, Any]:

        if methods != ["supervised"]:
            raise ConfigError("plan-check trains supervised only; drop --methods")
        targets = self.chosen(datasets)
        overrides = read_yaml(config) if config is not None else {}
        payload = results_payload(self, profile, overrides)
        rows: list[dict[str, Any]] = payload["rows"]
        for target in targets:
            data = self.target_data(target, out)
            protocol = BENCHMARKS.get(target.reference) if target.reference else None
            rows.append(planned_row(target, data, profile, out, overrides, protocol))
            write_json_atomic(out / "results.json", payload)
            if protocol is not None and not no_reference:
                rows.append(reference_row(target, protocol, profile, out))
                write_json_atomic(out / "results.json", payload)
        payload["complete"] = True
        write_json_atomic(out / "results.json", payload)
        title = f"{self.name} ({profile}; {payload['code']}, {payload['machine']})"
        print_results(title, rows, COLUMNS, out, width=160)
        return payload

    def chosen(self, datasets: str | None) -> list[PlanTarget]:
        if not datasets:
            return list(self.targets)
        names = [d.strip() for d in datasets.split(",") if d.strip()]
        known = {t.name: t for t in self.targets}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(
                f"--datasets {unknown[0]!r}: not a plan-check dataset; choose from "
                f"{', '.join(known)}"
            )
        return [known[n] for n in names]

    @staticmethod
    def target_data(target: PlanTarget, out: Path) -> Path:
        if target.data.startswith("phantom:"):
            from medssl.data.phantom import make_phantom

            kind = target.data.split(":", 1)[1]
            folder = out / "data" / kind
            return folder if folder.is_dir() else make_phantom(folder, kind, seed=0)
        return SHARED_DATA / target.data


def planned_row(
    target: PlanTarget,
    data: Path,
    profile: str,
    out: Path,
    overrides: dict[str, Any],
    protocol: Benchmark | None,
) -> dict[str, Any]:
    """Train supervised with the plan (and the protocol's split, where there is one)."""
    import json

    config: dict[str, Any] = {"plan": True}
    labeled = None
    if protocol is not None:
        fixed = protocol.configs[profile].get("data", {})
        config["data"] = {k: fixed[k] for k in SPLIT_KEYS if k in fixed}
        labeled = protocol.labeled
    if not target.held_out:
        config["data"] = {"val_cases": 0}
    config = deep_update(config, overrides)
    run_dir = out / target.name / "planned"
    scored = "val" if target.held_out else "labeled"
    row = train_and_score(data, run_dir, profile, config, labeled, scored)
    plan = json.loads((run_dir / "plan.json").read_text())
    return {"dataset": target.name, "run": "planned", **row, "plan": plan_summary(plan)}


def reference_row(
    target: PlanTarget, protocol: Benchmark, profile: str, out: Path
) -> dict[str, Any]:
    """The protocol's own supervised row, hand-tuned settings, same code and machine."""
    run_dir = out / target.name / protocol.name
    row = train_and_score(
        protocol.data_dir(), run_dir, profile, protocol.protocol(profile), protocol.labeled
    )
    return {"dataset": target.name, "run": f"{protocol.name} (hand-tuned)", **row, "plan": "-"}


def train_and_score(
    data: Path,
    run_dir: Path,
    profile: str,
    config: dict[str, Any],
    labeled: Any,
    scored: str = "val",
) -> dict[str, Any]:
    """Train, then score the ``scored`` part of the split: ``val``, or ``labeled`` where the
    dataset has a single labelled case (then the Dice is a fit, not a generalisation)."""
    trained = train_and_evaluate(
        data, "supervised", run_dir, "segmentation", profile=profile, config=config,
        labeled=labeled, score=scored,
    )  # fmt: skip
    row = {
        "labeled": len(trained.split["labeled"]),
        "train_s": trained.seconds,
        "scored": "validation cases" if scored == "val" else "its training case (no other)",
    }
    result = trained.result
    if result is None:
        return {**row, "dice": None, "hd95": None}
    mean = result["mean"]
    return {
        **row,
        "val_cases": result["cases"],
        "dice": mean["dice"],
        "hd95": mean["hd95"],
        "run_dir": str(trained.run),
    }


def plan_summary(plan: dict[str, Any]) -> str:
    """The key values the run trained with, in one cell: dims, spacing, patch, network, steps
    (the plan's, with what ``--config`` or the method overrode in their place)."""
    planned = {k: dict(v) for k, v in plan["planned"].items() if isinstance(v, dict)}
    for key, value in (plan.get("overridden") or {}).items():
        section, _, name = key.partition(".")
        planned.setdefault(section, {})[name] = value
    data, net = planned["data"], planned["net"]
    spacing = data.get("target_spacing") or data.get("slice_size") or "native"
    if isinstance(spacing, list):
        spacing = "x".join(f"{s:g}" for s in spacing if s > 0)
    patch = "x".join(str(p) for p in data["patch_size"])
    steps = planned["train"]["max_steps"]
    return (
        f"{plan['dims']}D {spacing} patch {patch} {net.get('name', 'unet')} "
        f"{net['channels'][0]}-{net['channels'][-1]} x{len(net['channels'])} {steps} steps"
    )


register(
    PlanCheckBenchmark(
        name="plan-check",
        description="supervised with the planned defaults on every shared labelled dataset, "
        "beside the hand-tuned protocol row (la-8, acdc-7)",
        data="",
        task="segmentation",
        methods=["supervised"],
        labeled=None,
        configs={"cpu": {}, "gpu": {}},
    )
)

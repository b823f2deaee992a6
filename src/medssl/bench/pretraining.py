"""``medssl bench pretrain-la`` and ``pretrain-pneumonia``: does pretraining make few labels go
further, alone and together with semi-supervision?

Each pretext method pretrains once, on every image of the dataset but the downstream validation
cases (``data.exclude_ids``: the fine-tuned runs are scored on images pretraining never saw;
labels are never read). Then every arm fine-tunes at the same budget (the downstream protocol,
unplanned): per labelled budget, downstream method and mode (``finetune``: all weights train;
``probe``: the encoder frozen for good, ``freeze_encoder: all``), from scratch and from each
pretrained encoder (``--init``), at several seeds. The table gives, per arm, the mean and the
spread (sample standard deviation) over seeds of the validation metrics; the JSON keeps every run.
``--methods`` picks the arms (``scratch`` and pretext method names). ``--config F``: its
``pretrain:`` mapping is merged over the pretext runs' settings, the rest over the fine-tuning
protocol's.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from medssl.atomic import write_json_atomic
from medssl.bench.base import (
    Benchmark,
    print_results,
    register,
    results_payload,
    train_and_evaluate,
)
from medssl.bench.protocols import LA_CONFIGS, PNEUMONIA
from medssl.engine.config import deep_update, read_yaml
from medssl.errors import ConfigError

SCRATCH = "scratch"


@dataclass(frozen=True)
class Arm:
    """One fine-tuning setting: budget, downstream method, mode, initialisation."""

    labeled: int | float
    method: str
    mode: str  # "finetune" | "probe"
    init: str  # "scratch" or a pretext method

    @property
    def name(self) -> str:
        return f"{self.init}-{self.method}-{self.mode}-{self.labeled}"


@dataclass
class PretrainBenchmark(Benchmark):
    """``configs`` is the fine-tuning protocol per profile; ``pretrain_configs`` the pretext
    runs' settings per profile."""

    pretrain_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    budgets: list[int | float] = field(default_factory=list)
    downstream: list[str] = field(default_factory=lambda: ["supervised"])
    modes: list[str] = field(default_factory=lambda: ["finetune"])
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    options: ClassVar[tuple[str, ...]] = ()

    def arms(self, inits: list[str]) -> list[Arm]:
        """Every budget x method x mode x init; a probe needs a pretrained encoder to freeze,
        so ``scratch`` only fine-tunes."""
        return [
            Arm(budget, method, mode, init)
            for budget in self.budgets
            for method in self.downstream
            for mode in self.modes
            for init in inits
            if not (mode == "probe" and init == SCRATCH)
        ]

    def run(
        self,
        profile: str,
        methods: list[str],
        out: Path,
        config: str | Path | None = None,
    ) -> dict[str, Any]:
        from medssl.data.layouts import load_dataset
        from medssl.engine.task import get_task

        inits = list(dict.fromkeys(methods))
        pretexts = [m for m in inits if m != SCRATCH]
        unknown = [m for m in pretexts if m not in self.methods]
        if unknown:
            raise ConfigError(
                f"--methods {unknown[0]!r}: {self.name} compares {', '.join(self.methods)}"
            )
        overrides = read_yaml(config) if config is not None else {}
        pretrain_overrides = overrides.pop("pretrain", None) or {}
        dataset = load_dataset(self.data_dir())
        reference = self.run_config(dataset, profile, "supervised", overrides)
        held_out = get_task(self.task).make_split(dataset, reference)["val"]
        payload = results_payload(
            self,
            profile,
            {**overrides, "pretrain": pretrain_overrides},
            seeds=self.seeds,
            held_out_of_pretraining=len(held_out),
        )
        payload["pretraining"] = {}
        runs: list[dict[str, Any]] = []
        payload["runs"] = runs
        for pretext in pretexts:  # each pretrained once, then shared by every arm
            payload["pretraining"][pretext] = self.pretrain(
                pretext, profile, out, held_out, pretrain_overrides
            )
            write_json_atomic(out / "results.json", payload)
        for arm in self.arms(inits):
            for seed in self.seeds:
                init = payload["pretraining"].get(arm.init, {}).get("run")
                runs.append(self.finetune(arm, seed, profile, out, overrides, init))
                payload["rows"] = summarise(runs, self.task_metrics())
                write_json_atomic(out / "results.json", payload)
        payload["complete"] = True
        write_json_atomic(out / "results.json", payload)
        columns = ["labeled", "method", "mode", "init", *self.table_metrics(), "seeds", "train_s"]
        title = f"{self.name} ({profile}; {payload['code']}, {payload['machine']})"
        print_results(title, payload["rows"], columns, out, width=160)
        return payload

    def task_metrics(self) -> list[str]:
        from medssl.engine.task import get_task

        return list(get_task(self.task).bench_metrics)

    def table_metrics(self) -> list[str]:
        return [m for metric in self.task_metrics() for m in (metric, f"{metric}_sd")][:4]

    def pretrain(
        self,
        method: str,
        profile: str,
        out: Path,
        held_out: list[str],
        overrides: dict[str, Any],
    ) -> dict[str, Any]:
        from medssl.engine.launch import train_run

        config = deep_update(self.pretrain_configs[profile], overrides)
        config = deep_update(config, {"plan": False, "data": {"exclude_ids": held_out}})
        start = time.perf_counter()
        run = train_run(
            self.data_dir(), method, out / "pretrain" / method, "pretrain",
            profile=profile, config=config, force=True,
        )  # fmt: skip
        return {"run": str(run), "train_s": time.perf_counter() - start}

    def finetune(
        self,
        arm: Arm,
        seed: int,
        profile: str,
        out: Path,
        overrides: dict[str, Any],
        init: str | None,
    ) -> dict[str, Any]:
        config = self.protocol(profile, overrides)
        if arm.mode == "probe":
            config = deep_update(config, {"freeze_encoder": "all"})
        trained = train_and_evaluate(
            self.data_dir(), arm.method, out / "finetune" / f"{arm.name}-s{seed}", self.task,
            profile=profile, config=config, labeled=arm.labeled, init=init, seed=seed,
            units=self.units,
        )  # fmt: skip
        mean = trained.result["mean"] if trained.result else {}
        return {
            "labeled": arm.labeled,
            "method": arm.method,
            "mode": arm.mode,
            "init": arm.init,
            "seed": seed,
            **{k: mean.get(k) for k in self.task_metrics()},
            "train_s": trained.seconds,
            "run": str(trained.run),
        }


def summarise(runs: list[dict[str, Any]], metrics: list[str]) -> list[dict[str, Any]]:
    """One row per arm: the mean and the sample standard deviation of each metric over seeds."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for run in runs:
        key = (run["labeled"], run["method"], run["mode"], run["init"])
        groups.setdefault(key, []).append(run)
    rows = []
    for (labeled, method, mode, init), members in groups.items():
        row: dict[str, Any] = {
            "labeled": labeled,
            "method": method,
            "mode": mode,
            "init": init,
            "seeds": len(members),
        }
        for metric in metrics:
            values = [m[metric] for m in members if m.get(metric) is not None]
            row[metric] = statistics.fmean(values) if values else None
            row[f"{metric}_sd"] = statistics.stdev(values) if len(values) > 1 else None
        row["train_s"] = statistics.fmean(m["train_s"] for m in members)
        rows.append(row)
    return rows


# LA2018: pretrain on the 64 training volumes (the 16 validation cases of the la-* protocols are
# held out), fine-tune at 4 and 8 labels: supervised and BCP (within a point of the best cpu
# semi-supervised rows of la-8 and the fastest of them). The cpu profile shortens fine-tuning to
# 600 steps of the la-8 cpu protocol so that the 24 fine-tuning runs and two pretext runs take
# about an hour on 2 cores.
LA_PRETRAIN = {
    "cpu": {
        "net": {"name": "unet", "channels": [16, 32, 64, 128], "num_res_units": 1},
        "data": {
            "patch_size": [64, 64, 48],
            "target_spacing": [1.25, 1.25, 1.25],  # the fine-tuning protocol's preprocessing
            "batch_size": 2,
            "val_cases": 4,
        },
        "train": {"max_steps": 1000, "val_every": 250},
        "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 1e-5, "schedule": "cosine"},
    },
    "gpu": {  # the la-* gpu network and patch; VoCo's optimiser and a long schedule
        "net": {"name": "ssl4mis_vnet", "channels": [16, 32, 64, 128, 256]},
        "data": {"patch_size": [112, 112, 80], "batch_size": 4, "val_cases": 4},
        "train": {"max_steps": 20000, "val_every": 1000, "precision": "bf16-mixed"},
        "optim": {"name": "adamw", "lr": 1e-4, "weight_decay": 1e-5, "schedule": "cosine"},
    },
}
LA_FINETUNE = {
    "cpu": deep_update(LA_CONFIGS["cpu"], {"train": {"max_steps": 600, "val_every": 200}}),
    "gpu": LA_CONFIGS["gpu"],
}

register(
    PretrainBenchmark(
        name="pretrain-la",
        description="LA2018: VoCo and Rubik's cube+ pretraining on the 64 training volumes, "
        "fine-tuned with 4 and 8 labels (supervised, BCP) against scratch, 2 seeds",
        data="la2018",
        task="segmentation",
        methods=[SCRATCH, "voco", "rubik"],
        labeled=8,  # the split's reference budget (the validation cases do not depend on it)
        configs=LA_FINETUNE,
        pretrain_configs=LA_PRETRAIN,
        budgets=[4, 8],
        downstream=["supervised", "bcp"],
        units="voxel",
    )
)

# PneumoniaMNIST: C2L on the training images without their labels (validation and test images
# held out), then 1 % and 10 % of the labels: linear probe and fine-tuning against scratch.
PNEUMONIA_PRETRAIN = {
    "cpu": {
        "net": {"name": "resnet18"},
        "data": {"batch_size": 64, "val_cases": 0.05},
        "train": {"max_steps": 1500, "val_every": 500},
        "optim": {"name": "sgd", "lr": 0.03, "weight_decay": 1e-4, "schedule": "cosine"},
    },
    "gpu": {  # C2L: batch 128, SGD 0.03, 120 epochs of the ~4000 training images
        "net": {"name": "resnet18"},
        "data": {"batch_size": 128, "val_cases": 0.05},
        "train": {"max_steps": 4000, "val_every": 500, "precision": "bf16-mixed"},
        "optim": {"name": "sgd", "lr": 0.03, "weight_decay": 1e-4, "schedule": "cosine"},
    },
}

register(
    PretrainBenchmark(
        name="pretrain-pneumonia",
        description="PneumoniaMNIST: C2L on the training images without labels, then 1 % and "
        "10 % of the labels, linear probe and fine-tuning against scratch, 2 seeds",
        data="pneumoniamnist",
        task="classification",
        methods=[SCRATCH, "c2l"],
        labeled=None,
        configs=PNEUMONIA.configs,
        pretrain_configs=PNEUMONIA_PRETRAIN,
        budgets=[0.01, 0.1],
        modes=["probe", "finetune"],
    )
)

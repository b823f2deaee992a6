"""Self-supervised pretraining: unlabelled images in, a pretext loss to monitor, an encoder out.

Labels are never read, even where a dataset has them (its unlabelled view), and every case that
is not a test case takes part: a seeded share validates the pretext loss, which picks
``best.ckpt`` (lower is better). A batch is ``{"unlabeled": {"image"}}``: random patches (or
whole 2D images) after the same intensity preprocessing the downstream run will use; a pretext
method turns them into its own views (VoCo's crops, Rubik's cubes, C2L's augmentations). After
training the method's backbone is exported as ``RUN/encoder.safetensors`` with its sidecar, for
``train --init RUN``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from medssl.atomic import write_npz
from medssl.data.dataset import Dataset
from medssl.data.splits import make_pretrain_split
from medssl.engine.config import RunConfig
from medssl.engine.handoff import export_encoder
from medssl.engine.module import MethodModule
from medssl.engine.task import Monitor, Task, register_task
from medssl.errors import ConfigError
from medssl.tasks.pretrain.data import PretrainData
from medssl.tasks.segmentation.config import PatchDataConfig
from medssl.tasks.segmentation.profiles import fit_patch, network_dims

PRETEXT_SUMMARY = "pretext_summary.npz"

PRETRAIN_PROFILES: dict[tuple[str, int], dict[str, Any]] = {
    ("gpu", 3): {
        "data": {"patch_size": [96, 96, 96], "batch_size": 4, "num_workers": 4, "val_cases": 0.1},
        "train": {"max_steps": 20000, "val_every": 1000, "precision": "bf16-mixed"},
        "net": {"channels": [32, 64, 128, 256, 320]},
        "optim": {"name": "adamw", "lr": 1e-4, "weight_decay": 1e-5, "schedule": "cosine"},
    },
    ("gpu", 2): {
        "data": {"patch_size": [224, 224], "batch_size": 64, "num_workers": 4, "val_cases": 0.1},
        "train": {"max_steps": 20000, "val_every": 1000, "precision": "bf16-mixed"},
        "net": {"channels": [16, 32, 64, 128, 256]},
        "optim": {"name": "adamw", "lr": 1e-4, "weight_decay": 1e-5, "schedule": "cosine"},
    },
    ("cpu", 3): {
        "data": {"patch_size": [64, 64, 48], "batch_size": 2, "val_cases": 0.1},
        "train": {"max_steps": 500, "val_every": 100, "precision": "32"},
        "net": {"channels": [16, 32, 64, 128], "num_res_units": 1},
        "optim": {"name": "adamw", "lr": 1e-4, "weight_decay": 1e-5, "schedule": "cosine"},
    },
    ("cpu", 2): {
        "data": {"patch_size": [128, 128], "batch_size": 16, "val_cases": 0.1},
        "train": {"max_steps": 1000, "val_every": 200, "precision": "32"},
        "net": {"channels": [16, 32, 64, 128], "num_res_units": 1},
        "optim": {"name": "adamw", "lr": 1e-4, "weight_decay": 1e-5, "schedule": "cosine"},
    },
}


@register_task
class PretrainTask(Task):
    name = "pretrain"
    data_config = PatchDataConfig
    monitor = Monitor("val/pretext_loss", "min")
    evaluates = False  # judged by fine-tuning (train --init RUN), not by evaluate
    bench_metrics = ("pretext_loss",)

    def load_dataset(self, root: str | Path, domains: list[str] | None = None) -> Dataset:
        """One folder's images, or several folders (``--data A --data B``, joined by
        ``os.pathsep`` in ``data_dir``) pooled into one unlabelled set."""
        from medssl.data.dataset import pool_datasets
        from medssl.data.layouts import load_images_only
        from medssl.engine.run import data_roots

        roots = data_roots(root)
        if len(roots) == 1:
            return load_images_only(roots[0], domains)
        return pool_datasets([load_images_only(r, domains) for r in roots])

    def profile_defaults(self, profile: str, dims: int) -> dict[str, Any]:
        return PRETRAIN_PROFILES[(profile, dims)]

    def network_dims(self, dataset: Dataset, requested: int | None) -> int:
        return network_dims(dataset, requested)

    def fit_config(self, cfg: RunConfig, dataset: Dataset) -> RunConfig:
        if cfg.labeled is not None:
            raise ConfigError("pretraining reads no labels: drop --labeled")
        cfg.data.patch_size = fit_patch(cfg, dataset)
        return cfg

    def dataset_info(self, dataset: Dataset, cfg: RunConfig) -> dict[str, Any]:
        return self.image_info(dataset, cfg)

    def make_split(self, dataset: Dataset, cfg: RunConfig) -> dict[str, Any]:
        return make_pretrain_split(dataset, seed=cfg.train.seed, val_cases=cfg.data.val_cases)

    def datamodule(
        self,
        dataset: Dataset,
        split: dict[str, Any],
        cfg: RunConfig,
        info: dict[str, Any],
        method_cls: type[MethodModule],
    ) -> L.LightningDataModule:
        steps = self.steps_per_epoch(cfg)
        return PretrainData(dataset, split, cfg.data, info, steps_per_epoch=steps)

    def after_fit(self, run_dir: Path, module: MethodModule) -> None:
        """Export the backbone the downstream run initialises from, and what the method can show
        of what it learned (``RUN/pretext_summary.npz``, plotted by the report)."""
        summary = getattr(module, "pretext_summary", lambda: None)()
        if summary:
            write_npz(run_dir / PRETEXT_SUMMARY, summary)
        cfg = module.run_config
        export_encoder(
            module.encoder_network(),
            run_dir,
            module.dataset_info,
            method=cfg.method,
            intensity=cfg.data.intensity,
            target_spacing=cfg.data.target_spacing,
            derived_channels=list(cfg.data.derived_channels),
            channels=cfg.net.channels,
            strides=cfg.net.strides,
            network_config=cfg.net.name,
        )

    def evaluate(
        self, run_dir: Path, module: MethodModule, dataset: Dataset, **options: Any
    ) -> dict[str, Any]:
        raise ConfigError(
            f"{run_dir}: a pretraining run has no downstream metrics; fine-tune it with "
            f"medssl train --init {run_dir} and evaluate that run"
        )

    def predict(
        self, module: MethodModule, inputs: list[Path], out_dir: Path, **options: Any
    ) -> list[Path]:
        raise ConfigError("a pretraining run predicts nothing; fine-tune it with train --init")

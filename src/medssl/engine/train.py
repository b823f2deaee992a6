"""``medssl train``: resolve the config, split the data, build the method, fit with Lightning."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, RichProgressBar

from medssl.data.dataset import Dataset
from medssl.data.splits import make_split
from medssl.engine.allocator import keep_freed_memory
from medssl.engine.checkpoint import AtomicCheckpointIO, load_checkpoint
from medssl.engine.config import RunConfig
from medssl.engine.divergence import DivergenceGuard
from medssl.engine.module import MethodModule, get_method
from medssl.engine.profiles import data_dims
from medssl.engine.progress import DataWaitMonitor, LineProgress
from medssl.engine.run import (
    CKPT_DIR,
    RunLogger,
    is_worker_process,
    prepare_run_dir,
    write_config,
    write_split,
)
from medssl.engine.segmentation_data import SegmentationData
from medssl.errors import CheckpointError, ConfigError, file_error, user_error_in


def dataset_info(dataset: Dataset, cfg: RunConfig) -> dict[str, Any]:
    """What the networks need to know about the data, stored in every checkpoint."""
    names = sorted(dataset.labels, key=dataset.labels.get)
    values = sorted(dataset.labels.values())
    if values and values != list(range(len(values))):
        raise ConfigError(
            f"{dataset.root}: label values {values} are not 0..K-1; "
            "renumber them in dataset.json and the label maps"
        )
    return {
        "num_classes": len(values),
        "class_names": names,
        "in_channels": dataset.num_channels,
        "channel_names": dataset.channel_names,
        "spatial_dims": cfg.data.spatial_dims,
        "data_dims": data_dims(dataset),
        "spacing_known": dataset.spacing_known,
        "layout": dataset.layout,
    }


def build_datamodule(
    task: str, dataset, split, cfg: RunConfig, info, method_cls
) -> L.LightningDataModule:
    if task != "segmentation":
        raise ConfigError(
            f"task {task!r} has no training data pipeline yet; use --task segmentation"
        )
    return SegmentationData(
        dataset,
        split,
        cfg.data,
        info,
        use_unlabeled=method_cls.uses_unlabeled,
        steps_per_epoch=min(cfg.train.max_steps, cfg.train.val_every),
    )


def init_weights(module: MethodModule, source: str) -> None:
    """``--init RUN_OR_WEIGHTS``: load matching tensors from a run's best checkpoint or a file."""
    path = Path(source)
    if path.is_dir():
        path = (
            path
            / CKPT_DIR
            / ("best.ckpt" if (path / CKPT_DIR / "best.ckpt").is_file() else "last.ckpt")
        )
    state = load_checkpoint(path)
    state = state.get("state_dict", state)
    own = module.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise file_error(
            path,
            "no tensor matches this method's networks",
            "pass weights of the same network",
            CheckpointError,
        )
    module.load_state_dict(matched, strict=False)


def build_trainer(cfg: RunConfig, run_dir: Path, has_val: bool) -> L.Trainer:
    monitor = "val/dice" if has_val else None
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / CKPT_DIR,
        filename="best",
        monitor=monitor,
        mode="max",
        save_last=True,
        save_top_k=1,
        every_n_train_steps=None if has_val else cfg.train.val_every,
        enable_version_counter=False,
        auto_insert_metric_name=False,
    )
    every = max(1, min(50, cfg.train.max_steps // 4))
    callbacks: list = [
        checkpoint,
        LearningRateMonitor(logging_interval="step"),
        DataWaitMonitor(every=every),
        DivergenceGuard(run_dir, cfg.optim.lr, str(cfg.train.precision), every=every),
    ]
    interactive = sys.stdout.isatty()
    callbacks.append(
        RichProgressBar() if interactive else LineProgress(cfg.train.val_every // 4 or 1)
    )
    devices = cfg.train.devices
    return L.Trainer(
        default_root_dir=str(run_dir),
        max_steps=cfg.train.max_steps,
        accelerator=cfg.train.accelerator,
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        precision=cfg.train.precision,
        logger=RunLogger(run_dir),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        val_check_interval=min(cfg.train.val_every, cfg.train.max_steps) if has_val else None,
        check_val_every_n_epoch=None if has_val else 1,
        limit_val_batches=None if has_val else 0,
        log_every_n_steps=cfg.train.log_every,
        num_sanity_val_steps=0,
        enable_progress_bar=interactive,
        enable_model_summary=False,
        benchmark=cfg.train.accelerator != "cpu",
    )


def run_split(dataset: Dataset, cfg: RunConfig) -> dict[str, Any]:
    """The labelled / unlabelled / validation case ids that ``cfg`` selects from ``dataset``."""
    return make_split(
        dataset,
        labeled=cfg.labeled,
        seed=cfg.train.seed,
        val_cases=cfg.data.val_cases,
        order=cfg.data.labeled_order,
        val_order=cfg.data.val_order,
        labeled_ids=cfg.data.labeled_ids,
    )


def train(
    cfg: RunConfig, dataset: Dataset, out: str | Path, force: bool = False, resume: bool = False
) -> Path:
    """Train ``cfg.method`` on ``dataset`` into the run directory ``out``; returns it."""
    keep_freed_memory()
    # Seed first: network initialisation, sampling and augmentation all draw from it.
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    method_cls = get_method(cfg.task, cfg.method)
    split = run_split(dataset, cfg)
    info = dataset_info(dataset, cfg)
    module = method_cls(cfg.to_dict(), info)
    if cfg.init and not resume:
        init_weights(module, cfg.init)
    datamodule = build_datamodule(cfg.task, dataset, split, cfg, info, method_cls)

    created = not resume and not is_worker_process()
    run_dir = prepare_run_dir(out, force=force, resume=resume)
    if not is_worker_process():
        write_config(run_dir, cfg.to_dict())
        write_split(run_dir, split)
    trainer = build_trainer(cfg, run_dir, has_val=bool(split["val"]))
    last = run_dir / CKPT_DIR / "last.ckpt"
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if resume else None)
    except BaseException as error:
        # A run that failed before its first checkpoint leaves nothing behind.
        if created and not last.exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        user = user_error_in(error)
        if user is not None and user is not error:
            raise user from None  # the one-line message, not MONAI's wrapper
        raise
    # The last validation may fall before max_steps: last.ckpt must hold the final weights.
    trainer.save_checkpoint(last, weights_only=False)  # full state: --resume needs it
    if is_worker_process():
        return run_dir
    if not (run_dir / CKPT_DIR / "best.ckpt").exists() and last.exists():
        shutil.copyfile(last, run_dir / CKPT_DIR / "best.ckpt")
    return run_dir

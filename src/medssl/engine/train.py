"""``medssl train``: resolve the config, split the data, build the method, fit with Lightning."""

from __future__ import annotations

import errno
import shutil
import sys
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor, RichProgressBar

from medssl.atomic import disk_nearly_full, verify_zip, write_atomic
from medssl.data.dataset import Dataset
from medssl.engine.allocator import keep_freed_memory
from medssl.engine.checkpoint import AtomicCheckpointIO, BestAndLastCheckpoint, load_checkpoint
from medssl.engine.config import RunConfig
from medssl.engine.divergence import DivergenceGuard
from medssl.engine.freeze import EncoderFreeze
from medssl.engine.handoff import init_from
from medssl.engine.loggers import run_loggers
from medssl.engine.module import get_method
from medssl.engine.plan import Plan, format_plan, write_plan
from medssl.engine.progress import DataWaitMonitor, LineProgress
from medssl.engine.resume import check_checkpoint_fits, saved_split
from medssl.engine.run import (
    CKPT_DIR,
    METRICS,
    ReplacedRun,
    check_not_data,
    check_resumable,
    drop_rows_after,
    is_worker_process,
    prepare_run_dir,
    read_run,
    remove_run,
    restore_replaced,
    write_config,
    write_split,
)
from medssl.engine.task import Monitor, get_task
from medssl.errors import (
    ConfigError,
    Interrupted,
    OutputError,
    user_error_in,
)


def build_trainer(
    cfg: RunConfig, run_dir: Path, has_val: bool, monitor: Monitor | None = None
) -> L.Trainer:
    monitor = monitor or get_task(cfg.task).monitor
    checkpoint = BestAndLastCheckpoint(
        dirpath=run_dir / CKPT_DIR,
        filename="best",
        monitor=monitor.name if has_val else None,
        mode=monitor.mode,
        save_last=True,
        save_top_k=1,
        every_n_train_steps=None if has_val else cfg.train.val_every,
        enable_version_counter=False,
        auto_insert_metric_name=False,
    )
    every = max(1, min(50, cfg.train.max_steps // 4))
    # step timings per step when every step is logged (the speed bench), else a window's mean
    perf_every = 1 if cfg.train.log_every == 1 else every
    callbacks: list = [
        checkpoint,
        LearningRateMonitor(logging_interval="step"),
        DataWaitMonitor(every=perf_every),
        DivergenceGuard(run_dir, cfg.optim.lr, str(cfg.train.precision), every=every),
    ]
    if cfg.freeze_encoder:
        callbacks.append(EncoderFreeze(None if cfg.freeze_encoder == "all" else cfg.freeze_encoder))
    interactive = sys.stdout.isatty()
    callbacks.append(
        RichProgressBar()
        if interactive
        else LineProgress(cfg.train.val_every // 4 or 1, monitor.name)
    )
    devices, nodes = cfg.train.devices, cfg.train.nodes
    return L.Trainer(
        default_root_dir=str(run_dir),
        max_steps=cfg.train.max_steps,
        accelerator=cfg.train.accelerator,
        devices=devices,
        num_nodes=nodes,
        strategy="ddp" if devices > 1 or nodes > 1 else "auto",
        precision=cfg.train.precision,
        logger=run_loggers(cfg, run_dir),
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


def train(
    cfg: RunConfig,
    dataset: Dataset,
    out: str | Path,
    force: bool = False,
    resume: bool = False,
    plan: Plan | None = None,
) -> Path:
    """Train ``cfg.method`` on ``dataset`` into the run directory ``out``; returns it.

    Nothing is written until the data, the split and (on resume) the checkpoint have been
    checked; a run that fails or is interrupted before its first checkpoint leaves nothing, and
    the run that ``force`` replaces comes back.
    """
    keep_freed_memory()
    out = Path(out)
    check_not_data(out, cfg.data_dir)
    # Seed first: network initialisation, sampling and augmentation all draw from it.
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    task = get_task(cfg.task)
    method_cls = get_method(cfg.task, cfg.method)
    if resume:
        check_resumable(out)  # before reading its split or checkpoint
    dataset = without_excluded(dataset, cfg.data.exclude_ids)
    split = saved_split(out, dataset) if resume else task.make_split(dataset, cfg)
    info = task.dataset_info(dataset, cfg)
    module = method_cls(cfg.to_dict(), info)
    if resume:
        check_checkpoint_fits(out, info, module.state_dict())
    elif cfg.init:
        report = init_from(module, info, cfg.init)
        if not is_worker_process():
            print(report.line(), file=sys.stderr, flush=True)
    datamodule = task.datamodule(dataset, split, cfg, info, method_cls)

    worker = is_worker_process()
    run_dir, replaced = prepare_run_dir(out, force=force, resume=resume, data_dir=cfg.data_dir)
    created = not resume and not worker
    last = run_dir / CKPT_DIR / "last.ckpt"
    trainer = None
    try:
        if not worker:
            write_run_files(run_dir, cfg, split, resume)
            if plan is not None and not resume:  # shown once the run is sure to start
                write_plan(run_dir, plan)
                print(format_plan(plan), flush=True)
        has_val = bool(split["val"])
        trainer = build_trainer(cfg, run_dir, has_val, method_cls.monitor or task.monitor)
        trainer.callbacks.append(ReplacedRun(replaced, last))
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if resume else None)
        # The last validation may fall before max_steps: last.ckpt must hold the final weights.
        trainer.save_checkpoint(last, weights_only=False)  # full state: --resume needs it
    except BaseException as error:
        kept = last.exists()
        if created and not kept:  # nothing worth keeping: as if it never started
            remove_run(run_dir)
            restore_replaced(run_dir, replaced)
        raise training_failure(error, cfg, run_dir, trainer, kept=kept) from None
    if worker:
        return run_dir
    if replaced is not None:
        remove_run(replaced)
    task.after_fit(run_dir, module)
    best = run_dir / CKPT_DIR / "best.ckpt"
    if not best.exists() and last.exists():  # no validation: the final weights are the best
        write_atomic(best, lambda tmp: shutil.copyfile(last, tmp), verify_zip)
    return run_dir


def without_excluded(dataset: Dataset, exclude: list[str] | None) -> Dataset:
    """``dataset`` without the cases ``data.exclude_ids`` names (each must exist)."""
    if not exclude:
        return dataset
    known = {c.id for c in dataset.cases}
    unknown = [i for i in exclude if i not in known]
    if unknown:
        raise ConfigError(
            f"data.exclude_ids: {unknown[:3]} are not cases of {dataset.root}; fix the ids"
        )
    dropped = set(exclude)
    return dataset.subset([c.id for c in dataset.cases if c.id not in dropped])


def write_run_files(run_dir: Path, cfg: RunConfig, split: dict[str, Any], resume: bool) -> None:
    """``config.yaml`` and ``split.json`` of a new run; a resumed run keeps its split, has its
    config rewritten only where the resume changed it, and forgets the metrics rows of the steps
    it is about to repeat."""
    if not resume:
        write_config(run_dir, cfg.to_dict())
        write_split(run_dir, split)
        return
    saved, _ = read_run(run_dir)
    if saved != cfg.to_dict():
        write_config(run_dir, cfg.to_dict())
    step = int(load_checkpoint(run_dir / CKPT_DIR / "last.ckpt").get("global_step", 0))
    drop_rows_after(run_dir / METRICS, step)


def training_failure(
    error: BaseException, cfg: RunConfig, run_dir: Path, trainer: L.Trainer | None, kept: bool
) -> BaseException:
    """The one-line error for a run that stopped: Ctrl-C, a full disk, or what the user can fix."""
    step = trainer.global_step if trainer is not None else 0
    resume = f"continue with: medssl train --resume --out {run_dir} --data {cfg.data_dir}"
    interrupted = isinstance(error, KeyboardInterrupt) or (
        isinstance(error, SystemExit) and trainer is not None and trainer.interrupted
    )
    if interrupted:
        if kept:
            return Interrupted(f"{run_dir}: interrupted at step {step}; {resume}")
        return Interrupted(f"{run_dir}: interrupted before the first checkpoint; nothing was kept")
    user = user_error_in(error)
    if isinstance(user, OutputError) and kept:
        return OutputError(f"{user} (stopped at step {step}; {resume} once there is space)")
    if user is not None:
        return user  # the one-line message, not MONAI's or Lightning's wrapper
    full = disk_full_in(error, run_dir)
    if full is not None:
        where = f"at step {step}; {resume} once there is space" if kept else "nothing was kept"
        return OutputError(f"{full}: cannot be written: disk full ({where})")
    return error


def disk_full_in(error: BaseException, run_dir: Path) -> Path | None:
    """The file a full disk stopped (or the run folder), if that is why ``error`` happened."""
    seen = 0
    while error is not None and seen < 20:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return Path(error.filename) if error.filename else run_dir
        error = error.__cause__ or error.__context__
        seen += 1
    return run_dir if disk_nearly_full(run_dir if run_dir.exists() else run_dir.parent) else None

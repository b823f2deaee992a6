"""What the engine needs from a task, and the task registry.

A task (segmentation, classification, landmarks, pretrain, ...) is one plugin in ``medssl/tasks``:
its profile defaults, how it reads the dataset into network facts (``dataset_info``), how it
splits the cases, its Lightning data module, the checkpoint monitor, and what ``evaluate`` and
``predict`` compute and write. The engine, the API, the bench and the report ask the task and
never name one, so that a new family is a new plugin and new method files, with no engine edit.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from medssl.engine.config import DataConfig
from medssl.registry import Registry

if TYPE_CHECKING:
    import lightning as L

    from medssl.data.dataset import Dataset
    from medssl.data.fingerprint import Fingerprint
    from medssl.engine.config import RunConfig
    from medssl.engine.module import MethodModule

TASKS: Registry = Registry("task")


@dataclass(frozen=True)
class Monitor:
    """The logged value that picks ``best.ckpt``, and whether higher or lower is better."""

    name: str
    mode: Literal["min", "max"]


class Task:
    """Base of every task plugin; a subclass overrides what its task does differently.

    Instances are stateless: the engine asks ``get_task(name)`` for one whenever it needs it.
    """

    name: ClassVar[str] = ""
    #: the ``data`` settings of this task (a subclass of DataConfig adds the task's own)
    data_config: ClassVar[type[DataConfig]] = DataConfig
    monitor: ClassVar[Monitor] = Monitor("val/loss", "min")
    #: the metric columns a bench table of this task shows, in order
    bench_metrics: ClassVar[tuple[str, ...]] = ()
    #: the metrics the report plots per case, first one ranked "worst first"
    report_metrics: ClassVar[tuple[str, ...]] = ()
    #: the report's evaluation plots for this task, by name (``roc``, ``confusion``, ...;
    #: :data:`medssl.report.evaluation_plots.EVALUATION_PLOTS` draws them)
    report_sections: ClassVar[tuple[str, ...]] = ()
    #: whether ``evaluate`` scores a run of this task (pretraining's is judged by fine-tuning)
    evaluates: ClassVar[bool] = True
    #: whether :meth:`plan` computes defaults from the dataset's fingerprint
    plans: ClassVar[bool] = False

    # -- configuration ------------------------------------------------------------------------
    def upgrade_config(self, values: dict[str, Any]) -> dict[str, Any]:
        """A config mapping with keys that earlier versions wrote elsewhere moved to where they
        live now, so that old run folders resume and old ``--config`` files keep working."""
        return values

    def load_dataset(self, root: str | Path, domains: list[str] | None = None) -> Dataset:
        """The dataset at ``root`` as this task reads it (pretraining: its unlabelled view, and
        several folders joined by ``os.pathsep`` pooled)."""
        from medssl.data.layouts import load_dataset
        from medssl.engine.run import data_roots
        from medssl.errors import ConfigError

        if len(data_roots(root)) > 1:
            raise ConfigError(
                f"the {self.name} task reads one --data folder; several are pooled only for "
                "pretraining (medssl pretrain --data A --data B)"
            )
        return load_dataset(root, domains=domains)

    def profile_defaults(self, profile: str, dims: int) -> dict[str, Any]:
        """Config values of ``--profile cpu|gpu`` for this task at ``dims`` network dimensions."""
        return {}

    def plan(
        self, fingerprint: Fingerprint, dataset: Dataset, profile: str, requested_dims: int | None
    ) -> tuple[int, dict[str, Any], list[str]]:
        """(network dims, config values, one reason per decision) planned from the dataset's
        fingerprint for ``profile``; only tasks with ``plans = True`` are asked."""
        raise NotImplementedError

    def network_dims(self, dataset: Dataset, requested: int | None) -> int:
        """The network's spatial dimensions for this dataset (``data.spatial_dims`` wins)."""
        return requested or dataset.spatial_dims or 2

    def fit_config(self, cfg: RunConfig, dataset: Dataset) -> RunConfig:
        """Adjust data-dependent values (a patch clipped to the images) after merging."""
        return cfg

    # -- training -------------------------------------------------------------------------------
    def dataset_info(self, dataset: Dataset, cfg: RunConfig) -> dict[str, Any]:
        """What the networks need to know about the data; stored in every checkpoint."""
        raise NotImplementedError

    def image_info(self, dataset: Dataset, cfg: RunConfig) -> dict[str, Any]:
        """The facts about the images every task's ``dataset_info`` holds: channels, the
        network's and the files' dimensions, whether spacing is known, the layout."""
        from medssl.data.dataset import image_channels
        from medssl.engine.profiles import data_dims

        return {
            "in_channels": image_channels(dataset),  # declared names, else the files (RGB: 3)
            "channel_names": dataset.channel_names,
            "spatial_dims": cfg.data.spatial_dims,
            "data_dims": data_dims(dataset),
            "spacing_known": dataset.spacing_known,
            "layout": dataset.layout,
        }

    def make_split(self, dataset: Dataset, cfg: RunConfig) -> dict[str, Any]:
        """The case ids of each part (``labeled``, ``unlabeled``, ``val``), for ``split.json``:
        by default the labelled split ``--labeled`` and ``data.*`` ask for (the dataset's own
        validation part when it has one)."""
        from medssl.data.splits import make_split

        return make_split(
            dataset,
            labeled=cfg.labeled,
            seed=cfg.train.seed,
            val_cases=cfg.data.val_cases,
            order=cfg.data.labeled_order,
            val_order=cfg.data.val_order,
            labeled_ids=cfg.data.labeled_ids,
        )

    @staticmethod
    def steps_per_epoch(cfg: RunConfig) -> int:
        """Training steps between validations: a data module's epoch."""
        return min(cfg.train.max_steps, cfg.train.val_every)

    def datamodule(
        self,
        dataset: Dataset,
        split: dict[str, Any],
        cfg: RunConfig,
        info: dict[str, Any],
        method_cls: type[MethodModule],
    ) -> L.LightningDataModule:
        raise NotImplementedError

    # -- after training -----------------------------------------------------------------------
    def after_fit(self, run_dir: Path, module: MethodModule) -> None:
        """What the run leaves besides its checkpoints (pretraining: the exported encoder);
        called on rank 0 once training ended."""
        return None

    def evaluate(
        self, run_dir: Path, module: MethodModule, dataset: Dataset, **options: Any
    ) -> dict[str, Any]:
        """Metrics over every labelled case of ``dataset``, as the evaluate JSON of the README."""
        raise NotImplementedError

    def predict(
        self, module: MethodModule, inputs: list[Path], out_dir: Path, **options: Any
    ) -> list[Path]:
        """Write what ``predict`` gives for each input; returns the files written."""
        raise NotImplementedError


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register a task plugin under its ``name``."""
    return TASKS.register(cls.name)(cls)


def _discover() -> None:
    """Import the bundled task plugins so that they register (the engine never names one)."""
    importlib.import_module("medssl.tasks")


def get_task(name: str) -> Task:
    _discover()
    return TASKS.get(name)()


def task_names() -> list[str]:
    _discover()
    return TASKS.names()

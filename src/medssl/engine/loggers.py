"""Where a run's metrics go: ``RUN/metrics.csv`` always, TensorBoard or MLflow when asked.

``train.logger: tensorboard`` writes event files to ``RUN/tensorboard`` (``tensorboard --logdir
RUN/tensorboard``); ``train.logger: mlflow`` logs to ``MLFLOW_TRACKING_URI`` when set, else to a
file store in ``RUN/mlruns`` (``mlflow ui --backend-store-uri RUN/mlruns``). Both are Lightning's
own loggers; the packages they need are optional extras, named in the error when missing.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from lightning.pytorch.loggers import Logger

from medssl.engine.config import RunConfig
from medssl.engine.run import RunLogger
from medssl.errors import ConfigError

TENSORBOARD_DIR, MLFLOW_DIR = "tensorboard", "mlruns"


def _require(logger: str, modules: tuple[str, ...], extra: str) -> None:
    if not any(importlib.util.find_spec(m) for m in modules):
        raise ConfigError(
            f"train.logger {logger!r} needs the {modules[0]} package; "
            f"pip install 'medssl[{extra}]' (or {modules[0]}), or set train.logger: csv"
        )


def run_loggers(cfg: RunConfig, run_dir: Path) -> list[Logger]:
    """The CSV logger of ``RUN/metrics.csv`` and the one ``train.logger`` asks for."""
    loggers: list[Logger] = [RunLogger(run_dir)]
    if cfg.train.logger == "tensorboard":
        _require("tensorboard", ("tensorboard", "tensorboardX"), "tensorboard")
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name=TENSORBOARD_DIR, version=""))
    elif cfg.train.logger == "mlflow":
        _require("mlflow", ("mlflow",), "mlflow")
        from lightning.pytorch.loggers import MLFlowLogger

        uri = os.environ.get("MLFLOW_TRACKING_URI") or (run_dir / MLFLOW_DIR).resolve().as_uri()
        loggers.append(
            MLFlowLogger(experiment_name="medssl", run_name=run_dir.name, tracking_uri=uri)
        )
    return loggers

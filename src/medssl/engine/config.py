"""The typed run configuration: what a run is, fully resolved, and written to ``RUN/config.yaml``.

Defaults come in three layers, later ones winning: the task's profile defaults
(:mod:`medssl.engine.profiles`), the method's own paper defaults (its ``Config`` class), then the
user's ``--config F`` YAML and command-line flags. The resolved result is what gets saved, so a run
directory always says exactly what was trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from medssl.errors import ConfigError, file_error


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    """How cases become network inputs."""

    spatial_dims: int | None = None  # network dims: 2 (slices of 3D volumes) or 3; None = dataset's
    patch_size: list[int] | None = None  # None = profile default, clipped to the image size
    # resample to this spacing (mm); None keeps the grid, a value <= 0 keeps that axis's spacing
    target_spacing: list[float] | None = None
    # resize every slice's first two axes to (H, W), keeping the slice count (SSL4MIS on ACDC)
    slice_size: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] | None = None
    intensity: Literal["auto", "ct", "mri", "none"] = "auto"
    ct_window: tuple[float, float] = (-175.0, 250.0)  # HU window (VoCo / Swin-UNETR default)
    batch_size: int = 2  # labelled patches per step
    unlabeled_batch_size: int = 2  # unlabelled patches per step (semi-supervised methods)
    foreground_ratio: float = 0.33  # share of patches centred on foreground (nnU-Net: 1/3)
    augment: bool = True
    # auto: "affine" for 2D networks (SSL4MIS: rot90/flip + rotation), "rot_flip" for 3D (UA-MT)
    spatial_augment: Literal["auto", "flip", "rot_flip", "affine"] = "auto"
    edge_prompt: bool = False  # append an edge-enhanced copy of the image as channels (KP-Net)
    cache: bool = True  # MONAI CacheDataset for the deterministic part of the pipeline
    num_workers: int = 0
    val_cases: int | float = 0.2  # cases held out for validation when the dataset has no val split
    labeled_order: Literal["seeded", "first"] = "seeded"  # "first": the first N cases (UA-MT)
    val_order: Literal["seeded", "last"] = "seeded"  # "last": the last val_cases in list order
    labeled_ids: list[str] | None = None  # an explicit labelled list instead of --labeled N


class NetConfig(_Strict):
    name: str = "unet"
    channels: list[int] | None = None
    strides: list[int] | None = None
    num_res_units: int = 2
    norm: str = "instance"
    dropout: float = 0.0
    # settings only one network has (resnet18: small_input; swin_unetr: feature_size ...);
    # checked against the network's own options (medssl.nets.factory.net_options)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_options(self) -> NetConfig:
        from medssl.nets.factory import check_net_options

        check_net_options(self.name, self.options)  # validates; values stay as written
        return self


class OptimConfig(_Strict):
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)  # Adam / AdamW (GANs: (0.5, 0.999))
    eps: float = 1e-8
    schedule: Literal["poly", "cosine", "constant"] = "poly"
    warmup_steps: int = 0


class TrainConfig(_Strict):
    max_steps: int = 1000
    val_every: int = 200  # validate every N steps
    precision: str = "32"
    devices: int = 1
    nodes: int = 1  # Lightning's num_nodes: launched by torchrun or SLURM (README: on a cluster)
    # where metrics go besides RUN/metrics.csv (always written): TensorBoard or MLflow
    logger: Literal["csv", "tensorboard", "mlflow"] = "csv"
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    seed: int = 0
    sw_overlap: float = 0.25  # sliding-window overlap at validation / inference
    sw_batch_size: int = 4
    log_every: int = 10


class RunConfig(_Strict):
    task: str  # a registered task plugin (medssl/tasks)
    method: str = "supervised"
    data_dir: str = ""
    domains: list[str] | None = None
    labeled: int | float | None = None  # N cases or a fraction; None = every labelled case
    profile: Literal["cpu", "gpu"] = "cpu"
    init: str | None = None  # weights or run to initialise from
    data: DataConfig = Field(default_factory=DataConfig)
    net: NetConfig = Field(default_factory=NetConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    # per-optimiser overrides of ``optim`` for methods with several (by the names they declare)
    optimizers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    train: TrainConfig = Field(default_factory=TrainConfig)
    method_config: dict[str, Any] = Field(default_factory=dict)

    @field_validator("task")
    @classmethod
    def _registered_task(cls, name: str) -> str:
        from medssl.engine.task import get_task  # the plugins import this module

        get_task(name)  # "unknown task ...; did you mean ..." for anything not registered
        return name

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def deep_update(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (mappings merge, values replace)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "config file not found", "check the --config path", ConfigError)
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise file_error(path, f"not valid YAML{where}", "fix the syntax", ConfigError) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise file_error(path, "config must be a mapping", "write key: value pairs", ConfigError)
    return loaded


def build_config(values: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate a merged mapping into a :class:`RunConfig`, with a one-line error."""
    try:
        return RunConfig.model_validate(values)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"{source}: invalid value for {loc!r}: {first['msg']}; fix it in --config or the flags"
        ) from None

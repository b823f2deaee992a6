"""The typed run configuration: what a run is, fully resolved, and written to ``RUN/config.yaml``.

Defaults come in three layers, later ones winning: the task's profile defaults
(:mod:`medssl.engine.profiles`), the method's own paper defaults (its ``Config`` class), then the
user's ``--config F`` YAML and command-line flags. The resolved result is what gets saved, so a run
directory always says exactly what was trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)

from medssl.errors import ConfigError, file_error


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    """How cases become network inputs: the settings every task shares.

    A task with more (segmentation: patches around foreground, sliding windows) subclasses this
    and names the subclass as its ``Task.data_config``; ``RunConfig`` validates ``data`` with it.
    """

    spatial_dims: int | None = None  # network dims: 2 (slices of 3D volumes) or 3; None = dataset's
    patch_size: list[int] | None = None  # None = profile default, clipped to the image size
    # resample to this spacing (mm); None keeps the grid, a value <= 0 keeps that axis's spacing
    target_spacing: list[float] | None = None
    # auto: CT window for CT, else per-channel z-score; minmax: per image to [0, 1] (SSL4MIS)
    intensity: Literal["auto", "ct", "mri", "minmax", "none"] = "auto"
    ct_window: tuple[float, float] = (-175.0, 250.0)  # HU window (VoCo / Swin-UNETR default)
    batch_size: int = 2  # images (patches) per step
    augment: bool = True
    # images derived from the image and appended as channels (medssl.data.derived): edge, histeq
    derived_channels: list[str] = Field(default_factory=list)
    cache: bool = True  # MONAI CacheDataset for the deterministic part of the pipeline
    num_workers: int = 0
    val_cases: int | float = 0.2  # cases held out for validation when the dataset has no val split
    labeled_order: Literal["seeded", "first"] = "seeded"  # "first": the first N cases (UA-MT)
    val_order: Literal["seeded", "last"] = "seeded"  # "last": the last val_cases in list order
    labeled_ids: list[str] | None = None  # an explicit labelled list instead of --labeled N
    # cases this run never reads (evaluation cases kept out of pretraining, say)
    exclude_ids: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _edge_prompt(cls, values: Any) -> Any:
        """``edge_prompt: true`` (configs before derived channels) is ``derived_channels:
        [edge]``."""
        if isinstance(values, dict) and "edge_prompt" in values:
            values = dict(values)
            derived = list(values.get("derived_channels") or [])
            if values.pop("edge_prompt") and "edge" not in derived:
                derived.insert(0, "edge")
            values["derived_channels"] = derived
        return values

    @field_validator("derived_channels")
    @classmethod
    def _known_derivations(cls, names: list[str]) -> list[str]:
        from medssl.data.derived import check_derived

        return check_derived(names)


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
    log_every: int = 10


class RunConfig(_Strict):
    task: str  # a registered task plugin (medssl/tasks)
    method: str = "supervised"
    data_dir: str = ""
    domains: list[str] | None = None
    labeled: int | float | None = None  # N cases or a fraction; None = every labelled case
    profile: Literal["cpu", "gpu"] = "cpu"
    init: str | None = None  # weights or run to initialise from
    # with init: the encoder frozen for the first N steps, or "all" for the whole run (probe)
    freeze_encoder: int | Literal["all"] = 0
    # defaults planned from the dataset's fingerprint (medssl.engine.plan) under the method's,
    # --config's and the flags'; false: the profile's fixed defaults (the bench protocols)
    plan: bool = True
    # validated with the task's own data config class (Task.data_config)
    data: SerializeAsAny[DataConfig] = Field(default_factory=DataConfig)
    net: NetConfig = Field(default_factory=NetConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    # per-optimiser overrides of ``optim`` for methods with several (by the names they declare)
    optimizers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    train: TrainConfig = Field(default_factory=TrainConfig)
    method_config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _task_data(cls, values: Any) -> Any:
        """The task's ``data`` settings, read with its own class, after the task has upgraded
        keys that configs of earlier versions wrote elsewhere."""
        if not isinstance(values, dict) or not isinstance(values.get("task"), str):
            return values
        from medssl.engine.task import get_task  # the plugins import this module

        task = get_task(values["task"])  # "unknown task ...; did you mean ..."
        values = task.upgrade_config(dict(values))
        data = values.get("data", {})
        if not isinstance(data, task.data_config):
            data = data.model_dump() if isinstance(data, DataConfig) else data
            try:
                values["data"] = task.data_config.model_validate(data)
            except ValidationError as err:  # report the keys as ``data.<key>``
                raise _under("data", err) from None
        return values

    @model_validator(mode="after")
    def _freeze_needs_init(self) -> RunConfig:
        if self.freeze_encoder != 0 and not self.init:
            raise ValueError("freeze_encoder freezes a pretrained encoder: add --init RUN")
        if isinstance(self.freeze_encoder, int) and self.freeze_encoder < 0:
            raise ValueError("freeze_encoder is a number of steps >= 0, or 'all'")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _under(prefix: str, err: ValidationError) -> ValidationError:
    """``err`` with every error's location moved under ``prefix``."""
    errors = [
        {
            "type": e["type"],
            "loc": (prefix, *e["loc"]),
            "input": e["input"],
            "ctx": e.get("ctx", {}),
        }
        for e in err.errors()
    ]
    return ValidationError.from_exception_data(err.title, errors)  # type: ignore[arg-type]


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
        if first["type"] == "extra_forbidden":
            raise ConfigError(
                f"{source}: {loc!r} is not a setting of the {values.get('task')} task; "
                "remove it from --config or the flags (docs/guide.md lists the settings)"
            ) from None
        raise ConfigError(
            f"{source}: invalid value for {loc!r}: {first['msg']}; fix it in --config or the flags"
        ) from None

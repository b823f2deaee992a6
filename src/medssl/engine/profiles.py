"""The resolution of a run's full config from its layers.

Precedence, lowest first: the task's profile defaults (``--profile cpu|gpu``, each task's own),
the method's defaults, the ``--config`` file, the command-line flags.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from medssl.data.dataset import Dataset
from medssl.data.io import read_header
from medssl.engine.config import RunConfig, build_config, deep_update
from medssl.engine.task import get_task

if TYPE_CHECKING:
    from medssl.engine.plan import Plan


def resolve_profile(profile: str) -> str:
    if profile == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return profile


def data_dims(dataset: Dataset) -> int:
    """Dimensions of the arrays on disk (a 160x192x1 NIfTI counts as 3: its slices are 2D)."""
    first = next((c for c in dataset.cases if c.images), None)
    if first is None:
        return dataset.spatial_dims or 2
    return read_header(first.images[0]).spatial_dims


def for_network(defaults: dict[str, Any], chosen: str | None) -> dict[str, Any]:
    """``defaults`` without their ``net.options`` when the user chose another network: options
    are written for one network (a ResNet stem stride means nothing to a DenseNet)."""
    net = defaults.get("net") or {}
    if "options" not in net or chosen is None or chosen == net.get("name"):
        return defaults
    return {**defaults, "net": {k: v for k, v in net.items() if k != "options"}}


def resolve_config(
    *,
    task: str,
    method_cls: type,
    dataset: Dataset,
    profile: str,
    file_values: dict[str, Any],
    flag_values: dict[str, Any],
    plan: Plan | None = None,
) -> RunConfig:
    """Merge the layers into a validated :class:`RunConfig` and fit the patch to the data.

    ``plan`` (:func:`medssl.engine.plan.make_plan`) lies over the profile's defaults and under
    the method's; it names the network's dimensions unless ``data.spatial_dims`` does."""
    profile = resolve_profile(profile)
    plugin = get_task(task)
    requested_dims = (file_values.get("data") or {}).get("spatial_dims")
    dims = plan.dims if plan else plugin.network_dims(dataset, requested_dims)
    chosen = ((deep_update(file_values, flag_values)).get("net") or {}).get("name")
    layers: dict[str, Any] = {"task": task, "profile": profile}
    layers = deep_update(layers, for_network(plugin.profile_defaults(profile, dims), chosen))
    if plan is not None:
        layers = deep_update(layers, for_network(plan.config, chosen))
    layers = deep_update(layers, for_network(getattr(method_cls, "default_overrides", {}), chosen))
    layers = deep_update(layers, file_values)
    layers = deep_update(layers, flag_values)
    layers = deep_update(layers, {"data": {"spatial_dims": dims}})
    cfg = build_config(layers, source="--config/flags")
    return method_cls.finalize_config(plugin.fit_config(cfg, dataset))

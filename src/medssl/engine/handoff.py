"""The encoder hand-off: a pretraining run exports its encoder, ``train --init`` loads it.

``RUN/encoder.safetensors`` holds the encoder's tensors under canonical names
(:mod:`medssl.nets.encoder_keys`), loaded without pickle; ``RUN/encoder.json`` says what they
fit: the backbone family, input channels, spatial dimensions, widths, the intensity
preprocessing and the source run. ``--init`` finds every backbone among the downstream method's
networks (a student and its EMA teacher, CPS's two networks ...), loads the encoder into each,
says how many tensors loaded, were missing and were unexpected, and refuses in one line an
encoder of another family, other dimensions or channels, or one of which too little fits.
A run or checkpoint without an exported encoder initialises by matching names and shapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from medssl.atomic import write_atomic, write_json_atomic
from medssl.engine.checkpoint import load_checkpoint
from medssl.engine.run import CKPT_DIR
from medssl.errors import CheckpointError, file_error
from medssl.nets.encoder_keys import encoder_map, encoders_in

ENCODER_FILE, SIDECAR_FILE = "encoder.safetensors", "encoder.json"
# Less than this share of the encoder's tensors fitting the downstream network is a mismatch.
MIN_LOADED_SHARE = 0.5


@dataclass
class InitReport:
    """What ``--init`` loaded, for the one line the run prints."""

    source: Path
    targets: list[str] = field(default_factory=list)
    loaded: int = 0
    missing: int = 0
    unexpected: int = 0

    def line(self) -> str:
        where = ", ".join(self.targets) or "the networks"
        return (
            f"init from {self.source}: {self.loaded} tensors loaded into {where}; "
            f"{self.missing} missing, {self.unexpected} unexpected"
        )


def export_encoder(net: nn.Module, run_dir: Path, info: dict[str, Any], **meta: Any) -> Path:
    """Write ``RUN/encoder.safetensors`` and its sidecar from the backbone ``net``."""
    mapped = encoder_map(net)
    if mapped is None or not mapped.keys:
        raise CheckpointError(f"{type(net).__name__} has no encoder medssl can export")
    state = net.state_dict()
    tensors = {k: state[v].detach().cpu().contiguous() for k, v in mapped.keys.items()}
    target = run_dir / ENCODER_FILE
    write_atomic(target, lambda tmp: save_file(tensors, str(tmp)), lambda tmp: load_file(tmp))
    sidecar = {
        "backbone": mapped.family,
        "network": type(net).__name__,
        "in_channels": info.get("in_channels"),
        "spatial_dims": info.get("spatial_dims"),
        "tensors": len(tensors),
        "source_run": str(run_dir),
        **meta,
    }
    write_json_atomic(run_dir / SIDECAR_FILE, sidecar)
    return target


def _encoder_files(source: Path) -> tuple[Path, Path] | None:
    """(tensors, sidecar) of a run folder or a ``.safetensors`` file, if it holds an encoder."""
    if source.is_dir():
        tensors, sidecar = source / ENCODER_FILE, source / SIDECAR_FILE
    elif source.suffix == ".safetensors":
        tensors, sidecar = source, source.with_suffix(".json")
    else:
        return None
    return (tensors, sidecar) if tensors.is_file() else None


def init_from(module: nn.Module, info: dict[str, Any], source: str | Path) -> InitReport:
    """``--init RUN_OR_FILE``: an exported encoder, else the matching tensors of a checkpoint."""
    path = Path(source).expanduser()
    if not path.exists():
        raise file_error(
            path, "does not exist", "pass a run folder or weights file", CheckpointError
        )
    files = _encoder_files(path)
    if files is not None:
        return load_encoder(module, info, *files)
    return load_matching(module, _checkpoint_of(path))


def _read_sidecar(sidecar: Path) -> dict[str, Any]:
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, json.JSONDecodeError) as err:
        reason = getattr(err, "strerror", None) or "not valid JSON"
        raise file_error(
            sidecar, f"unreadable ({reason})", "re-export the encoder", CheckpointError
        ) from None
    return meta


def load_encoder(
    module: nn.Module, info: dict[str, Any], tensors_file: Path, sidecar: Path
) -> InitReport:
    """Load an exported encoder into every backbone of ``module`` that it fits."""
    meta = _read_sidecar(sidecar)
    try:
        tensors = load_file(tensors_file)
    except (SafetensorError, OSError) as err:
        raise file_error(
            tensors_file, f"unreadable ({err})", "re-export the encoder", CheckpointError
        ) from None
    for key, label in (("spatial_dims", "spatial dims"), ("in_channels", "input channels")):
        if meta.get(key) is not None and meta[key] != info.get(key):
            raise file_error(
                tensors_file,
                f"encoder has {meta[key]} {label}, this run's network {info.get(key)}",
                "pretrain on data like the downstream task's, or train without --init",
                CheckpointError,
            )
    targets = [t for t in encoders_in(module) if t[2].family == meta.get("backbone")]
    if not targets:
        families = sorted({t[2].family for t in encoders_in(module)}) or ["none"]
        raise file_error(
            tensors_file,
            f"a {meta.get('backbone')} encoder; this method's networks are {', '.join(families)}",
            "pretrain with the downstream network (net.name), or train without --init",
            CheckpointError,
        )
    report = InitReport(tensors_file, [name or "the network" for name, _, _ in targets])
    used: set[str] = set()
    for _, net, mapped in targets:
        state = net.state_dict()
        fitting = {
            actual: tensors[canonical]
            for canonical, actual in mapped.keys.items()
            if canonical in tensors and tensors[canonical].shape == state[actual].shape
        }
        used.update(c for c, a in mapped.keys.items() if a in fitting)
        net.load_state_dict(fitting, strict=False)
        report.loaded += len(fitting)
        report.missing += len(mapped.keys) - len(fitting)
    report.unexpected = len(set(tensors) - used)
    if len(used) < MIN_LOADED_SHARE * len(tensors):
        raise file_error(
            tensors_file,
            f"only {len(used)} of the encoder's {len(tensors)} tensors fit this run's network "
            "(other widths or depth?)",
            "pretrain with the downstream net settings, or train without --init",
            CheckpointError,
        )
    return report


def _checkpoint_of(path: Path) -> Path:
    if path.is_dir():
        best = path / CKPT_DIR / "best.ckpt"
        return best if best.is_file() else path / CKPT_DIR / "last.ckpt"
    return path


def load_matching(module: nn.Module, checkpoint: Path) -> InitReport:
    """Every tensor of a checkpoint whose name and shape match one of ``module``'s."""
    state = load_checkpoint(checkpoint)
    state = state.get("state_dict", state)
    own = module.state_dict()
    matched = {
        k: v
        for k, v in state.items()
        if k in own and isinstance(v, torch.Tensor) and own[k].shape == v.shape
    }
    if not matched:
        raise file_error(
            checkpoint,
            "no tensor matches this method's networks",
            "pass weights of the same network",
            CheckpointError,
        )
    module.load_state_dict(matched, strict=False)
    return InitReport(
        checkpoint, [], len(matched), len(own) - len(matched), len(state) - len(matched)
    )
